// Shape ops: reshape (shares the buffer), transpose, slice, concat (materialised copies).
// Each decomposes the tensor as [outer, dim, inner] blocks so copies are contiguous runs.
#include <cstring>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

namespace {

int norm_dim(const char* op, const Shape& s, int dim) {
  int d = dim < 0 ? dim + s.nd : dim;
  if (d < 0 || d >= s.nd) fail("%s: dim %d out of range for %s", op, dim, s.str().c_str());
  return d;
}

int64_t prod(const Shape& s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; ++i) p *= s.d[i];
  return p;
}

}  // namespace

Var reshape(const Var& a, const Shape& s) {
  if (s.numel() != a.numel())
    fail("reshape: cannot view %s (%lld elements) as %s", a.shape().str().c_str(), (long long)a.numel(),
         s.str().c_str());
  Var out = make_output(a.value().reshape(s), {&a});
  if (out.requires_grad())
    tape().record([a = a, out]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g || a.adopt_grad(out.grad())) return;  // out's gradient is a's: 0 + g = g
      float* da = a.grad().data();
      const int64_t n = a.numel();
      for (int64_t i = 0; i < n; ++i) da[i] += g[i];
    });
  return out;
}

// Swaps dims d0 and d1. Implemented as a strided 4-D copy (shapes padded to 4 dims).
Var transpose(const Var& a, int d0, int d1) {
  const Shape& sa = a.shape();
  d0 = norm_dim("transpose", sa, d0);
  d1 = norm_dim("transpose", sa, d1);
  Shape so = sa;
  std::swap(so.d[d0], so.d[d1]);
  // Input strides, then permuted so out index (i0..i3) reads in[sum i_k * pstride_k].
  int64_t stride[kMaxDims] = {0, 0, 0, 0};
  {
    int64_t st = 1;
    for (int i = sa.nd - 1; i >= 0; --i) {
      stride[i] = st;
      st *= sa.d[i];
    }
  }
  std::swap(stride[d0], stride[d1]);
  int64_t dims[kMaxDims] = {1, 1, 1, 1}, pst[kMaxDims] = {0, 0, 0, 0};
  const int off = kMaxDims - so.nd;
  for (int i = 0; i < so.nd; ++i) {
    dims[off + i] = so.d[i];
    pst[off + i] = stride[i];
  }
  auto for_each = [dims, pst](auto fn) {
    const int64_t n01 = dims[0] * dims[1];
#pragma omp parallel for if (n01 * dims[2] * dims[3] > detail::kParallelMin) schedule(static)
    for (int64_t ij = 0; ij < n01; ++ij) {
      const int64_t i0 = ij / dims[1], i1 = ij % dims[1];
      int64_t o = ij * dims[2] * dims[3];
      for (int64_t i2 = 0; i2 < dims[2]; ++i2)
        for (int64_t i3 = 0; i3 < dims[3]; ++i3, ++o) fn(o, i0 * pst[0] + i1 * pst[1] + i2 * pst[2] + i3 * pst[3]);
    }
  };
  Tensor c = Tensor::empty(so);
  const float* A = a.value().data();
  float* Cp = c.data();
  for_each([&](int64_t o, int64_t i) { Cp[o] = A[i]; });
  Var out = make_output(c, {&a});
  if (out.requires_grad())
    tape().record([a = a, out, for_each]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      float* da = a.grad().data();
      // A permutation: every input element is written by exactly one output element.
      for_each([&](int64_t o, int64_t i) { da[i] += g[o]; });
    });
  return out;
}

Var slice(const Var& a, int dim, int64_t start, int64_t len) {
  const Shape& sa = a.shape();
  const int d = norm_dim("slice", sa, dim);
  if (start < 0 || len < 0 || start + len > sa.d[d])
    fail("slice: range [%lld, %lld) of dim %d outside %s", (long long)start, (long long)(start + len), dim,
         sa.str().c_str());
  const int64_t outer = prod(sa, 0, d), inner = prod(sa, d + 1, sa.nd), n = sa.d[d];
  Shape so = sa;
  so.d[d] = len;
  Tensor c = Tensor::empty(so);
  const float* A = a.value().data();
  float* Cp = c.data();
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(Cp + o * len * inner, A + (o * n + start) * inner, size_t(len * inner) * sizeof(float));
  Var out = make_output(c, {&a});
  if (out.requires_grad())
    tape().record([a = a, out, outer, inner, n, start, len]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      float* da = a.grad().data();
      for (int64_t o = 0; o < outer; ++o) {
        const float* go = g + o * len * inner;
        float* dd = da + (o * n + start) * inner;
        for (int64_t i = 0; i < len * inner; ++i) dd[i] += go[i];
      }
    });
  return out;
}

Var concat(const std::vector<Var>& xs, int dim) {
  if (xs.empty()) fail("concat: no inputs");
  const Shape& s0 = xs[0].shape();
  const int d = norm_dim("concat", s0, dim);
  int64_t total = 0;
  bool rg = false;
  for (const Var& x : xs) {
    const Shape& s = x.shape();
    bool ok = s.nd == s0.nd;
    for (int i = 0; ok && i < s.nd; ++i) ok = i == d || s.d[i] == s0.d[i];
    if (!ok) fail("concat: %s does not match %s outside dim %d", s.str().c_str(), s0.str().c_str(), dim);
    total += s.d[d];
    rg = rg || x.requires_grad();
  }
  rg = rg && grad_enabled();
  const int64_t outer = prod(s0, 0, d), inner = prod(s0, d + 1, s0.nd);
  Shape so = s0;
  so.d[d] = total;
  Tensor c = Tensor::empty(so);
  int64_t off = 0;
  for (const Var& x : xs) {
    const int64_t len = x.shape().d[d];
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(c.data() + (o * total + off) * inner, x.value().data() + o * len * inner,
                  size_t(len * inner) * sizeof(float));
    off += len;
  }
  Var out(c, rg);
  if (rg)
    tape().record([xs = std::vector<Var>(xs), out, d, outer, inner, total]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      int64_t off = 0;
      for (Var& x : xs) {
        const int64_t len = x.shape().d[d];
        if (x.requires_grad()) {
          float* dx = x.grad().data();
          for (int64_t o = 0; o < outer; ++o) {
            const float* go = g + (o * total + off) * inner;
            float* dd = dx + o * len * inner;
            for (int64_t i = 0; i < len * inner; ++i) dd[i] += go[i];
          }
        }
        off += len;
      }
    });
  return out;
}

}  // namespace razor
