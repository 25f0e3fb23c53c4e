// silu, the fused swiglu (silu(gate) * up) and softmax_lastdim. Backward recomputes the
// sigmoid from the saved inputs instead of keeping another activation-sized tensor; all
// exps go through the vectorised exp_inplace in chunks that stay in L1.
#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

namespace {

// Runs body(i0, n, s) over [0, total) in chunks of kExpChunk with s = sigmoid(x[i0..i0+n)).
template <class Body>
void for_sigmoid_chunks(const float* x, int64_t total, Body body) {
  const int64_t nchunks = (total + kExpChunk - 1) / kExpChunk;
#pragma omp parallel for if (total > detail::kParallelMin / 4) schedule(static)
  for (int64_t ch = 0; ch < nchunks; ++ch) {
    float s[kExpChunk];
    const int64_t i0 = ch * kExpChunk, n = std::min(kExpChunk, total - i0);
    sigmoid_chunk(x + i0, s, n);
    body(i0, n, s);
  }
}

}  // namespace

Var silu(const Var& x) {
  const int64_t n = x.numel();
  Tensor y = Tensor::empty(x.shape());
  const float* X = x.value().data();
  float* Y = y.data();
  for_sigmoid_chunks(X, n, [&](int64_t i0, int64_t m, const float* s) {
    RZ_SIMD
    for (int64_t i = 0; i < m; ++i) Y[i0 + i] = X[i0 + i] * s[i];
  });
  Var out = make_output(y, {&x});
  if (out.requires_grad())
    // silu_backward reads x: d silu = s * (1 + x * (1 - s))
    tape().record([x = x, out, n]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      const float* X = x.value().data();
      float* dx = x.grad().data();
      for_sigmoid_chunks(X, n, [&](int64_t i0, int64_t m, const float* s) {
        RZ_SIMD
        for (int64_t i = 0; i < m; ++i) {
          const float xi = X[i0 + i];
          dx[i0 + i] += g[i0 + i] * (s[i] * (1.0f + xi * (1.0f - s[i])));
        }
      });
    });
  return out;
}

// gate, up [.., F] -> [.., F]
Var swiglu(const Var& gate, const Var& up) {
  if (gate.shape() != up.shape())
    fail("swiglu: gate %s and up %s must have the same shape", gate.shape().str().c_str(), up.shape().str().c_str());
  const int64_t n = gate.numel();
  Tensor y = Tensor::empty(gate.shape());
  const float* G = gate.value().data();
  const float* U = up.value().data();
  float* Y = y.data();
  // The row math the engine runs too (core/vmath.h), in parallel chunks.
  const int64_t nchunks = (n + kExpChunk - 1) / kExpChunk;
#pragma omp parallel for if (n > detail::kParallelMin / 4) schedule(static)
  for (int64_t ch = 0; ch < nchunks; ++ch) {
    const int64_t i0 = ch * kExpChunk;
    swiglu_row(G + i0, U + i0, Y + i0, std::min(kExpChunk, n - i0));
  }
  Var out = make_output(y, {&gate, &up});
  if (out.requires_grad())
    // swiglu_backward reads gate and up: dgate = dy * up * silu'(gate), dup = dy * silu(gate)
    tape().record([gate = gate, up = up, out, n]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      const float* G = gate.value().data();
      const float* U = up.value().data();
      float* dG = gate.requires_grad() ? gate.grad().data() : nullptr;
      float* dU = up.requires_grad() ? up.grad().data() : nullptr;
      for_sigmoid_chunks(G, n, [&](int64_t i0, int64_t m, const float* s) {
        if (dG) {
          RZ_SIMD
          for (int64_t i = 0; i < m; ++i) {
            const float gi = G[i0 + i];
            dG[i0 + i] += g[i0 + i] * U[i0 + i] * (s[i] * (1.0f + gi * (1.0f - s[i])));
          }
        }
        if (dU) {
          RZ_SIMD
          for (int64_t i = 0; i < m; ++i) dU[i0 + i] += g[i0 + i] * (G[i0 + i] * s[i]);
        }
      });
    });
  return out;
}

Var softmax_lastdim(const Var& x) {
  const Shape& s = x.shape();
  if (s.nd < 1 || s[-1] == 0) fail("softmax_lastdim: needs a non-empty last dim, got %s", s.str().c_str());
  const int64_t C = s[-1], N = detail::rows_of(s);
  Tensor y = Tensor::empty(s);
  const float* X = x.value().data();
#pragma omp parallel for if (N * C > detail::kParallelMin / 4) schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* xr = X + r * C;
    float* yr = y.data() + r * C;
    const float m = row_max(xr, C);
    RZ_SIMD
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] - m;
    exp_inplace(yr, C);
    float z = 0.0f;
    for (int64_t c = 0; c < C; ++c) z += yr[c];
    const float inv = 1.0f / z;
    RZ_SIMD
    for (int64_t c = 0; c < C; ++c) yr[c] *= inv;
  }
  Var out = make_output(y, {&x});
  if (out.requires_grad())
    // softmax_backward reads the output y: dx = y * (dy - sum(dy * y))
    tape().record([x = x, out, N, C]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      const float* Y = out.value().data();
      float* dX = x.grad().data();
#pragma omp parallel for if (N * C > detail::kParallelMin / 4) schedule(static)
      for (int64_t r = 0; r < N; ++r) {
        const float* yr = Y + r * C;
        const float* gr = g + r * C;
        float dot = 0.0f;
        for (int64_t c = 0; c < C; ++c) dot += gr[c] * yr[c];
        float* dx = dX + r * C;
        RZ_SIMD
        for (int64_t c = 0; c < C; ++c) dx[c] += yr[c] * (gr[c] - dot);
      }
    });
  return out;
}

}  // namespace razor
