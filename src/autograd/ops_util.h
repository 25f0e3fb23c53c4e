// Internal helpers shared by the ops_*.cpp files (not part of the public op API).
// Deliberately not here: any op itself.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "core/error.h"

// Forces vectorisation of an inner loop that has no cross-iteration dependency (so the
// result is bit-identical to the scalar loop). Needed because -O2 uses GCC's "very cheap"
// vectoriser cost model, which skips loops with runtime trip counts.
#define RZ_SIMD _Pragma("omp simd")

namespace razor {
namespace detail {

// Below this many elements an elementwise loop runs on one thread (OpenMP start-up costs
// more than the work).
constexpr int64_t kParallelMin = 1 << 15;

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
  const v8f n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest even
  v8f r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  v8f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const v8f e = p * (r * r) + r + 1.0f;
  const v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  v8f y = e * (v8f)bits;  // a vector cast reinterprets the bits
  y = x < lo ? zero : y;
  y = x > hi ? zero + std::numeric_limits<float>::infinity() : y;
  y = nan_lane ? x : y;
  std::memcpy(out, &y, sizeof y);
}
}  // namespace vexp

// buf[i] = exp(buf[i]) for i < n.
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

// Chunk length for row-wise exp through a stack buffer (fits L1 with the row data).
constexpr int64_t kExpChunk = 256;

// Rows of a [.., C] tensor viewed as [N, C].
inline int64_t rows_of(const Shape& s) {
  if (s.nd == 0) return 1;
  return s[-1] == 0 ? 0 : s.numel() / s[-1];
}

inline std::string shp(const Var& v) { return v.shape().str(); }

// Gradient of `out` if anything flowed into it, else null (the op's output was unused).
inline const float* grad_or_null(Var& out) { return out.has_grad() ? out.grad().data() : nullptr; }

// Deterministic parallel column reduction: dst[c] += sum over rows r of f(r, c-partials).
// `row_fn(r, acc)` adds row r's contribution into acc[0..C). Rows are split into a fixed
// number of chunks (independent of the thread count) and the chunk partials are summed in
// chunk order, so the result is bitwise reproducible for any OMP_NUM_THREADS.
template <class RowFn>
void reduce_rows(int64_t N, int64_t C, float* dst, RowFn row_fn) {
  if (N <= 0 || C <= 0) return;
  const int64_t chunks = N * C < kParallelMin ? 1 : (N < 32 ? N : 32);
  if (chunks == 1) {
    for (int64_t r = 0; r < N; ++r) row_fn(r, dst);
    return;
  }
  std::vector<float> part(size_t(chunks * C), 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    float* acc = part.data() + ch * C;
    int64_t r0 = N * ch / chunks, r1 = N * (ch + 1) / chunks;
    for (int64_t r = r0; r < r1; ++r) row_fn(r, acc);
  }
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const float* acc = part.data() + ch * C;
    RZ_SIMD
    for (int64_t c = 0; c < C; ++c) dst[c] += acc[c];
  }
}

// Deterministic parallel sum in double of term(i) for i < n: a fixed number of chunks
// (independent of the thread count), summed in chunk order. `work` is the cost in elements,
// for the decision to go parallel. Unlike an OpenMP reduction, the result does not depend on
// OMP_NUM_THREADS.
template <class Term>
double sum_terms(int64_t n, int64_t work, Term term) {
  if (n <= 0) return 0.0;
  const int64_t chunks = work < kParallelMin ? 1 : (n < 64 ? n : 64);
  double part[64];
#pragma omp parallel for if (chunks > 1) schedule(static)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    double s = 0.0;
    const int64_t i0 = n * ch / chunks, i1 = n * (ch + 1) / chunks;
    for (int64_t i = i0; i < i1; ++i) s += term(i);
    part[ch] = s;
  }
  double total = 0.0;
  for (int64_t ch = 0; ch < chunks; ++ch) total += part[ch];
  return total;
}

}  // namespace detail
}  // namespace razor
