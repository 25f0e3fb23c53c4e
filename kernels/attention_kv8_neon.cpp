// NEON decode tier of the KV8 attention kernel (attention_kv8.h, attention_kv8_decode): one
// query token and one kv head, the AVX2 decode tier's design on 4-wide vectors (aarch64 builds
// only). Each key / value row is converted to fp32 once per chunk of query heads (up to 4 heads
// share a conversion); scores and weighted values are accumulated in registers; the softmax is
// vectorised with a polynomial exp (exp_neg below).
// Scores and weighted values use the reference's exact operations (products then adds, never
// fused: the reference is built with -ffp-contract=off), and the score's 16 partial sums are four
// registers reduced in the reference's pairwise order, so scores are bit for bit the reference's;
// outputs differ only through the exp (within 2e-7 relative) and the order of the exp sum.
// Not here: the prefill (many-token) attention on ARM, which runs the reference.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/attention_kv8.h"

namespace razor {

namespace {

// exp(x) for x <= 0: the AVX2 tier's exp_neg (Cody-Waite reduction by ln 2 with ln 2 split so
// n * c1 is exact, the Cephes degree-6 polynomial, 2^n built by shifting n + 127 into the
// exponent bits). Inputs are clamped at -87.3 (n >= -126, 2^n normal): below that the result is
// ~1e-38, not 0. Positive inputs are out of contract.
inline float32x4_t exp_neg(float32x4_t x) {
  x = vmaxq_f32(x, vdupq_n_f32(-87.3f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), vmulq_f32(p, r), r);
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

// 16 int8 -> 4 x 4 fp32.
inline void cvt16(const int8_t* p, float32x4_t f[4]) {
  const int8x16_t b = vld1q_s8(p);
  const int16x8_t lo = vmovl_s8(vget_low_s8(b)), hi = vmovl_high_s8(b);
  f[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
  f[1] = vcvtq_f32_s32(vmovl_high_s16(lo));
  f[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
  f[3] = vcvtq_f32_s32(vmovl_high_s16(hi));
}

// Scores of heads h0 .. h0 + CH - 1 at every position. The reference's 16 partial sums (lane l
// takes dims i = l mod 16) are 4 registers per head, reduced in its order: (l + l+8), (l + l+4),
// lanes 0+2 and 1+3, then 0+1.
template <int DV, int CH>  // DV = D / 16
void decode_scores(const AttnKv8Decode& a, int64_t h0) {
  constexpr int64_t D = 16 * DV;
  const float* q = a.q + h0 * D;
  for (int64_t j = 0; j < a.npos; ++j) {
    const int8_t* kj = a.k + j * D;
    float32x4_t acc[CH][4];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h)
#pragma GCC unroll 4
      for (int m = 0; m < 4; ++m) acc[h][m] = vdupq_n_f32(0.0f);
#pragma GCC unroll 2
    for (int c = 0; c < DV; ++c) {
      float32x4_t k[4];
      cvt16(kj + 16 * c, k);
#pragma GCC unroll 16
      for (int h = 0; h < CH; ++h)
#pragma GCC unroll 4
        for (int m = 0; m < 4; ++m) acc[h][m] = vaddq_f32(acc[h][m], vmulq_f32(vld1q_f32(q + h * D + 16 * c + 4 * m), k[m]));
    }
    const float ksj = a.ks[j];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h) {
      const float32x4_t c4 = vaddq_f32(vaddq_f32(acc[h][0], acc[h][2]), vaddq_f32(acc[h][1], acc[h][3]));
      const float32x2_t c2 = vadd_f32(vget_low_f32(c4), vget_high_f32(c4));
      const float dot = vget_lane_f32(c2, 0) + vget_lane_f32(c2, 1);
      a.scores[(h0 + h) * a.score_stride + j] = dot * ksj * a.scale;
    }
  }
}

// out of heads h0 .. h0 + CH - 1, dims d0 .. d0 + 4 NV - 1 = sum_j w_j v_j (w: the softmax
// numerators times vs_j, in the score rows), CH x NV registers over the positions, times each
// head's 1 / sum. Each value element is converted once per head chunk.
template <int NV, int CH>
void decode_values(const AttnKv8Decode& a, int64_t h0, int64_t d0, const float* inv) {
  const int64_t D = a.D, np = a.npos, st = a.score_stride;
  const float* s = a.scores + h0 * st;
  float32x4_t o[CH][NV];
#pragma GCC unroll 16
  for (int h = 0; h < CH; ++h)
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) o[h][c] = vdupq_n_f32(0.0f);
  for (int64_t j = 0; j < np; ++j) {
    const int8_t* vj = a.v + j * D + d0;
    float32x4_t w[CH];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h) w[h] = vld1q_dup_f32(s + h * st + j);
#pragma GCC unroll 4
    for (int c = 0; c < NV; c += 4) {
      float32x4_t vf[4];
      cvt16(vj + 4 * c, vf);
#pragma GCC unroll 16
      for (int h = 0; h < CH; ++h)
#pragma GCC unroll 4
        for (int m = 0; m < 4; ++m) o[h][c + m] = vaddq_f32(o[h][c + m], vmulq_f32(w[h], vf[m]));
    }
  }
#pragma GCC unroll 16
  for (int h = 0; h < CH; ++h) {
    const float32x4_t r = vdupq_n_f32(inv[h0 + h]);
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) vst1q_f32(a.out + (h0 + h) * D + d0 + 4 * c, vmulq_f32(o[h][c], r));
  }
}

template <int DV>
void decode_neon(const AttnKv8Decode& a) {
  constexpr int64_t D = 16 * DV;
  const int64_t HpK = a.HpK, np = a.npos;
  // Scores: 2 heads per key row conversion (8 accumulators; with 4 heads GCC spills).
  int64_t h0 = 0;
  for (; h0 + 2 <= HpK; h0 += 2) decode_scores<DV, 2>(a, h0);
  if (h0 < HpK) decode_scores<DV, 1>(a, h0);
  // Softmax per head: w_j = exp(s_j - max) * vs_j, and 1 / sum exp (4 lanes); the last partial
  // vector goes through a padded copy.
  float inv[64];  // HpK <= 64 (the engine checks)
  const int64_t nf = np / 4 * 4, nt = np - nf;
  for (int64_t h = 0; h < HpK; ++h) {
    float* s = a.scores + h * a.score_stride;
    float32x4_t mx = vdupq_n_f32(-INFINITY);
    for (int64_t j0 = 0; j0 < nf; j0 += 4) mx = vmaxq_f32(mx, vld1q_f32(s + j0));
    float m = vmaxvq_f32(mx);
    for (int64_t j = nf; j < np; ++j) m = std::max(m, s[j]);
    const float32x4_t mv = vdupq_n_f32(m);
    float32x4_t sum = vdupq_n_f32(0.0f);
    for (int64_t j0 = 0; j0 < nf; j0 += 4) {
      const float32x4_t e = exp_neg(vsubq_f32(vld1q_f32(s + j0), mv));
      sum = vaddq_f32(sum, e);
      vst1q_f32(s + j0, vmulq_f32(e, vld1q_f32(a.vs + j0)));
    }
    if (nt > 0) {
      float t[4] = {0, 0, 0, 0}, vs[4] = {0, 0, 0, 0};
      std::copy(s + nf, s + np, t);
      std::copy(a.vs + nf, a.vs + np, vs);
      float e[4];
      vst1q_f32(e, exp_neg(vsubq_f32(vld1q_f32(t), mv)));
      for (int64_t l = nt; l < 4; ++l) e[l] = 0.0f;  // padding lanes
      const float32x4_t ev = vld1q_f32(e);
      sum = vaddq_f32(sum, ev);
      vst1q_f32(t, vmulq_f32(ev, vld1q_f32(vs)));
      std::copy(t, t + nt, s + nf);
    }
    inv[h] = 1.0f / vaddvq_f32(sum);
  }
  // Values: 4 heads x 16 dims, 2 heads x 32 dims or a lone head x 64 dims per pass (16
  // accumulators + the head weights + one converted 16-value chunk).
  h0 = 0;
  for (; h0 + 4 <= HpK; h0 += 4)
    for (int64_t d0 = 0; d0 < D; d0 += 16) decode_values<4, 4>(a, h0, d0, inv);
  for (; h0 + 2 <= HpK; h0 += 2)
    for (int64_t d0 = 0; d0 < D; d0 += 32) decode_values<8, 2>(a, h0, d0, inv);
  if (h0 < HpK)
    for (int64_t d0 = 0; d0 < D; d0 += 64) decode_values<16, 1>(a, h0, d0, inv);
}

}  // namespace

void attention_kv8_neon_exp(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, exp_neg(vld1q_f32(x + i)));
  if (i < n) {
    float xb[4] = {0, 0, 0, 0}, yb[4];
    std::copy(x + i, x + n, xb);
    vst1q_f32(yb, exp_neg(vld1q_f32(xb)));
    std::copy(yb, yb + (n - i), y + i);
  }
}

void attention_kv8_decode_neon(const AttnKv8Decode& a) {
  RZ_ASSERT_MSG(a.D == 64 || a.D == 128 || a.D == 256, "attention_kv8_decode_neon: head dim must be 64, 128 or 256");
  RZ_ASSERT(a.HpK >= 1 && a.HpK <= 64 && a.npos >= 1);
  switch (a.D) {
    case 64: return decode_neon<4>(a);
    case 128: return decode_neon<8>(a);
    default: return decode_neon<16>(a);
  }
}

}  // namespace razor
