// razor train: quantization-aware distillation of a low-bit student from the teacher
// (src/train/qad.h). With no arguments: the default teacher (data/teacher), the default
// corpus, a 1.88-bit W-A8-KV8 student, run directory runs/<name>.
#include <cstdio>

#include "cli/args.h"
#include "core/threads.h"
#include "cli/commands.h"
#include "core/error.h"
#include "distill/losses.h"
#include "quant/plan.h"
#include "train/qad.h"

namespace razor {

int cmd_train(int argc, char** argv) {
  ArgParser ap(argv[0],
               "Quantization-aware distillation: the student (teacher architecture, initialised from the teacher "
               "with GPTQ's MLP matrices, fake-quantized with STE) minimises a_task*CE + a_feature*AFD + a_logit*EAKLD against the teacher "
               "store (written first when missing). Writes metrics.csv, chart.svg, run.json, checkpoint/, "
               "student/ (latent weights) and student-dequant/ into --out and prints a summary.");
  ap.option("--teacher", "data/teacher", "teacher checkpoint directory (Hugging Face layout)");
  ap.option("--init", "auto",
            "the student's initial weights: gptq-mlp (the teacher's, with GPTQ's weights at the student's layout "
            "for the MLP matrices, calibrated on --data), gptq (GPTQ's for every matrix), teacher (the teacher's "
            "weights as they are), a checkpoint of the teacher's architecture (e.g. `razor quantize --ptq gptq "
            "--latent -o DIR`), or auto: gptq-mlp at the default 1.88-bit layout without --plan (it keeps the word "
            "problems the teacher's start loses), teacher otherwise (at 1.58 bits GPTQ's MLPs lose held-out facts; "
            "docs/quality.md)");
  ap.option("--init-calib", "128", "--init gptq / gptq-mlp: calibration sequences of --seq tokens from --data's training split");
  ap.option("--data", "default",
            "training data: default (corpus + built-in tasks) | DIR (train.txt + valid.txt) | FILE.txt | FILE.ids | "
            "FILE.jsonl (chat records, loss on assistant tokens) | FILE.tok");
  ap.flag("--records", "one .txt document / .ids line per sequence (padded or truncated to --seq, never windowed)");
  ap.option("--valid", "", "validation token shard .tok (default: the split of --data)");
  ap.option("--cache", "data/cache", "where token shards built from text are cached");
  ap.option("--store", "", "teacher store directory (default: OUT/store; dumped when missing)");
  ap.option("--out", "", "run directory (default: runs/qad-rho<rho>-g<G>[-a8][-kv8])");
  ap.option("--bits", "", "bits per weight: 4 | 2.79 | 1.88 | 1.58 (default 1.88 = rho 1/8)");
  ap.option("--rho", "", "share of 4-bit rows: 1/8, 0.5, 0, 1 ... (instead of --bits)");
  ap.option("--plan", "", "bit-budget plan from `razor plan` (per-tensor layouts; other tensors follow --bits/--rho)");
  ap.option("--group", "64", "quantization group size G");
  ap.option("--beta", "2", "ternary scale factor (s = beta * mean|w|)");
  ap.flag("--a8", "8-bit activations into every linear (default on)");
  ap.flag("--no-a8", "full-precision activations");
  ap.flag("--float-forward",
          "the quantized linears' forward as an fp32 product of the fake-quant operands (default with A8: on the "
          "packed integer kernels the engine runs, equal up to summation order)");
  ap.flag("--kv8", "8-bit K/V (default on)");
  ap.flag("--no-kv8", "full-precision K/V");
  ap.option("--loss-logit", "eakld", "logit loss: eakld | cakld | fkl | rkl | none");
  ap.option("--eakld-clip", "token", "EAKLD lambda: token (paper) | batch (reference code)");
  ap.option("--eakld-k", "16", "EAKLD entropy clip k (lambda = min(H, ln k) / ln k)");
  ap.option("--feature", "adaptive", "feature loss: adaptive | fixed | fixed:L1,L2,.. | none");
  ap.option("--afd-k", "3", "AFD: layers with the lowest teacher cosine");
  ap.option("--a-task", "", "CE weight (default 0.1 below 4 bits, 0.05 at 4 bits)");
  ap.option("--a-feature", "", "feature weight (default 0.1 below 4 bits, 0.5 at 4 bits)");
  ap.option("--a-logit", "", "logit weight (default 2.0)");
  ap.option("--mask-align", "razor", "distillation positions: razor | reference (one position off)");
  ap.option("--lr", "5e-4", "peak learning rate (see docs/qad.md)");
  ap.option("--schedule", "cosine", "cosine (1% warmup, to 0) | constant (5% warmup); docs/quality.md: constant loses the arithmetic");
  ap.option("--warmup", "", "warmup fraction of the steps (default: the schedule's)");
  ap.option("--weight-decay", "0.01", "AdamW weight decay (never on norms)");
  ap.option("--batch", "8", "sequences per micro-batch");
  ap.option("--seq", "256", "sequence length T");
  ap.option("--accum", "1", "micro-batches per optimizer step");
  ap.flag("--recompute", "keep only each layer's input and run the layer again in the backward: activation memory L x B x T x C plus one layer's, for one more forward");
  ap.option("--steps", "0", "optimizer steps (0: from --epochs)");
  ap.option("--epochs", strfmt("%g", QadConfig().epochs), "passes over the teacher store (docs/quality.md: two keep more of the teacher than one)");
  ap.option("--sequences", "2048", "sequences in a store written by this run (0 = the whole data)");
  ap.option("--topk", "64", "teacher log-probs kept per position, for a store written by this run");
  ap.option("--hidden", "bf16", "hidden-state dtype of a store written by this run: bf16 | int8");
  ap.option("--taps", "auto",
            "feature taps of a store written by this run: all | selected (only the --afd-k taps AFD selects per "
            "sequence; --feature adaptive only) | auto (selected above 8 KiB/token with every tap, when the feature "
            "loss allows)");
  ap.option("--threads", "0", "threads (0 = default)");
  ap.option("--seed", "1234", "data-order seed");
  ap.option("--eval-every", "100", "validation perplexity every N steps (0 = at the end only)");
  ap.option("--eval-windows", "32", "validation windows of --seq tokens");
  ap.option("--ckpt-every", "200", "checkpoint every N steps (and at the end)");
  ap.option("--tasks", "20", "held-out items per built-in task in the summary, teacher and student (0 = skip)");
  ap.option("--log-json", "", "write one JSON object per step to this file");
  ap.flag("--resume", "continue the run in --out from its checkpoint");
  if (!ap.parse(argc, argv)) return 0;

  QadConfig c;
  c.teacher_dir = ap.str("teacher");
  const std::string init = ap.str("init");
  RZ_CHECK(!init.empty(), "--init: empty (give auto, gptq-mlp, gptq, teacher or a checkpoint directory)");
  c.init_calib_sequences = ap.i64_in("init-calib", 1, 1 << 20);
  c.data = ap.str("data");
  c.valid = ap.str("valid");
  c.cache_dir = ap.str("cache");
  c.records = ap.on("records");
  c.store = ap.str("store");
  c.out = ap.str("out");
  if (ap.given("bits") && ap.given("rho")) fail("--bits/--rho: give one of them");
  c.rho = ap.given("rho") ? parse_rho(ap.str("rho")) : ap.given("bits") ? parse_precision(ap.str("bits")) : 0.125;
  c.group = int(ap.i64_in("group", 1, 1 << 16));
  c.plan = ap.str("plan");
  // --init auto: the start measured best at this width (docs/quality.md, "What moves word problems");
  // "" is the teacher's weights.
  c.init_dir = init == "auto" ? (c.rho == 0.125 && c.plan.empty() ? "gptq-mlp" : "") : init == "teacher" ? "" : init;
  RZ_CHECK(!ap.given("init-calib") || init_from_gptq(c.init_dir),
           "--init-calib: only with a GPTQ start (--init gptq, gptq-mlp, or auto at 1.88 bits; got --init '%s'%s)",
           init.c_str(), init == "auto" ? ", the teacher's start at this width" : "");
  c.beta = float(ap.f64_in("beta", 1e-6, 1e6));
  if (ap.on("a8") && ap.on("no-a8")) fail("--a8/--no-a8: give one of them");
  if (ap.on("kv8") && ap.on("no-kv8")) fail("--kv8/--no-kv8: give one of them");
  c.a8 = !ap.on("no-a8");
  c.kv8 = !ap.on("no-kv8");
  c.int_forward = !ap.on("float-forward");
  if (ap.str("loss-logit") == "none")
    c.logit_none = true;
  else
    c.distill.logit_loss = parse_logit_loss(ap.str("loss-logit"));
  c.distill.eakld_clip = parse_eakld_clip(ap.str("eakld-clip"));
  c.distill.entropy_k = int(ap.i64_in("eakld-k", 2, 1 << 30));
  std::string feat = ap.str("feature");
  if (feat == "none")
    c.feature_none = true;
  else if (feat == "adaptive" || feat == "fixed")
    parse_afd(feat, c.distill);
  else if (feat.rfind("fixed:", 0) == 0)
    parse_afd(feat.substr(6), c.distill);
  else
    fail("--feature: '%s' is not adaptive, fixed, fixed:L1,L2,.. or none", feat.c_str());
  c.distill.afd_k = int(ap.i64_in("afd-k", 1, 1 << 16));
  c.distill.mask_align = parse_mask_align(ap.str("mask-align"));
  if (ap.given("a-task")) c.a_task = ap.f64_in("a-task", 0, 1e6);
  if (ap.given("a-feature")) c.a_feature = ap.f64_in("a-feature", 0, 1e6);
  if (ap.given("a-logit")) c.a_logit = ap.f64_in("a-logit", 0, 1e6);
  c.lr = float(ap.f64_in("lr", 1e-12, 10));
  c.schedule = parse_lr_schedule(ap.str("schedule"));
  if (ap.given("warmup")) c.warmup_frac = float(ap.f64_in("warmup", 0, 1));
  c.weight_decay = float(ap.f64_in("weight-decay", 0, 10));
  c.batch = int(ap.i64_in("batch", 1, 1 << 16));
  c.seq = int(ap.i64_in("seq", 2, 1 << 20));
  c.accum = int(ap.i64_in("accum", 1, 1 << 16));
  c.recompute = ap.on("recompute");
  c.steps = ap.i64_in("steps", 0, int64_t(1) << 40);
  c.epochs = ap.f64_in("epochs", 1e-9, 1e9);
  c.dump.max_sequences = ap.i64_in("sequences", 0, int64_t(1) << 40);
  c.dump.top_k = ap.i64_in("topk", 1, 1 << 20);
  try {
    c.dump.hidden = parse_hidden_dtype(ap.str("hidden"));
  } catch (const Error& e) {
    fail("--hidden: %s", e.what());
  }
  try {
    c.dump.taps = parse_tap_storage(ap.str("taps"));
  } catch (const Error& e) {
    fail("--taps: %s", e.what());
  }
  if (c.dump.taps == TapStorage::Selected && !c.feature_none &&
      (c.distill.afd_mode != AfdMode::Adaptive || c.distill.mask_align != MaskAlign::Razor))
    fail("--taps selected: keeps only the taps AFD selects per sequence, which serves --feature adaptive under "
         "--mask-align razor only");
  c.threads = int(apply_threads_option(ap, 0, 4096));
  if (c.threads > 0) c.threads = num_threads();  // at most the cores available
  c.seed = uint64_t(ap.i64_in("seed", 0, INT64_MAX));
  c.eval_every = ap.i64_in("eval-every", 0, int64_t(1) << 40);
  c.eval_windows = ap.i64_in("eval-windows", 1, int64_t(1) << 40);
  c.ckpt_every = ap.i64_in("ckpt-every", 0, int64_t(1) << 40);
  c.task_items = int(ap.i64_in("tasks", 0, 1 << 20));
  c.log_json = ap.str("log-json");
  c.resume = ap.on("resume");
  run_qad(c);
  return 0;
}

}  // namespace razor
