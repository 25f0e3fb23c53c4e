// rmsnorm (Hugging Face semantics: x * rsqrt(mean(x^2) + eps) * w), fused forward and
// backward in fp32. The forward saves only the per-row inverse rms [N].
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

// x [.., C], w [C] -> [.., C]
Var rmsnorm(const Var& x, const Var& w, float eps) {
  const Shape& sx = x.shape();
  if (sx.nd < 1 || w.shape().nd != 1 || w.shape()[0] != sx[-1])
    fail("rmsnorm: x %s and weight %s do not match (weight must be [C] with C = x's last dim)", sx.str().c_str(),
         w.shape().str().c_str());
  if (!(eps >= 0.0f)) fail("rmsnorm: eps must be >= 0, got %g", double(eps));
  const int64_t C = sx[-1], N = detail::rows_of(sx);
  Tensor y = Tensor::empty(sx);
  Tensor rstd = Tensor::empty(Shape{N});
  const float* X = x.value().data();
  const float* W = w.value().data();
#pragma omp parallel for if (N * C > detail::kParallelMin) schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    // The row the engine computes too (core/vmath.h).
    rstd[r] = rmsnorm_row(X + r * C, W, C, eps, y.data() + r * C);
  }
  Var out = make_output(y, {&x, &w});
  if (out.requires_grad())
    // rmsnorm_backward reads x, w (values), the saved rstd [N] and dy.
    //   dx = rs * (g - x * rs^2 * mean(g * x)), g = dy * w;   dw += sum_rows dy * x * rs
    tape().record([x = x, w = w, out, rstd, N, C]() mutable {
      const float* dY = detail::grad_or_null(out);
      if (!dY) return;
      const float* X = x.value().data();
      const float* W = w.value().data();
      if (x.requires_grad()) {
        float* dX = x.grad().data();
#pragma omp parallel for if (N * C > detail::kParallelMin) schedule(static)
        for (int64_t r = 0; r < N; ++r) {
          const float* xr = X + r * C;
          const float* gr = dY + r * C;
          float* dx = dX + r * C;
          const float rs = rstd[r];
          float s0 = 0, s1 = 0;
          int64_t c = 0;
          for (; c + 2 <= C; c += 2) {
            s0 += gr[c] * W[c] * xr[c];
            s1 += gr[c + 1] * W[c + 1] * xr[c + 1];
          }
          for (; c < C; ++c) s0 += gr[c] * W[c] * xr[c];
          const float k = (s0 + s1) / float(C) * rs * rs;
          RZ_SIMD
          for (int64_t j = 0; j < C; ++j) dx[j] += rs * (gr[j] * W[j] - xr[j] * k);
        }
      }
      if (w.requires_grad())
        detail::reduce_rows(N, C, w.grad().data(), [&](int64_t r, float* acc) {
          const float* xr = X + r * C;
          const float* gr = dY + r * C;
          const float rs = rstd[r];
          RZ_SIMD
          for (int64_t j = 0; j < C; ++j) acc[j] += gr[j] * (xr[j] * rs);
        });
    });
  return out;
}

}  // namespace razor
