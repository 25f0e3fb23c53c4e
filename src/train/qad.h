// Quantization-aware distillation (`razor train`): the student is the teacher's architecture
// initialised from the teacher's weights with fake-quant hooks (nn/quant_hooks.h); each step
// reads the micro-batch's teacher data from the store (distill/store.h) and minimises
//   a_task * CE + a_feature * AFD + a_logit * (EAKLD | CAKLD | FKL | RKL)      (NUMERICS §5-8)
// with AdamW (no weight decay on norms), an LR schedule, gradient accumulation and a global
// clip of 1.0. The run directory gets metrics.csv, an SVG chart, run.json, atomic checkpoints
// (exact --resume), the student's latent and dequantized weights in HF layout, and a summary.
//
// Data order: optimizer step s, micro-batch a, row b reads global sample
// j = (s*accum + a)*B + b, which is store sequence perm_e[j mod N] with e = j / N and perm_e a
// Fisher-Yates permutation seeded by (seed, e) alone; the data cursor is the step, so a
// resumed run reads exactly the sequences the interrupted one would have read.
//
// Data parallel (mpirun -np N, core/dist.h): every rank holds the whole student and
// optimizer; rank r runs micro-batches a = r, r+N, ... of each step (so the global batch,
// batch * accum, is the same for any N: use accum a multiple of N), the gradients are summed
// with one bucketed allreduce, and every rank applies the same AdamW step. Rank 0 alone
// writes run.json, metrics, checkpoints and the outputs; a checkpoint holds no N, so
// --resume works with another N (rank 0 reads it and broadcasts it).
// Deliberately not here: the store writer (train/teacher_dump.h), the losses
// (distill/losses.h), packing the student (`razor pack`, see pack_student_hook).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "distill/losses.h"
#include "train/teacher_dump.h"
#include "train/adamw.h"
#include "train/task_eval.h"

namespace razor {

// --init gptq / gptq-mlp: the student's start is made by GPTQ from the teacher.
inline bool init_from_gptq(const std::string& init) { return init == "gptq" || init == "gptq-mlp"; }

struct QadConfig {
  std::string teacher_dir = "data/teacher";
  // The student's initial latent weights ("" = the teacher's): a checkpoint of the teacher's
  // architecture, e.g. `razor quantize --ptq gptq --latent -o DIR` (QAD from GPTQ's weights).
  std::string init_dir;
  // init_dir == "gptq": the student starts from GPTQ's weights of the teacher at the student's
  // layout (as `razor quantize --ptq gptq --latent` writes them), calibrated on this many
  // sequences of --data's training split (docs/quality.md: this start keeps word problems).
  // init_dir == "gptq-mlp": the same, but only the MLP matrices (gate, up, down) take GPTQ's
  // weights; attention, norms and embedding keep the teacher's.
  int64_t init_calib_sequences = 128;
  std::string data;   // --data as train/data.h reads it ("" = "default": the default corpus + the task suite)
  std::string valid;  // a validation .tok ("" = the split prepare_data gives, if any)
  std::string cache_dir = "data/cache";  // where prepare_data caches token shards
  bool records = false;  // --records: .txt documents / .ids lines one sequence each (data.h)
  std::string store;  // teacher store ("" = <out>/store); dumped when it has no manifest
  std::string out;    // run directory ("" = runs/<name>)
  TeacherDumpOptions dump;  // store settings when the store must be written (seq_len is set from `seq`)

  double rho = 0.125;  // 1.88 bits
  int group = 64;
  float beta = 2.0f;
  bool a8 = true, kv8 = true;
  bool int_forward = true;  // with a8: the quantized linears' forward on the packed integer kernels
  std::string plan;  // bit-budget plan file (`razor plan`): per-tensor layouts over rho/group ("" = none)

  DistillConfig distill;
  bool logit_none = false, feature_none = false;
  double a_task = -1, a_feature = -1, a_logit = -1;  // < 0: NUMERICS §8 default for the bit width

  float lr = 5e-4f;  // see docs/qad.md: the paper's 2e-5 barely moves a 7M model in a few hundred steps
  LrScheduleKind schedule = LrScheduleKind::Cosine;  // constant loses arithmetic (docs/quality.md)
  float warmup_frac = -1;  // < 0: the schedule's default
  float weight_decay = 0.01f;
  int batch = 8, seq = 256, accum = 1;
  bool recompute = false;  // Model::recompute: layer activations made again in the backward
  int64_t steps = 0;   // 0: from epochs
  double epochs = 2;   // passes over the store's sequences (`razor train --epochs`'s default)
  int threads = 0;     // 0: default
  uint64_t seed = 1234;
  int64_t eval_every = 100;    // validation perplexity every N steps (0: only at the end)
  int64_t eval_windows = 32;   // validation windows of `seq` tokens
  int64_t ckpt_every = 200;    // checkpoint every N steps (and at the end)
  std::string log_json;        // one JSON object per step
  bool resume = false;
  int task_items = 20;         // held-out items per built-in task in the summary (0: skip)
  bool final_outputs = true;   // student/, student-dequant/, summary, tasks
  int64_t stop_after = -1;     // test hook: return after this step (as if killed), no final outputs
  FILE* log = stdout;          // summary and notes (nullptr: silent); progress goes to stderr
  bool progress = true;
  // Under mpirun: data parallel over the job's ranks (see below). false: this process runs
  // alone whatever the job's size (tests compare the two).
  bool data_parallel = true;
};

// One optimizer step's record (what --log-json writes). Every value is measured in the
// forward/backward of that step, before its update; micro-batch values are averaged.
struct QadStepLog {
  int64_t step = 0;  // 1-based
  double loss = 0, ce = 0, feature = 0, logit = 0, fkl = 0, rkl = 0, lambda = 0;
  std::vector<int> layers;  // AFD layers of the last micro-batch
  double lr = 0, grad_norm = 0, tokens_per_s = 0;
  double comm_s = 0;  // seconds in the gradient allreduce (0 with one rank)
  double seconds = 0;  // the step's wall time
  std::string json() const;
};

struct QadSummary {
  int64_t steps = 0;
  double teacher_ppl = 0, student_ppl = 0;           // NaN when there is no validation data
  std::vector<TaskResult> teacher_tasks, student_tasks;  // empty: not measured
  double avg_bits = 0, avg_bits_no_scales = 0;
  int64_t student_bytes = 0, teacher_bytes = 0;      // estimated packed / bf16 sizes
  double tokens_per_s = 0;     // global tokens (all ranks) per second of step time
  int ranks = 1;
  double comm_fraction = 0;    // share of step time spent in the gradient allreduce
  std::vector<QadStepLog> log;                       // the steps this call ran
};

// Resolved defaults: the weights (a_task, a_feature, a_logit) for a rho.
void qad_default_weights(double rho, double* a_task, double* a_feature, double* a_logit);

// Runs (or resumes) a QAD run. Errors name the option or file at fault.
QadSummary run_qad(const QadConfig& cfg);

// Hook point for the packed model: writes <out>/student.razor from the trained student (its
// latent weights are in <out>/student/, HF layout). The integrator wires `razor pack` here;
// returns false (and run_qad says so) while it is not wired.
// `plan` (a `razor plan` file, may be "") gives per-tensor layouts, as in training.
bool pack_student_hook(const std::string& student_dir, const std::string& out_path, double rho, int group,
                       float beta, bool a8, bool kv8, const std::string& plan = "");

}  // namespace razor
