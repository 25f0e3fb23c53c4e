#include "train/loop.h"

#include <algorithm>

#include "core/error.h"

namespace razor {

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

}  // namespace razor
