// head_losses: the lm_head GEMM, cross-entropy and the logit distillation loss over chunks of
// rows (losses.h). The row math is losses.cpp's and ops_loss.cpp's (losses_rows.h,
// cross_entropy_row_*), called in the same order, so a single chunk reproduces the
// materialised path bit for bit; what changes is only how many logits exist at once.
#include <algorithm>
#include <utility>

#include "autograd/ops.h"
#include "autograd/ops_util.h"
#include "core/error.h"
#include "distill/losses.h"
#include "distill/losses_rows.h"
#include "kernels/gemm.h"

namespace razor {

using namespace distill_detail;

int64_t head_chunk_rows(int64_t V, int64_t bytes) {
  RZ_CHECK(V > 0 && bytes > 0, "head_chunk_rows: V %lld, bytes %lld", (long long)V, (long long)bytes);
  return std::max<int64_t>(1, bytes / (2 * V * int64_t(sizeof(float))));
}

HeadLosses head_losses(const Var& x, const Var& w, const std::vector<int32_t>& targets,
                       const std::vector<SequenceView>* teacher, const DistillConfig& cfg, DistillStats* stats,
                       int64_t rows_per_chunk) {
  RZ_CHECK(x.defined() && w.defined() && x.value().dim() == 2 && w.value().dim() == 2 && x.size(1) == w.size(1),
           "head_losses: x %s and w %s must be [N, C] and [V, C]", x.defined() ? x.shape().str().c_str() : "undefined",
           w.defined() ? w.shape().str().c_str() : "undefined");
  const int64_t N = x.size(0), C = x.size(1), V = w.size(0);
  RZ_CHECK(int64_t(targets.size()) == N, "head_losses: %zu targets for %lld rows", targets.size(), (long long)N);
  int64_t n_ce = 0;
  for (int64_t r = 0; r < N; ++r) {
    const int32_t t = targets[size_t(r)];
    if (t == -1) continue;
    if (t < 0 || t >= V)
      fail("cross_entropy: target %d at row %lld outside [0, %lld) (-1 means ignore)", t, (long long)r, (long long)V);
    ++n_ce;
  }
  const bool kd = teacher != nullptr;
  int64_t T = N;
  std::vector<uint8_t> valid;
  std::vector<double> wseq;
  double lambda = 0, cf = 1, cr = 0;
  int64_t n_kd = 0;
  if (kd) {
    cfg.validate();
    check_batch(*teacher, "head_losses");
    const int64_t B = int64_t(teacher->size());
    T = (*teacher)[0].T;
    RZ_CHECK(B * T == N && (*teacher)[0].V == V, "head_losses: %lld rows x V %lld for a teacher batch of %lld x %lld, V %lld",
             (long long)N, (long long)V, (long long)B, (long long)T, (long long)(*teacher)[0].V);
    valid = valid_positions(*teacher, cfg.mask_align);
    wseq = sequence_weights(valid, B, T, &n_kd);
    lambda = logit_lambda(*teacher, valid, cfg);
    mix_weights(cfg.logit_loss, lambda, &cf, &cr);
  }
  const int64_t R = std::min(std::max<int64_t>(rows_per_chunk, 1), N);
  const float* X = x.value().data();
  const float* W = w.value().data();

  std::vector<float> lse(size_t(N), 0.0f);
  std::vector<double> ce_row(size_t(N), 0.0), row_f(size_t(N), 0.0), row_r(size_t(N), 0.0);
  std::vector<RowSaved> saved(kd ? size_t(N) : 0);
  Tensor z = Tensor::empty({R, V});  // one chunk of logits
  for (int64_t r0 = 0; r0 < N; r0 += R) {
    const int64_t n = std::min(R, N - r0);
    sgemm(false, true, n, V, C, 1.0f, X + r0 * C, C, W, C, 0.0f, z.data(), V);
    const float* Z = z.data();
#pragma omp parallel for if (n * V > detail::kParallelMin / 4) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int32_t t = targets[size_t(r0 + i)];
      if (t == -1) continue;
      const float l = cross_entropy_row_lse(Z + i * V, V);
      lse[size_t(r0 + i)] = l;
      ce_row[size_t(r0 + i)] = double(l) - double(Z[i * V + t]);
    }
    if (kd) rows_forward(Z, r0, n, *teacher, valid, saved.data(), row_f.data(), row_r.data());
  }
  // The same reductions as cross_entropy (sum_terms over rows) and logit_distill_loss (row order).
  const double ce_total = detail::sum_terms(N, N * V * 4, [&](int64_t r) { return ce_row[size_t(r)]; });
  HeadLosses out;
  out.ce = make_output(Tensor::full({1}, n_ce ? float(ce_total / double(n_ce)) : 0.0f), {&x, &w});
  if (kd) {
    double fkl, rkl;
    weighted_kl_sums(row_f, row_r, wseq, T, &fkl, &rkl);
    const double loss = cf * fkl + cr * rkl;
    if (stats) {
      stats->fkl = fkl, stats->rkl = rkl, stats->lambda = lambda, stats->logit = loss;
      stats->valid = n_kd;
    }
    out.logit = make_output(Tensor::full({1}, float(loss)), {&x, &w});
  }
  if (!out.ce.requires_grad()) return out;

  // head_losses_backward reads x, w (values), the targets, the teacher views and the per-row
  // saved sums; recomputes each chunk's logits, forms its gradient in the order the
  // materialised path does (logit loss first, then CE: the tape replays the later op first),
  // then dx += dz w and dw += dz^T x for the chunk. When all rows are one chunk, the forward's
  // logits are kept instead of recomputed (the same GEMM call, so the same bits): they fit the
  // chunk budget, and the backward would allocate them anyway.
  Tensor kept = R >= N ? z : Tensor();
  tape().record([x = x, w = w, targets, teacher = kd ? *teacher : std::vector<SequenceView>(), valid, wseq,
                 saved = std::move(saved), lse = std::move(lse), ce = out.ce, logit = out.logit, kd, cf, cr, n_ce, N,
                 C, V, T, R, kept]() mutable {
    const bool do_ce = ce.has_grad() && n_ce > 0, do_kd = kd && logit.has_grad();
    if (!do_ce && !do_kd) return;
    const float gce = do_ce ? ce.grad()[0] / float(n_ce) : 0.0f;
    const double gl = do_kd ? double(logit.grad()[0]) : 0.0;
    const float* X = x.value().data();
    const float* W = w.value().data();
    float* dX = x.requires_grad() ? x.grad().data() : nullptr;
    float* dW = w.requires_grad() ? w.grad().data() : nullptr;
    const bool reuse = kept.data() != nullptr;  // one chunk: the forward's logits
    Tensor z = reuse ? std::move(kept) : Tensor::empty({R, V}), dz = Tensor::empty({R, V});
    for (int64_t r0 = 0; r0 < N; r0 += R) {
      const int64_t n = std::min(R, N - r0);
      if (!reuse) sgemm(false, true, n, V, C, 1.0f, X + r0 * C, C, W, C, 0.0f, z.data(), V);
      zero_floats(dz.data(), n * V);
      const float* Z = z.data();
      float* dZ = dz.data();
      if (do_kd) rows_backward(Z, dZ, r0, n, teacher, valid, saved.data(), wseq, gl, cf, cr);
      if (do_ce) {
#pragma omp parallel for if (n * V > detail::kParallelMin / 4) schedule(static)
        for (int64_t i = 0; i < n; ++i) {
          const int32_t t = targets[size_t(r0 + i)];
          if (t != -1) cross_entropy_row_backward(Z + i * V, V, lse[size_t(r0 + i)], t, gce, dZ + i * V);
        }
      }
      if (dX) sgemm(false, false, n, C, V, 1.0f, dZ, V, W, C, 1.0f, dX + r0 * C, C);
      if (dW) sgemm(true, false, V, C, n, 1.0f, dZ, V, X + r0 * C, C, 1.0f, dW, C);
    }
  });
  return out;
}

}  // namespace razor
