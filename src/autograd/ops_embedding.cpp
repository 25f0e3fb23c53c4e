// embedding: row gather from a [V, C] table; backward scatter-adds rows into the table grad.
// The scatter is parallel over column blocks (never over ids), so repeated ids never race
// and the summation order per element is the id order: deterministic.
#include <cstring>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

// table [V, C], ids [n] -> out_shape (numel n*C, last dim C)
Var embedding(const Var& table, const std::vector<int32_t>& ids, const Shape& out_shape) {
  const Shape& st = table.shape();
  if (st.nd != 2) fail("embedding: table must be [V, C], got %s", st.str().c_str());
  const int64_t V = st[0], C = st[1], n = int64_t(ids.size());
  if (out_shape.nd < 1 || out_shape[-1] != C || out_shape.numel() != n * C)
    fail("embedding: out shape %s does not hold %lld ids x C=%lld (table %s)", out_shape.str().c_str(),
         (long long)n, (long long)C, st.str().c_str());
  for (int64_t i = 0; i < n; ++i)
    if (ids[size_t(i)] < 0 || ids[size_t(i)] >= V)
      fail("embedding: id %d at position %lld outside the table's %lld rows", ids[size_t(i)], (long long)i,
           (long long)V);
  Tensor c = Tensor::empty(out_shape);
  const float* W = table.value().data();
#pragma omp parallel for if (n * C > detail::kParallelMin) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(c.data() + i * C, W + int64_t(ids[size_t(i)]) * C, size_t(C) * sizeof(float));
  Var out = make_output(c, {&table});
  if (out.requires_grad())
    // embedding_backward reads the ids (copied) and dout.
    tape().record([table = table, ids, out, n, C]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      float* dW = table.grad().data();
      constexpr int64_t kBlock = 64;
      const int64_t nblocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for if (n * C > detail::kParallelMin) schedule(static)
      for (int64_t cb = 0; cb < nblocks; ++cb) {
        const int64_t c0 = cb * kBlock, c1 = std::min(C, c0 + kBlock);
        for (int64_t i = 0; i < n; ++i) {
          float* dw = dW + int64_t(ids[size_t(i)]) * C;
          const float* gi = g + i * C;
          RZ_SIMD
          for (int64_t c = c0; c < c1; ++c) dw[c] += gi[c];
        }
      }
    });
  return out;
}

}  // namespace razor
