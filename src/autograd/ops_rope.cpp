// Rotary position embedding, rotate-half convention (HF Llama / Qwen):
//   out[i]       = x[i] * cos_i - x[i + D/2] * sin_i
//   out[i + D/2] = x[i + D/2] * cos_i + x[i] * sin_i,     i < D/2,
// angle_i(pos) = pos * theta^(-2i/D). The table and the row rotation are core/rope.h's.
// Backward is the inverse rotation (the transpose of an orthogonal 2x2 block).
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

namespace {

// Rotates every [D] vector of x [B, T, H, D]; sign = +1 forward, -1 the inverse (backward).
// `accumulate` adds into dst instead of writing it.
void rope_apply(const float* src, float* dst, int64_t B, int64_t T, int64_t H, int64_t D, const RopeTable& tab,
                int64_t pos0, float sign, bool accumulate) {
  const int64_t half = D / 2;
  const int64_t BT = B * T;
#pragma omp parallel for if (BT * H * D > detail::kParallelMin) schedule(static)
  for (int64_t bt = 0; bt < BT; ++bt) {
    const int64_t pos = pos0 + bt % T;
    const float* cs = tab.cos.data() + pos * half;
    const float* sn = tab.sin.data() + pos * half;
    for (int64_t h = 0; h < H; ++h) {
      const float* x = src + (bt * H + h) * D;
      float* y = dst + (bt * H + h) * D;
      if (accumulate)
        rope_row<true>(x, y, cs, sn, D, sign);
      else
        rope_row<false>(x, y, cs, sn, D, sign);
    }
  }
}

}  // namespace

// x [B, T, H, D] -> [B, T, H, D]
Var rope(const Var& x, const RopeTable& table, int64_t pos0) {
  const Shape& s = x.shape();
  if (s.nd != 4) fail("rope: x must be [B, T, H, D], got %s", s.str().c_str());
  const int64_t B = s[0], T = s[1], H = s[2], D = s[3];
  if (D != table.head_dim)
    fail("rope: x %s has head dim %lld but the table was made for %lld", s.str().c_str(), (long long)D,
         (long long)table.head_dim);
  if (pos0 < 0 || pos0 + T > table.max_pos)
    fail("rope: positions [%lld, %lld) outside the table's %lld positions (x %s)", (long long)pos0,
         (long long)(pos0 + T), (long long)table.max_pos, s.str().c_str());
  Tensor y = Tensor::empty(s);
  rope_apply(x.value().data(), y.data(), B, T, H, D, table, pos0, 1.0f, false);
  Var out = make_output(y, {&x});
  if (out.requires_grad())
  {
    // rope_backward reads only dy and the table rows [pos0, pos0 + T), copied because the
    // caller's table may be gone by the time backward runs.
    RopeTable rows;
    rows.max_pos = T;
    rows.head_dim = D;
    const size_t half = size_t(D / 2);
    rows.cos.assign(table.cos.begin() + long(size_t(pos0) * half), table.cos.begin() + long(size_t(pos0 + T) * half));
    rows.sin.assign(table.sin.begin() + long(size_t(pos0) * half), table.sin.begin() + long(size_t(pos0 + T) * half));
    tape().record([x = x, out, rows = std::move(rows), B, T, H, D]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      rope_apply(g, x.grad().data(), B, T, H, D, rows, 0, -1.0f, true);
    });
  }
  return out;
}

}  // namespace razor
