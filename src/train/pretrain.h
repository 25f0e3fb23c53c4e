// `razor pretrain`: full-precision training of a model from scratch (or continuing an HF
// checkpoint) with AdamW, warmup + cosine, gradient clipping and accumulation, periodic
// validation perplexity, atomic checkpoints and exact --resume. This is how the default
// teacher in data/teacher is made. Deliberately not here: distillation (train/qad).
#pragma once
#include <cstdint>
#include <string>

#include "io/hf_config.h"

namespace razor {

struct PretrainOptions {
  ModelConfig model;            // architecture (vocab_size taken from the tokenizer when 0)
  std::string init_from;        // HF checkpoint dir to continue from ("" = random init)
  std::string tokenizer;        // tokenizer.json
  std::string data = "default";  // train/data.h (FILE.jsonl: CE on assistant tokens only)
  bool records = false;          // --records: one .txt document / .ids line per sequence
  std::string out = "runs/pretrain";
  int batch = 8, seq = 256, accum = 1;
  bool recompute = false;  // Model::recompute: layer activations made again in the backward
  int64_t steps = 1000;
  float lr = 3e-3f, weight_decay = 0.1f, min_lr_frac = 0.0f;
  std::string schedule = "cosine";
  float warmup = -1;            // fraction of steps; < 0 = the schedule's default
  int eval_every = 200, eval_windows = 64, ckpt_every = 200;
  int task_items = 50;          // held-out items per built-in task at the end (0 = skip)
  uint64_t seed = 1;
  bool resume = false;
  bool bf16 = false;            // save model.safetensors as bf16
};

// Runs the loop; writes OUT/checkpoint/, OUT/metrics.csv, OUT/chart.svg, OUT/run.json and
// the final model in HF layout in OUT/model/ (with the tokenizer copied next to it).
void run_pretrain(const PretrainOptions& opt);

}  // namespace razor
