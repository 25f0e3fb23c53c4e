#include "train/loop.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace razor {

void keep_step_memory() {
#ifdef __GLIBC__
  // Older glibc refuses an mmap threshold above 32 MiB (half its heap size); then take that.
  if (!mallopt(M_MMAP_THRESHOLD, 64 << 20)) mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

AdamW make_optimizer(const Model& m, float weight_decay) {
  AdamWConfig acfg;
  acfg.weight_decay = weight_decay;
  AdamW opt(size_t(m.params.numel()), acfg);
  for (const Param& p : m.entries)
    if (p.kind == ParamKind::Norm) opt.exclude_from_decay(size_t(p.offset), size_t(p.value.numel()));
  return opt;
}

LrSchedule make_schedule(LrScheduleKind kind, float peak_lr, int64_t total_steps, float warmup_frac) {
  LrSchedule s;
  s.kind = kind;
  s.peak_lr = peak_lr;
  s.total_steps = total_steps;
  s.warmup_frac = warmup_frac;
  return s;
}

void check_resume_keys(const Json& have, const Json& want, const std::string& where,
                       std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    const Json* a = have.find(k);
    const Json* b = want.find(k);
    const std::string sa = a ? a->dump() : "(missing)", sb = b ? b->dump() : "(missing)";
    if (sa != sb)
      fail("--resume: %s was made with %s = %s, this run asks for %s (use the same options, or a new --out)",
           where.c_str(), k, sa.c_str(), sb.c_str());
  }
}

int64_t restore_state(const Checkpoint& ck, Model& m, AdamW& opt) {
  RZ_ASSERT(ck.params.size() == size_t(m.params.numel()));
  std::copy(ck.params.begin(), ck.params.end(), m.params.data());
  opt.m() = ck.adam_m;
  opt.v() = ck.adam_v;
  opt.set_steps_done(ck.meta.step);
  return ck.meta.step;
}

void save_train_state(const std::string& dir, int64_t step, const Json& run, const Model& m, AdamW& opt,
                      const std::array<uint64_t, 4>* rng) {
  CheckpointMeta meta;
  meta.step = step;
  meta.data_cursor = uint64_t(step);
  if (rng) meta.rng = *rng;
  meta.config = run;
  save_checkpoint(dir, meta, m.params.data(), opt.m().data(), opt.v().data(), size_t(m.params.numel()));
}

StepReport::StepReport(const std::string& out_dir, std::vector<std::string> columns, bool resume, int64_t step0,
                       int64_t total_steps, bool progress, int ppl_decimals)
    : out_(out_dir),
      csv_(out_dir + "/metrics.csv", std::move(columns), resume, double(step0)),
      progress_(progress ? new ProgressLine(total_steps, 10) : nullptr),
      ppl_decimals_(ppl_decimals) {}

void StepReport::step(const std::vector<double>& row, int64_t step, double loss, double tokens, double val_ppl) {
  csv_.row(row);
  if (progress_)
    progress_->update(step, loss, tokens,
                      std::isfinite(val_ppl) ? strfmt("val_ppl %.*f", ppl_decimals_, val_ppl) : std::string());
}

void StepReport::finish(bool chart) {
  if (progress_) progress_->finish();
  if (chart) write_metrics_chart(out_ + "/metrics.csv", out_ + "/chart.svg");
}

}  // namespace razor
