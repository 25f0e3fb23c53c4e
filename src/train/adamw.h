// AdamW on flat fp32 buffers (NUMERICS.md §8) and the learning-rate schedules.
// Parameters, gradients and both moments are plain arrays of n floats (llm.c style): one
// loop updates every parameter. Weight decay is decoupled (PyTorch AdamW:
// p -= lr*wd*p, then the Adam step) and skipped for elements marked no-decay (norm weights).
// The global gradient norm is summed in fixed-size blocks in double, so it is bit-identical
// for any thread count (resume and reruns give the same weights).
// Deliberately not here: parameter naming (the model decides which ranges are no-decay),
// gradient accumulation (the loop averages micro-batches before calling step()).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace razor {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;
  float max_grad_norm = 1.0f;  // <= 0: no clipping
};

// Global L2 norm of g[0..n).
float grad_global_norm(const float* g, size_t n);
// Scales g so its global norm is at most max_norm (PyTorch: coef = max_norm / (norm + 1e-6),
// applied only when coef < 1). Returns the norm before clipping.
float clip_grad_norm(float* g, size_t n, float max_norm);

// One AdamW update of n elements at 1-based step t (bias correction 1 - beta^t).
// decay_mask: nullptr (decay everything) or n bytes, 1 = decay, 0 = no decay.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const uint8_t* decay_mask,
                  float lr, int64_t t, const AdamWConfig& cfg);

// Owns the moments, the decay mask and the step count.
class AdamW {
 public:
  AdamW(size_t n, AdamWConfig cfg = {});
  size_t size() const { return m_.size(); }
  // Marks [offset, offset + count) as not weight-decayed.
  void exclude_from_decay(size_t offset, size_t count);
  // Clips grads in place, then updates params. Returns the pre-clip global norm. When that
  // norm is not finite the update is skipped (params, moments and step stay as they were)
  // and the caller decides what to do.
  float step(float* params, float* grads, float lr);
  int64_t steps_done() const { return t_; }

  // State, for checkpoints.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  void set_steps_done(int64_t t) { t_ = t; }
  const AdamWConfig& config() const { return cfg_; }

 private:
  AdamWConfig cfg_;
  std::vector<float> m_, v_;
  std::vector<uint8_t> decay_;
  int64_t t_ = 0;
};

enum class LrScheduleKind { Constant, Cosine };

// "constant": linear warmup then constant (default warmup 5% of steps);
// "cosine": linear warmup then cosine decay to 0 at total_steps (default warmup 1%).
struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::Constant;
  float peak_lr = 2e-5f;
  int64_t total_steps = 1;
  float warmup_frac = -1.0f;  // < 0: the kind's default

  int64_t warmup_steps() const;
  // Learning rate for 0-based step s: warmup gives peak * (s + 1) / W for s < W (the first
  // step already moves); cosine gives peak * 0.5 * (1 + cos(pi * (s - W) / (total - W))).
  float lr_at(int64_t s) const;
};

// Parses "constant" / "cosine"; throws naming `option` otherwise.
LrScheduleKind parse_lr_schedule(const std::string& name, const char* option = "--schedule");
const char* lr_schedule_name(LrScheduleKind k);

}  // namespace razor
