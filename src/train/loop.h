// The training-loop skeleton run_pretrain (train/pretrain.cpp) and run_qad (train/qad.cpp)
// share: the optimizer and its parameter groups, the LR schedule, the resume checks and the
// restore of a checkpoint's state, the eval / checkpoint cadence. Each loop keeps only what is
// its own (pretraining: CE on token windows; QAD: the teacher store, the distillation losses,
// data parallelism).
// Deliberately not here: the losses (distill/), the checkpoint format (train/checkpoint.h),
// metrics files and progress lines (train/metrics.h).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

#include "io/json.h"
#include "nn/model.h"
#include "train/adamw.h"
#include "train/checkpoint.h"

namespace razor {

// AdamW over m's flat parameter buffer with its two groups: weight decay on every parameter
// except the norm weights (NUMERICS.md §8).
AdamW make_optimizer(const Model& m, float weight_decay);

LrSchedule make_schedule(LrScheduleKind kind, float peak_lr, int64_t total_steps, float warmup_frac);

// Fails "--resume: <where> was made with <key> = <have>, this run asks for <want> (...)" for the
// first key whose JSON text differs between the checkpoint's run configuration and this run's.
void check_resume_keys(const Json& have, const Json& want, const std::string& where,
                       std::initializer_list<const char*> keys);

// Copies a checkpoint's parameters and AdamW moments into m and opt (the caller checked the
// sizes) and returns the step it was taken at.
int64_t restore_state(const Checkpoint& ck, Model& m, AdamW& opt);

// Whether 1-based step `step` of `total` is an eval / checkpoint step: every `every` steps
// (0: never) and always the last one.
inline bool cadence_due(int64_t every, int64_t step, int64_t total) {
  return (every > 0 && step % every == 0) || step == total;
}

}  // namespace razor
