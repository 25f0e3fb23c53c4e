// SDOT micro-kernel of the ARM prefill GEMM path (qgemm_gemm.h; layout in qgemm_gemm_arm.h,
// schedule in qgemm_gemm_driver.h): 16 rows (4 vectors of int32 lanes) x 4 tokens = 16
// accumulators. Per step of 4 codes: 4 weight loads, one activation load (4 tokens' codes) and
// 16 SDOT-by-element (vdotq_laneq_s32: lane t of the activation vector is token t's 4 codes).
// Group dots are exact in int32 (|dot| <= 256 * 7 * 127); each group ends with
// c += float(dot) * (s_w * s_x), multiply then add, as qgemm_ref.
#include <arm_neon.h>

#include "kernels/qgemm_gemm.h"
#include "kernels/qgemm_gemm_arm.h"
#include "kernels/qgemm_gemm_driver.h"

namespace razor {

namespace {

// Named accumulators a<row vector><token>: GCC keeps arrays of vectors in stack slots.
#define RZ_ACC(M) M(0, 0) M(0, 1) M(0, 2) M(0, 3) M(1, 0) M(1, 1) M(1, 2) M(1, 3) \
                  M(2, 0) M(2, 1) M(2, 2) M(2, 3) M(3, 0) M(3, 1) M(3, 2) M(3, 3)
struct MicroSdot : ArmGemmLayout {
  static void block(const uint8_t* tile, int64_t K, int G, const uint8_t* blk, float* c) {
    const int64_t ng = K / G;
    const int steps = G / 4;
    const int8_t* w = reinterpret_cast<const int8_t*>(tile);
    const float* sw = reinterpret_cast<const float*>(tile + K * kRows);
    const int8_t* x = reinterpret_cast<const int8_t*>(blk);
    const float* xs = reinterpret_cast<const float*>(blk + K * kTok);
    for (int k = 0; k < kTok * kRows; k += 4) vst1q_f32(c + k, vdupq_n_f32(0.0f));
    for (int64_t g = 0; g < ng; ++g) {
#define RZ_ZERO(r, t) int32x4_t a##r##t = vdupq_n_s32(0);
      RZ_ACC(RZ_ZERO)
#undef RZ_ZERO
      for (int j = 0; j < steps; ++j) {
        const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32), w3 = vld1q_s8(w + 48);
        const int8x16_t xv = vld1q_s8(x);
#define RZ_DOT(r, t) a##r##t = vdotq_laneq_s32(a##r##t, w##r, xv, t);
        RZ_ACC(RZ_DOT)
#undef RZ_DOT
        w += 64;
        x += 16;
      }
#define RZ_SCALE(r, t) scale_add(c + t * kRows + 4 * r, a##r##t, vld1q_f32(sw + g * kRows + 4 * r), xs[g * kTok + t]);
      RZ_ACC(RZ_SCALE)
#undef RZ_SCALE
    }
  }
};
#undef RZ_ACC

}  // namespace

void qgemm_gemm_dotprod(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  qgemm_gemm_drive<MicroSdot>(W, qx, sx, N, y);
}

}  // namespace razor
