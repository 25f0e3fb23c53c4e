// silu and the fused swiglu (silu(gate) * up). Backward recomputes the sigmoid from the
// saved inputs instead of keeping another activation-sized tensor.
#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

namespace {
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
}  // namespace

Var silu(const Var& x) {
  const int64_t n = x.numel();
  Tensor y = Tensor::empty(x.shape());
  const float* X = x.value().data();
#pragma omp parallel for if (n > detail::kParallelMin / 4) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = X[i] * sigmoid(X[i]);
  Var out = make_output(y, {&x});
  if (out.requires_grad())
    // silu_backward reads x: d silu = s * (1 + x * (1 - s))
    tape().record([x = x, out, n]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      const float* X = x.value().data();
      float* dx = x.grad().data();
#pragma omp parallel for if (n > detail::kParallelMin / 4) schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float s = sigmoid(X[i]);
        dx[i] += g[i] * (s * (1.0f + X[i] * (1.0f - s)));
      }
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
#pragma omp parallel for if (n > detail::kParallelMin / 4) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = (G[i] * sigmoid(G[i])) * U[i];
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
#pragma omp parallel for if (n > detail::kParallelMin / 4) schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float s = sigmoid(G[i]);
        if (dG) dG[i] += g[i] * U[i] * (s * (1.0f + G[i] * (1.0f - s)));
        if (dU) dU[i] += g[i] * (G[i] * s);
      }
    });
  return out;
}

}  // namespace razor

namespace razor {

// x [.., C] -> softmax over C (max-subtracted; -inf entries get probability 0, a row of only
// -inf gives NaN as it has no defined softmax).
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
    float m = xr[0];
    for (int64_t c = 1; c < C; ++c) m = std::max(m, xr[c]);
    float z = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      yr[c] = std::exp(xr[c] - m);
      z += yr[c];
    }
    const float inv = 1.0f / z;
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
        for (int64_t c = 0; c < C; ++c) dx[c] += yr[c] * (gr[c] - dot);
      }
    });
  return out;
}

}  // namespace razor
