// Plain ARMv8 NEON micro-kernel of the ARM prefill GEMM path (qgemm_gemm.h; layout in
// qgemm_gemm_arm.h, schedule in qgemm_gemm_driver.h), for cores without SDOT (Cortex-A53/A72).
// Per pass 8 rows (2 weight vectors) x 4 tokens; the tile's 16 rows take two passes over the
// block (the activations stay in L1). Two steps of 4 codes are multiplied together: SMULL +
// SMLAL give int16 pair sums (|q x| <= 7 * 127, two products <= 1778: no overflow), SADALP
// widens them into int32 lanes (row r, codes 0+1) / (row r, codes 2+3); ADDP folds those into
// one int32 per row at the group's end. Group dots exact; c += float(dot) * (s_w * s_x),
// multiply then add, as qgemm_ref.
#include <arm_neon.h>

#include "kernels/qgemm_gemm.h"
#include "kernels/qgemm_gemm_arm.h"
#include "kernels/qgemm_gemm_driver.h"

namespace razor {

namespace {

// Named accumulators l<row vector><token> (rows 0-1 of the vector) and h<..> (rows 2-3).
#define RZ_ACC(M) M(0, 0) M(0, 1) M(0, 2) M(0, 3) M(1, 0) M(1, 1) M(1, 2) M(1, 3)
struct MicroNeon : ArmGemmLayout {
  static void block(const uint8_t* tile, int64_t K, int G, const uint8_t* blk, float* c) {
    const int64_t ng = K / G;
    const int steps = G / 4;  // even: G is a multiple of 64
    const float* sw = reinterpret_cast<const float*>(tile + K * kRows);
    const float* xs = reinterpret_cast<const float*>(blk + K * kTok);
    for (int k = 0; k < kTok * kRows; k += 4) vst1q_f32(c + k, vdupq_n_f32(0.0f));
    for (int half = 0; half < 2; ++half) {
      const int8_t* w = reinterpret_cast<const int8_t*>(tile) + 32 * half;
      const int8_t* x = reinterpret_cast<const int8_t*>(blk);
      for (int64_t g = 0; g < ng; ++g) {
#define RZ_ZERO(r, t) int32x4_t l##r##t = vdupq_n_s32(0), h##r##t = vdupq_n_s32(0);
        RZ_ACC(RZ_ZERO)
#undef RZ_ZERO
        for (int j = 0; j < steps; j += 2) {
          const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16);            // step j, rows 0-3 / 4-7
          const int8x16_t v0 = vld1q_s8(w + 64), v1 = vld1q_s8(w + 64 + 16);  // step j + 1
          const int32x4_t x0 = vreinterpretq_s32_s8(vld1q_s8(x)), x1 = vreinterpretq_s32_s8(vld1q_s8(x + 16));
#define RZ_MAC(r, t)                                                                     \
  {                                                                                      \
    const int8x16_t xa = vreinterpretq_s8_s32(vdupq_laneq_s32(x0, t));                   \
    const int8x16_t xb = vreinterpretq_s8_s32(vdupq_laneq_s32(x1, t));                   \
    l##r##t = vpadalq_s16(l##r##t, vmlal_s8(vmull_s8(vget_low_s8(w##r), vget_low_s8(xa)), \
                                            vget_low_s8(v##r), vget_low_s8(xb)));        \
    h##r##t = vpadalq_s16(h##r##t, vmlal_high_s8(vmull_high_s8(w##r, xa), v##r, xb));    \
  }
          RZ_ACC(RZ_MAC)
#undef RZ_MAC
          w += 128;
          x += 32;
        }
#define RZ_SCALE(r, t)                                                                            \
  scale_add(c + t * kRows + 8 * half + 4 * r, vpaddq_s32(l##r##t, h##r##t),                       \
            vld1q_f32(sw + g * kRows + 8 * half + 4 * r), xs[g * kTok + t]);
        RZ_ACC(RZ_SCALE)
#undef RZ_SCALE
      }
    }
  }
};
#undef RZ_ACC

}  // namespace

void qgemm_gemm_neon(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  qgemm_gemm_drive<MicroNeon>(W, qx, sx, N, y);
}

}  // namespace razor
