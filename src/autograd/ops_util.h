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
#include "core/vmath.h"  // exp_inplace, kExpChunk and the shared row math

// Forces vectorisation of an inner loop that has no cross-iteration dependency (so the
// result is bit-identical to the scalar loop). Needed because -O2 uses GCC's "very cheap"
// vectoriser cost model, which skips loops with runtime trip counts.
#define RZ_SIMD _Pragma("omp simd")

namespace razor {
namespace detail {

// Below this many elements an elementwise loop runs on one thread (OpenMP start-up costs
// more than the work).
constexpr int64_t kParallelMin = 1 << 15;

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
