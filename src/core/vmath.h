// Vectorisable elementwise math for hot loops, and the row math the training ops (autograd/)
// and the packed engine (infer/engine) share, so train/deploy parity follows from one piece of
// code: the exps, the sigmoid and SwiGLU of a row, the RMS norm of a row (RoPE: core/rope.h).
//
// Two exps, one scheme and ONE overflow rule (Cephes expf: x = n ln2 + r with ln2 split in two
// constants, a degree-6 polynomial for e^r on |r| <= ln2/2, 2^n through the exponent bits;
// +inf above the range, as std::exp and IEEE give; NaN stays NaN; 0 below the range, where the
// true value would be denormal). The rule is +inf rather than a finite saturated value because
// every caller shifts by the row maximum first (arguments <= 0): overflow only ever shows on a
// bug, and then inf propagates where a saturated value would pass for a real probability.
//  - vexp::exp8 / exp_inplace: the vector exp of the fused autograd ops and the engine.
//  - exp_approx: the scalar form the distillation losses vectorise with `omp simd`
//    (exp_shifted_sum). It evaluates the polynomial as (p r) r where exp8 has p (r r), and its
//    range is [-87.3, 88.3] where exp8's is [-87.33, 88.37]: one rounding apart, so merging the
//    two changes the training's bits (a 4-step QAD run: validation perplexity 61.344 -> 61.345)
//    and is left for a change that may move the main job's summary.
//
// exp_approx(x): relative error <= 2e-7 against the exact exponential for x in [-87.3, 88.3]
// (tests/test_core.cpp checks it over that range); below -87.3 it returns 0, above 88.3 +inf.
// Deterministic: the same input gives the same bits on every build of one ISA.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace razor {

inline float exp_approx(float x) {
  const float hi = 88.3f, lo = -87.3f;  // n in [-126, 127]: a normal 2^n
  const bool under = x < lo, over = x > hi, nan = x != x;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  x = nan ? 0.0f : x;  // keeps the int conversion below defined; NaN is restored at the end
  // n = round(x / ln2) with the 1.5 * 2^23 trick (round to nearest even, no libm).
  const float shifter = 12582912.0f;
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  // r = x - n ln2 in two steps (ln2 = c1 + c2, c1 exact in few bits).
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  // e^r on |r| <= 0.347: Taylor-like minimax coefficients (Cephes expf).
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = under ? 0.0f : p * scale;
  return nan ? std::numeric_limits<float>::quiet_NaN() : over ? std::numeric_limits<float>::infinity() : y;
}

// out[i] = exp_approx(x[i] - shift), i < n; returns the sum of out[] accumulated in double
// (in a fixed order: the result is deterministic for a given n).
double exp_shifted_sum(const float* x, float shift, float* out, int64_t n);

// log softmax(z)[y] over z[0, V), exactly in double (max-shifted std::exp): the per-token
// log-probability `razor score` and `razor eval` report.
double log_prob_at(const float* z, int64_t V, int32_t y);

// ---- the vector exp of the fused ops and the engine
// Vectorised exp for the fused ops (softmax rows, cross-entropy, sigmoid in silu / swiglu,
// attention probabilities). std::exp is a libm call that keeps every loop scalar, and the
// auto-vectoriser will not if-convert float compares under the default -ftrapping-math, so
// this uses GCC vector extensions (8 lanes; lowered to AVX2 or 2x SSE by the target flags).
// Cephes expf scheme: x = n ln2 + r with ln2 split in two constants, degree-6 polynomial for
// e^r on |r| <= ln2/2, scale by 2^n through the exponent bits. Max error ~1 ulp on
// [-87.3, 88.3] (tested against std::exp). x < -87.33 gives 0 (results that would be
// denormal are flushed), x > 88.37 gives +inf (true overflow is at 88.72), NaN stays NaN.
// Deterministic: the same bits on every run and thread count.
namespace vexp {
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
// The shared core of both eight-lane exps, on a clamped, NaN-free xc: n = round(xc / ln2) (the
// 1.5 * 2^23 trick), r = xc - n ln2 in two steps, and the Cephes polynomial p up to its last
// coefficient; exp(xc) = (p r^2 + r + 1) 2^n, the callers finishing in their own order.
inline v8f exp8_reduce(v8f xc, v8f* n_out, v8f* r_out) {
  const v8f n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest even
  v8f r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  v8f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  *n_out = n;
  *r_out = r;
  return p;
}
// e 2^n through the exponent bits (n in [-126, 127]).
inline v8f exp8_scale(v8f e, v8f n) {
  const v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  return e * (v8f)bits;  // a vector cast reinterprets the bits
}

// out[0..8) = exp(in[0..8)); in == out allowed.
inline void exp8(const float* in, float* out) {
  v8f x;
  std::memcpy(&x, in, sizeof x);
  const v8f zero = {0, 0, 0, 0, 0, 0, 0, 0};
  const v8f lo = zero - 87.33f, hi = zero + 88.37f;
  const v8i nan_lane = x != x;
  v8f xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  xc = nan_lane ? zero : xc;  // keep the int conversion below defined; NaN is restored at the end
  v8f n, r;
  const v8f p = exp8_reduce(xc, &n, &r);
  v8f y = exp8_scale(p * (r * r) + r + 1.0f, n);
  y = x < lo ? zero : y;
  y = x > hi ? zero + std::numeric_limits<float>::infinity() : y;
  y = nan_lane ? x : y;
  std::memcpy(out, &y, sizeof y);
}
// out[0..8) = exp_approx(in[0..8) - shift), lane by lane the same operations as exp_approx
// (its clamps, its (p r) r polynomial order, its quiet NaN), so the same bits, eight at a time.
inline void exp8_approx_shifted(const float* in, float shift, float* out) {
  v8f x;
  std::memcpy(&x, in, sizeof x);
  x = x - shift;
  const v8f zero = {0, 0, 0, 0, 0, 0, 0, 0};
  const v8f lo = zero - 87.3f, hi = zero + 88.3f;
  const v8i nan_lane = x != x;
  v8f xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  xc = nan_lane ? zero : xc;
  v8f n, r;
  const v8f p = exp8_reduce(xc, &n, &r);
  v8f y = exp8_scale(p * r * r + r + 1.0f, n);
  y = x < lo ? zero : y;
  y = x > hi ? zero + std::numeric_limits<float>::infinity() : y;
  y = nan_lane ? zero + std::numeric_limits<float>::quiet_NaN() : y;
  std::memcpy(out, &y, sizeof y);
}
}  // namespace vexp

// buf[i] = exp(buf[i]) for i < n (vexp::exp8 on every element).
inline void exp_inplace(float* buf, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vexp::exp8(buf + i, buf + i);
  if (i < n) {
    float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t j = i; j < n; ++j) tmp[j - i] = buf[j];
    vexp::exp8(tmp, tmp);
    for (int64_t j = i; j < n; ++j) buf[j] = tmp[j - i];
  }
}

// max(x[0..n)), n >= 1, eight lanes at a time (the scalar `m = std::max(m, x[i])` loop stays
// scalar: the vectoriser will not if-convert float compares under -ftrapping-math). Max is exact
// and order-free, so for NaN-free input the result is the scalar loop's value (a zero maximum
// may come out as -0 where the loop gives +0 or the reverse: the same shift); a NaN element may
// or may not propagate (every caller's row then gives NaN through its exp sum).
inline float row_max(const float* x, int64_t n) {
  int64_t i = 0;
  float m = x[0];
  if (n >= 8) {
    vexp::v8f mv;
    std::memcpy(&mv, x, sizeof mv);
    for (i = 8; i + 8 <= n; i += 8) {
      vexp::v8f v;
      std::memcpy(&v, x + i, sizeof v);
      mv = mv < v ? v : mv;
    }
    for (int l = 0; l < 8; ++l) m = std::max(m, mv[l]);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// Chunk length for row-wise exp through a stack buffer (fits L1 with the row data).
constexpr int64_t kExpChunk = 256;

// ---- rows shared by the training ops and the engine (each element's bits depend only on its
// inputs, not on where a chunk starts or ends)

// s[i] = sigmoid(x[i]) = 1 / (1 + exp(-x[i])) for i < n (n <= kExpChunk; s may not alias x).
inline void sigmoid_chunk(const float* x, float* s, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) s[i] = -x[i];
  exp_inplace(s, n);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) s[i] = 1.0f / (1.0f + s[i]);
}

// y[i] = silu(g[i]) * u[i] = (g[i] * sigmoid(g[i])) * u[i], i < n, in chunks of kExpChunk
// (y may alias g or u).
inline void swiglu_row(const float* g, const float* u, float* y, int64_t n) {
  float s[kExpChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kExpChunk) {
    const int64_t m = n - i0 < kExpChunk ? n - i0 : kExpChunk;
    sigmoid_chunk(g + i0, s, m);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) y[i0 + i] = (g[i0 + i] * s[i]) * u[i0 + i];
  }
}

// HF RMSNorm's inverse rms 1 / sqrt(mean(x^2) + eps) of x [C], with four partial sums (a
// shorter dependency chain than one; deterministic, no fast-math).
inline float rms_inv(const float* x, int64_t C, float eps) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t c = 0;
  for (; c + 4 <= C; c += 4) {
    s0 += x[c] * x[c];
    s1 += x[c + 1] * x[c + 1];
    s2 += x[c + 2] * x[c + 2];
    s3 += x[c + 3] * x[c + 3];
  }
  for (; c < C; ++c) s0 += x[c] * x[c];
  const float ms = ((s0 + s1) + (s2 + s3)) / float(C);
  return 1.0f / std::sqrt(ms + eps);
}

// y[k] = (x[k] * rs) * w[k] for k in [k0, k1) with rs = rms_inv(x, C, eps) (y may alias x);
// returns rs (the training op saves it for the backward).
inline float rmsnorm_row(const float* x, const float* w, int64_t C, float eps, float* y, int64_t k0 = 0,
                         int64_t k1 = -1) {
  const float rs = rms_inv(x, C, eps);
  if (k1 < 0) k1 = C;
#pragma omp simd
  for (int64_t k = k0; k < k1; ++k) y[k] = (x[k] * rs) * w[k];
  return rs;
}

}  // namespace razor
