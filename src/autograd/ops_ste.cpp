// Straight-through estimator (NUMERICS.md section 3): forward out = f(x); backward passes
// the gradient through unchanged (dx += dout), no clipping mask, nothing through f.
#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

Var ste(const Var& x, const std::function<void(const Tensor& in, Tensor& out)>& f) {
  if (!f) fail("ste: no forward function given (x %s)", x.shape().str().c_str());
  Tensor y = Tensor::empty(x.shape());
  f(x.value(), y);
  if (y.shape() != x.shape())
    fail("ste: the forward function changed the shape %s to %s", x.shape().str().c_str(), y.shape().str().c_str());
  Var out = make_output(y, {&x});
  if (out.requires_grad())
    // ste_backward reads only dout.
    tape().record([x = x, out]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g || x.adopt_grad(out.grad())) return;  // out's gradient is x's: 0 + g = g
      float* dx = x.grad().data();
      const int64_t n = x.numel();
#pragma omp parallel for if (n > detail::kParallelMin) schedule(static)
      for (int64_t i = 0; i < n; ++i) dx[i] += g[i];
    });
  return out;
}

}  // namespace razor
