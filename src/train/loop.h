// The training-loop skeleton run_pretrain (train/pretrain.cpp) and run_qad (train/qad.cpp)
// share: the optimizer and its parameter groups, the LR schedule, the resume checks and the
// restore of a checkpoint's state, the eval / checkpoint cadence. Each loop keeps only what is
// its own (pretraining: CE on token windows; QAD: the teacher store, the distillation losses,
// data parallelism).
// Also the per-step report both print: a metrics.csv row, the progress line, the chart.
// Deliberately not here: the losses (distill/), the checkpoint format (train/checkpoint.h),
// the CSV and SVG writers themselves (train/metrics.h).
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "nn/model.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/metrics.h"

namespace razor {

// AdamW over m's flat parameter buffer with its two groups: weight decay on every parameter
// except the norm weights (NUMERICS.md §8).
AdamW make_optimizer(const Model& m, float weight_decay);

// Keeps the memory a training step frees for the next step (glibc's malloc; elsewhere a no-op).
// Every step allocates and frees the same activations, gradients and loss buffers (tens of MiB
// at the default shape); by default glibc returns the free top of the heap to the kernel and
// serves blocks over its dynamic mmap threshold with fresh mappings, so each step page-faulted
// and zeroed them again (3.5% of a QAD step in `perf`, issue 23). Blocks up to 64 MiB now come
// from the heap, and up to 1 GiB of freed heap top is kept. Peak memory is unchanged.
void keep_step_memory();

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

// Writes the state after 1-based step `step` to dir (train/checkpoint.h): m's parameters, opt's
// moments, the run configuration, and the data RNG's state when given (else zeros).
void save_train_state(const std::string& dir, int64_t step, const Json& run, const Model& m, AdamW& opt,
                      const std::array<uint64_t, 4>* rng = nullptr);

// What a loop reports after each step: one metrics.csv row (OUT/metrics.csv, appended after
// the resumed step on --resume), the progress line on stderr (with "val_ppl X" on the steps
// that evaluated), and at the end OUT/chart.svg.
class StepReport {
 public:
  // ppl_decimals: how val_ppl prints on the progress line; progress=false: no progress line.
  StepReport(const std::string& out_dir, std::vector<std::string> columns, bool resume, int64_t step0,
             int64_t total_steps, bool progress, int ppl_decimals);
  // row: the step's values in column order; loss and tokens (this step's) feed the progress line.
  void step(const std::vector<double>& row, int64_t step, double loss, double tokens, double val_ppl);
  // Ends the progress line; chart=true also draws OUT/chart.svg from the metrics.
  void finish(bool chart);

 private:
  std::string out_;
  MetricsCsv csv_;
  std::unique_ptr<ProgressLine> progress_;
  int ppl_decimals_;
};

}  // namespace razor
