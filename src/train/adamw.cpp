#include "train/adamw.h"

#include <cmath>

#include "core/error.h"

namespace razor {

namespace {
constexpr size_t kNormBlock = 1 << 14;
}

float grad_global_norm(const float* g, size_t n) {
  const size_t n_blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(n_blocks, 0.0);
#pragma omp parallel for schedule(static)
  for (size_t blk = 0; blk < n_blocks; ++blk) {
    size_t lo = blk * kNormBlock, hi = std::min(n, lo + kNormBlock);
    double s = 0.0;
    for (size_t i = lo; i < hi; ++i) s += double(g[i]) * double(g[i]);
    partial[blk] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;  // fixed order: independent of the thread count
  return float(std::sqrt(total));
}

float clip_grad_norm(float* g, size_t n, float max_norm) {
  float norm = grad_global_norm(g, n);
  if (max_norm > 0.0f && std::isfinite(norm)) {
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f) {
#pragma omp parallel for schedule(static)
      for (size_t i = 0; i < n; ++i) g[i] *= coef;
    }
  }
  return norm;
}

namespace {
// One AdamW step over [0, n); Masked: decay only where decay_mask[i] != 0. The decay is a
// multiply by `decay` or by 1 (p * 1 = p: a select, not a branch, so the loop vectorises and
// gives the same bits as the branch did).
template <bool Masked>
void adamw_range(float* params, const float* grads, float* m, float* v, size_t n, const uint8_t* decay_mask,
                 float lr, float b1, float b2, float bc1, float bc2, float decay, float eps) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) {
    float g = grads[i];
    const float f = Masked ? (decay_mask[i] != 0 ? decay : 1.0f) : decay;
    float p = params[i] * f;
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float mhat = mi / bc1, vhat = vi / bc2;
    params[i] = p - lr * mhat / (std::sqrt(vhat) + eps);
  }
}
}  // namespace

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const uint8_t* decay_mask,
                  float lr, int64_t t, const AdamWConfig& cfg) {
  RZ_ASSERT(t >= 1);
  const float b1 = cfg.beta1, b2 = cfg.beta2;
  const float bc1 = 1.0f - float(std::pow(double(b1), double(t)));
  const float bc2 = 1.0f - float(std::pow(double(b2), double(t)));
  const float decay = 1.0f - lr * cfg.weight_decay;
  if (decay_mask)
    adamw_range<true>(params, grads, m, v, n, decay_mask, lr, b1, b2, bc1, bc2, decay, cfg.eps);
  else
    adamw_range<false>(params, grads, m, v, n, nullptr, lr, b1, b2, bc1, bc2, decay, cfg.eps);
}

AdamW::AdamW(size_t n, AdamWConfig cfg) : cfg_(cfg), m_(n, 0.0f), v_(n, 0.0f), decay_(n, 1) {
  RZ_CHECK(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1,
           "AdamW: betas must be in [0, 1) (got %g, %g)", cfg.beta1, cfg.beta2);
  RZ_CHECK(cfg.eps > 0 && cfg.weight_decay >= 0, "AdamW: eps must be > 0 and weight decay >= 0 (got %g, %g)", cfg.eps,
           cfg.weight_decay);
}

void AdamW::exclude_from_decay(size_t offset, size_t count) {
  RZ_ASSERT(offset <= decay_.size() && count <= decay_.size() - offset);
  std::fill(decay_.begin() + long(offset), decay_.begin() + long(offset + count), uint8_t(0));
}

float AdamW::step(float* params, float* grads, float lr) {
  float norm = clip_grad_norm(grads, m_.size(), cfg_.max_grad_norm);
  if (!std::isfinite(norm)) return norm;
  ++t_;
  adamw_update(params, grads, m_.data(), v_.data(), m_.size(), decay_.data(), lr, t_, cfg_);
  return norm;
}

int64_t LrSchedule::warmup_steps() const {
  float frac = warmup_frac >= 0 ? warmup_frac : (kind == LrScheduleKind::Constant ? 0.05f : 0.01f);
  return int64_t(std::llround(double(frac) * double(total_steps)));
}

float LrSchedule::lr_at(int64_t s) const {
  const int64_t w = warmup_steps();
  if (s < w) return peak_lr * float(s + 1) / float(w);
  if (kind == LrScheduleKind::Constant) return peak_lr;
  if (s >= total_steps) return 0.0f;
  const double progress = double(s - w) / double(total_steps - w);
  return float(double(peak_lr) * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

LrScheduleKind parse_lr_schedule(const std::string& name, const char* option) {
  if (name == "constant") return LrScheduleKind::Constant;
  if (name == "cosine") return LrScheduleKind::Cosine;
  fail("%s: unknown schedule '%s' (expected constant or cosine)", option, name.c_str());
}

const char* lr_schedule_name(LrScheduleKind k) { return k == LrScheduleKind::Constant ? "constant" : "cosine"; }

}  // namespace razor
