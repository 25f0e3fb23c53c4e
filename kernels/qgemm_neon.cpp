// NEON tier (ARMv8-A baseline) of the packed-weight GEMM and the A8 quantizer. The dot step
// widens with SMULL/SMLAL2 (|u x| <= 15 * 127, two products per int16 lane) and pairwise-adds
// into int32 (SADALP).
#include <arm_neon.h>

#include <algorithm>

#include "kernels/qgemm.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemm_neon.h"

namespace razor {

namespace {
struct DotNeon {
  static int32x4_t step(int32x4_t acc, int8x16_t u, int8x16_t x) {
    int16x8_t p = vmull_s8(vget_low_s8(u), vget_low_s8(x));
    p = vmlal_high_s8(p, u, x);
    return vpadalq_s16(acc, p);
  }
};
}  // namespace

void qgemm_rows_neon(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  rows_neon<DotNeon>(a, row_begin, row_end);
}

// Bit-identical to quantize_a8_ref: same max, scalar scale, true division, FRINTN rounding
// (round half to even).
void quantize_a8_neon(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  if (G % 16 != 0) return quantize_a8_ref(x, N, C, G, q, scales);
  const int64_t ng = C / G;
  const float32x4_t hi = vdupq_n_f32(127.0f), lo = vdupq_n_f32(-127.0f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < ng; ++g) {
      const float* xg = x + n * C + g * G;
      int8_t* qg = q + n * C + g * G;
      float32x4_t m = vdupq_n_f32(0.0f);
      for (int k = 0; k < G; k += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(xg + k)));
      const float s = std::max(vmaxvq_f32(m), 1e-5f) / 127.0f;
      const float32x4_t vs = vdupq_n_f32(s);
      for (int k = 0; k < G; k += 16) {
        int32x4_t v[4];
        for (int j = 0; j < 4; ++j) {
          float32x4_t r = vrndnq_f32(vdivq_f32(vld1q_f32(xg + k + 4 * j), vs));
          v[j] = vcvtq_s32_f32(vminq_f32(hi, vmaxq_f32(lo, r)));
        }
        const int16x8_t a01 = vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1]));
        const int16x8_t a23 = vcombine_s16(vmovn_s32(v[2]), vmovn_s32(v[3]));
        vst1q_s8(qg + k, vcombine_s8(vmovn_s16(a01), vmovn_s16(a23)));
      }
      scales[n * ng + g] = s;
    }
}

}  // namespace razor
