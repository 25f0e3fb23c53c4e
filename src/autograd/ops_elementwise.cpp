// Elementwise binary ops with trailing-dims broadcast (add, sub, mul), scale, and the full
// reductions sum / mean. Broadcast gradients are reduced over the leading rows with the
// deterministic chunked reduction of ops_util.h.
#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

namespace {

// b must equal a's shape or a's trailing dims. Returns b's element count (the period).
int64_t broadcast_period(const char* op, const Var& a, const Var& b) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  bool ok = sb.nd <= sa.nd;
  for (int i = 1; ok && i <= sb.nd; ++i) ok = sa[-i] == sb[-i];
  if (!ok || (sb.numel() == 0 && sa.numel() != 0))
    fail("%s: b %s must equal a %s or its trailing dims", op, sb.str().c_str(), sa.str().c_str());
  return sb.numel();
}

enum class BinOp { kAdd, kSub, kMul };

Var binary(const char* name, BinOp op, const Var& a, const Var& b) {
  const int64_t n = a.numel();
  const int64_t nb = broadcast_period(name, a, b);
  Tensor c = Tensor::empty(a.shape());
  const float* A = a.value().data();
  const float* B = b.value().data();
  float* Cp = c.data();
  const int64_t rows = nb ? n / nb : 0;
#pragma omp parallel for if (n > detail::kParallelMin) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* ar = A + r * nb;
    float* cr = Cp + r * nb;
    if (op == BinOp::kAdd)
      RZ_SIMD
      for (int64_t j = 0; j < nb; ++j) cr[j] = ar[j] + B[j];
    else if (op == BinOp::kSub)
      RZ_SIMD
      for (int64_t j = 0; j < nb; ++j) cr[j] = ar[j] - B[j];
    else
      RZ_SIMD
      for (int64_t j = 0; j < nb; ++j) cr[j] = ar[j] * B[j];
  }
  Var out = make_output(c, {&a, &b});
  if (!out.requires_grad()) return out;
  // backward: add/sub read nothing saved; mul reads the values of a and b.
  tape().record([a = a, b = b, out, op, n, nb, rows]() mutable {
    const float* dC = detail::grad_or_null(out);
    if (!dC) return;
    const float* A = a.value().data();
    const float* B = b.value().data();
    if (a.requires_grad()) {
      float* dA = a.grad().data();
#pragma omp parallel for if (n > detail::kParallelMin) schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const float* g = dC + r * nb;
        float* da = dA + r * nb;
        if (op == BinOp::kMul)
          RZ_SIMD
          for (int64_t j = 0; j < nb; ++j) da[j] += g[j] * B[j];
        else
          RZ_SIMD
          for (int64_t j = 0; j < nb; ++j) da[j] += g[j];
      }
    }
    if (b.requires_grad()) {
      float* dB = b.grad().data();
      if (op == BinOp::kAdd)
        detail::reduce_rows(rows, nb, dB, [&](int64_t r, float* acc) {
          const float* g = dC + r * nb;
          RZ_SIMD
          for (int64_t j = 0; j < nb; ++j) acc[j] += g[j];
        });
      else if (op == BinOp::kSub)
        detail::reduce_rows(rows, nb, dB, [&](int64_t r, float* acc) {
          const float* g = dC + r * nb;
          RZ_SIMD
          for (int64_t j = 0; j < nb; ++j) acc[j] -= g[j];
        });
      else
        detail::reduce_rows(rows, nb, dB, [&](int64_t r, float* acc) {
          const float* g = dC + r * nb;
          const float* ar = A + r * nb;
          RZ_SIMD
          for (int64_t j = 0; j < nb; ++j) acc[j] += g[j] * ar[j];
        });
    }
  });
  return out;
}

}  // namespace

Var add(const Var& a, const Var& b) { return binary("add", BinOp::kAdd, a, b); }
Var sub(const Var& a, const Var& b) { return binary("sub", BinOp::kSub, a, b); }
Var mul(const Var& a, const Var& b) { return binary("mul", BinOp::kMul, a, b); }

Var scale(const Var& a, float s) {
  const int64_t n = a.numel();
  Tensor c = Tensor::empty(a.shape());
  const float* A = a.value().data();
  float* Cp = c.data();
#pragma omp parallel for if (n > detail::kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; ++i) Cp[i] = A[i] * s;
  Var out = make_output(c, {&a});
  if (out.requires_grad())
    tape().record([a = a, out, s, n]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      float* da = a.grad().data();
#pragma omp parallel for if (n > detail::kParallelMin) schedule(static)
      for (int64_t i = 0; i < n; ++i) da[i] += g[i] * s;
    });
  return out;
}

namespace {

// Sum in double (a loss or a checksum over many elements must not lose small terms),
// reproducible for any thread count.
double sum_double(const float* x, int64_t n) {
  return detail::sum_terms(n, n, [x](int64_t i) { return double(x[i]); });
}

Var reduce_all(const Var& a, float factor) {
  const int64_t n = a.numel();
  Tensor c = Tensor::empty(Shape{1});
  c[0] = float(sum_double(a.value().data(), n) * factor);
  Var out = make_output(c, {&a});
  if (out.requires_grad())
    tape().record([a = a, out, factor, n]() mutable {
      if (!out.has_grad()) return;
      const float g = out.grad()[0] * factor;
      float* da = a.grad().data();
#pragma omp parallel for if (n > detail::kParallelMin) schedule(static)
      for (int64_t i = 0; i < n; ++i) da[i] += g;
    });
  return out;
}

}  // namespace

Var sum(const Var& a) { return reduce_all(a, 1.0f); }

Var mean(const Var& a) {
  if (a.numel() == 0) fail("mean: empty tensor %s", a.shape().str().c_str());
  return reduce_all(a, 1.0f / float(a.numel()));
}

}  // namespace razor
