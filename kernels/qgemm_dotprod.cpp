// NEON + dotprod tier (ARMv8.2 SDOT): one instruction per 16 weights accumulates four
// 4-byte dot products into int32 lanes. Shares the row kernel with qgemm_neon.cpp.
#include <arm_neon.h>

#include "kernels/qgemm_impl.h"
#include "kernels/qgemm_neon.h"

namespace razor {

namespace {
struct DotSdot {
  static int32x4_t step(int32x4_t acc, int8x16_t u, int8x16_t x) { return vdotq_s32(acc, u, x); }
};
}  // namespace

void qgemm_rows_dotprod(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  rows_neon<DotSdot>(a, row_begin, row_end);
}

}  // namespace razor
