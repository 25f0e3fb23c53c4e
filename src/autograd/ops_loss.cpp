// Losses: fused cross-entropy (log-softmax + NLL, fp32, saves only the per-row logsumexp),
// mse, cosine similarity along the last dim.
#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

// buf[0..n) = exp(x[0..n) - shift): one chunk of a row's softmax numerators.
static inline void exp_shifted(const float* x, int64_t n, float shift, float* buf) {
  RZ_SIMD
  for (int64_t c = 0; c < n; ++c) buf[c] = x[c] - shift;
  exp_inplace(buf, n);
}

float cross_entropy_row_lse(const float* xr, int64_t V) {
  const float m = row_max(xr, V);
  double z = 0.0;  // exp_shifted_sum's double lanes per chunk, the chunks summed in order
  float buf[kExpChunk];
  for (int64_t c0 = 0; c0 < V; c0 += kExpChunk) z += exp_shifted_sum(xr + c0, m, buf, std::min(kExpChunk, V - c0));
  return m + float(std::log(z));
}

void cross_entropy_row_backward(const float* xr, int64_t V, float l, int32_t t, float g, float* dx) {
  float buf[kExpChunk];
  for (int64_t c0 = 0; c0 < V; c0 += kExpChunk) {
    const int64_t n = std::min(kExpChunk, V - c0);
    exp_shifted(xr + c0, n, l, buf);
    RZ_SIMD
    for (int64_t c = 0; c < n; ++c) dx[c0 + c] += g * buf[c];
  }
  dx[t] -= g;
}

// logits [N, V], targets [N] (-1 = ignore) -> [1], mean over the valid rows (0 when none).
Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets) {
  const Shape& s = logits.shape();
  if (s.nd != 2) fail("cross_entropy: logits must be [N, V], got %s", s.str().c_str());
  const int64_t N = s[0], V = s[1];
  if (int64_t(targets.size()) != N)
    fail("cross_entropy: %zu targets for logits %s", targets.size(), s.str().c_str());
  int64_t valid = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int32_t t = targets[size_t(i)];
    if (t == -1) continue;
    if (t < 0 || t >= V)
      fail("cross_entropy: target %d at row %lld outside [0, %lld) (logits %s; -1 means ignore)", t, (long long)i,
           (long long)V, s.str().c_str());
    ++valid;
  }
  Tensor lse = Tensor::empty(Shape{N});
  const float* X = logits.value().data();
  // Row losses summed by detail::sum_terms: parallel over rows, reproducible for any thread count.
  const double total = detail::sum_terms(N, N * V * 4, [&](int64_t r) -> double {
    const int32_t t = targets[size_t(r)];
    if (t == -1) {
      lse[r] = 0.0f;
      return 0.0;
    }
    const float* xr = X + r * V;
    const float l = cross_entropy_row_lse(xr, V);
    lse[r] = l;
    return double(l) - double(xr[t]);
  });
  Tensor loss = Tensor::empty(Shape{1});
  loss[0] = valid ? float(total / double(valid)) : 0.0f;
  Var out = make_output(loss, {&logits});
  if (out.requires_grad() && valid > 0)
    // cross_entropy_backward reads the logits (values), targets, the saved lse [N] and dloss:
    //   dlogits[r] += dloss / valid * (softmax(logits[r]) - onehot(target[r])) on valid rows.
    tape().record([logits = logits, targets, out, lse, N, V, valid]() mutable {
      if (!out.has_grad()) return;
      const float g = out.grad()[0] / float(valid);
      const float* X = logits.value().data();
      float* dX = logits.grad().data();
#pragma omp parallel for if (N * V > detail::kParallelMin / 4) schedule(static)
      for (int64_t r = 0; r < N; ++r) {
        const int32_t t = targets[size_t(r)];
        if (t == -1) continue;
        cross_entropy_row_backward(X + r * V, V, lse[r], t, g, dX + r * V);
      }
    });
  return out;
}

// a, b same shape -> [1] mean((a - b)^2)
Var mse(const Var& a, const Var& b) {
  if (a.shape() != b.shape())
    fail("mse: shapes differ: a %s vs b %s", a.shape().str().c_str(), b.shape().str().c_str());
  const int64_t n = a.numel();
  if (n == 0) fail("mse: empty tensors %s", a.shape().str().c_str());
  const float* A = a.value().data();
  const float* B = b.value().data();
  const double total = detail::sum_terms(n, n, [A, B](int64_t i) {
    const double d = double(A[i]) - double(B[i]);
    return d * d;
  });
  Tensor loss = Tensor::empty(Shape{1});
  loss[0] = float(total / double(n));
  Var out = make_output(loss, {&a, &b});
  if (out.requires_grad())
    // mse_backward reads a, b: da += 2 (a - b) / n * dloss, db -= the same.
    tape().record([a = a, b = b, out, n]() mutable {
      if (!out.has_grad()) return;
      const float g = 2.0f * out.grad()[0] / float(n);
      const float* A = a.value().data();
      const float* B = b.value().data();
      float* dA = a.requires_grad() ? a.grad().data() : nullptr;
      float* dB = b.requires_grad() ? b.grad().data() : nullptr;
#pragma omp parallel for if (n > detail::kParallelMin) schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float d = g * (A[i] - B[i]);
        if (dA) dA[i] += d;
        if (dB) dB[i] -= d;
      }
    });
  return out;
}

// a, b [.., C] -> [..]: a.b / (max(|a|, eps) * max(|b|, eps)), eps = 1e-8.
// A 1-D input gives shape [1].
Var cosine_similarity(const Var& a, const Var& b) {
  if (a.shape() != b.shape() || a.shape().nd < 1)
    fail("cosine_similarity: shapes differ or are scalars: a %s vs b %s", a.shape().str().c_str(),
         b.shape().str().c_str());
  constexpr double kEps = 1e-8;
  const Shape& s = a.shape();
  const int64_t C = s[-1], N = detail::rows_of(s);
  Shape so;
  if (s.nd == 1) {
    so = Shape{1};
  } else {
    so = s;
    so.nd = s.nd - 1;
    so.d[s.nd - 1] = 1;
  }
  // Saved per row: dot, |a|, |b| (double accumulation: C can be thousands).
  Tensor stats = Tensor::empty(Shape{N, 3});
  Tensor y = Tensor::empty(so);
  const float* A = a.value().data();
  const float* B = b.value().data();
#pragma omp parallel for if (N * C > detail::kParallelMin) schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const float* ar = A + r * C;
    const float* br = B + r * C;
    double ab = 0, aa = 0, bb = 0;
    for (int64_t c = 0; c < C; ++c) {
      ab += double(ar[c]) * br[c];
      aa += double(ar[c]) * ar[c];
      bb += double(br[c]) * br[c];
    }
    const double na = std::max(std::sqrt(aa), kEps), nb = std::max(std::sqrt(bb), kEps);
    stats[r * 3 + 0] = float(ab);
    stats[r * 3 + 1] = float(na);
    stats[r * 3 + 2] = float(nb);
    y[r] = float(ab / (na * nb));
  }
  Var out = make_output(y, {&a, &b});
  if (out.requires_grad())
    // cosine_backward reads a, b, the saved (dot, |a|, |b|) [N, 3] and dy:
    //   d cos / da = b / (na nb) - cos * a / na^2   (the second term only when |a| > eps)
    tape().record([a = a, b = b, out, stats, N, C]() mutable {
      const float* g = detail::grad_or_null(out);
      if (!g) return;
      const float* A = a.value().data();
      const float* B = b.value().data();
      float* dA = a.requires_grad() ? a.grad().data() : nullptr;
      float* dB = b.requires_grad() ? b.grad().data() : nullptr;
#pragma omp parallel for if (N * C > detail::kParallelMin) schedule(static)
      for (int64_t r = 0; r < N; ++r) {
        const double ab = stats[r * 3 + 0], na = stats[r * 3 + 1], nb = stats[r * 3 + 2];
        const double inv = 1.0 / (na * nb), cs = ab * inv;
        const float ka = float(g[r] * inv), kb = ka;
        const float ca = na > kEps ? float(g[r] * cs / (na * na)) : 0.0f;
        const float cb = nb > kEps ? float(g[r] * cs / (nb * nb)) : 0.0f;
        const float* ar = A + r * C;
        const float* br = B + r * C;
        if (dA)
          for (int64_t c = 0; c < C; ++c) dA[r * C + c] += ka * br[c] - ca * ar[c];
        if (dB)
          for (int64_t c = 0; c < C; ++c) dB[r * C + c] += kb * ar[c] - cb * br[c];
      }
    });
  return out;
}

}  // namespace razor
