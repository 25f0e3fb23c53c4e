// `razor pretrain`: see src/train/pretrain.h.
#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "train/pretrain.h"

namespace razor {

int cmd_pretrain(int argc, char** argv) {
  ArgParser a(argv[0],
              "Train a full-precision Llama/Qwen3-style model from scratch (or continue one) on a corpus. "
              "The default teacher in data/teacher was made with this command (see data/README.md).");
  a.option("--tokenizer", "data/teacher/tokenizer.json", "tokenizer.json (its size sets the vocabulary)");
  a.option("--data", "default",
           "default (corpus + built-in tasks, docs/tasks.md) | DIR (train.txt + valid.txt, razor tasks --write) | "
           "FILE.txt | FILE.ids | FILE.jsonl (chat: loss on assistant tokens) | FILE.tok");
  a.flag("--records", "one .txt document / .ids line per sequence (padded or truncated to --seq, never windowed)");
  a.option("--init", "", "continue from this HF checkpoint directory instead of a random init");
  a.option("--arch", "qwen3", "qwen3 | llama");
  a.option("--hidden", "256", "hidden size C");
  a.option("--layers", "6", "decoder layers L");
  a.option("--heads", "4", "attention heads H");
  a.option("--kv-heads", "2", "key/value heads K");
  a.option("--head-dim", "64", "head dim D");
  a.option("--ffn", "768", "FFN size F");
  a.option("--ctx", "512", "max_position_embeddings");
  a.option("--rope-theta", "10000", "RoPE base");
  a.flag("--untied", "separate lm_head (default: tied to the embedding)");
  a.option("--batch", "8", "sequences per micro-batch");
  a.option("--seq", "256", "tokens per sequence");
  a.option("--accum", "1", "gradient accumulation micro-batches");
  a.flag("--recompute", "keep only each layer's input and run the layer again in the backward: activation memory L x B x T x C plus one layer's, for one more forward");
  a.option("--steps", "1000", "optimizer steps");
  a.option("--lr", "3e-3", "peak learning rate");
  a.option("--wd", "0.1", "AdamW weight decay (not on norms)");
  a.option("--schedule", "cosine", "constant | cosine");
  a.option("--warmup", "-1", "warmup fraction of steps (<0: 5% constant, 1% cosine)");
  a.option("--eval-every", "200", "validation perplexity every N steps");
  a.option("--eval-windows", "64", "validation windows per periodic evaluation");
  a.option("--ckpt-every", "200", "checkpoint every N steps");
  a.option("--tasks", "50", "held-out items per built-in task at the end (0: skip)");
  a.option("--seed", "1", "seed (init and data order)");
  a.option("--threads", "0", "threads (0: all cores)");
  a.option("--out", "runs/pretrain", "run directory");
  a.flag("--bf16", "save the final model.safetensors in bf16");
  a.flag("--resume", "continue from OUT/checkpoint");
  if (!a.parse(argc, argv)) return 0;
  PretrainOptions o;
  ModelConfig& c = o.model;
  c.model_type = a.str("arch");
  if (c.model_type != "qwen3" && c.model_type != "llama") fail("--arch: expected qwen3 or llama, got '%s'", c.model_type.c_str());
  c.hidden_size = a.i64_in("hidden", 8, 1 << 16);
  c.num_hidden_layers = a.i64_in("layers", 1, 1024);
  c.num_attention_heads = a.i64_in("heads", 1, 1024);
  c.num_key_value_heads = a.i64_in("kv-heads", 1, 1024);
  c.head_dim = a.i64_in("head-dim", 2, 4096);
  c.intermediate_size = a.i64_in("ffn", 1, 1 << 20);
  c.max_position_embeddings = a.i64_in("ctx", 2, 1 << 20);
  c.rope_theta = a.f64_in("rope-theta", 1.0, 1e9);
  c.tie_word_embeddings = !a.on("untied");
  c.rms_norm_eps = 1e-6;
  o.tokenizer = a.str("tokenizer");
  o.data = a.str("data");
  o.records = a.on("records");
  o.init_from = a.str("init");
  o.batch = int(a.i64_in("batch", 1, 4096));
  o.seq = int(a.i64_in("seq", 1, 1 << 20));
  o.accum = int(a.i64_in("accum", 1, 4096));
  o.recompute = a.on("recompute");
  o.steps = a.i64_in("steps", 1, int64_t(1) << 40);
  o.lr = float(a.f64_in("lr", 0.0, 10.0));
  o.weight_decay = float(a.f64_in("wd", 0.0, 10.0));
  o.schedule = a.str("schedule");
  o.warmup = float(a.f64_in("warmup", -1.0, 1.0));
  o.eval_every = int(a.i64_in("eval-every", 0, 1 << 30));
  o.eval_windows = int(a.i64_in("eval-windows", 1, 1 << 30));
  o.ckpt_every = int(a.i64_in("ckpt-every", 0, 1 << 30));
  o.task_items = int(a.i64_in("tasks", 0, 100000));
  o.seed = uint64_t(a.i64("seed"));
  o.out = a.str("out");
  o.bf16 = a.on("bf16");
  o.resume = a.on("resume");
  apply_threads_option(a, 0, 4096);
  run_pretrain(o);
  return 0;
}

}  // namespace razor
