// `razor eval`: validation perplexity and arithmetic exact-match accuracy of an HF checkpoint,
// full precision or as a quantized model would compute it (fake-quant: --bits/--rho, --group,
// --a8, --kv8, --ptq rtn|rtn-gamma|ptqtp), or of a packed .razor model through the inference
// engine (integer kernels, int8 KV cache).
#include <cmath>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/file_util.h"
#include "io/json.h"
#include "nn/ptq_model.h"
#include "quant/plan.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/evaluate_packed.h"

namespace razor {

namespace {

void print_eval(const ArgParser& a, const std::string& model, const std::string& desc, double bits, double bits_ns,
                const PplResult& pr, int k, double acc) {
  if (a.on("json")) {
    Json j = Json::object();
    j.set("model", model);
    j.set("quant", desc);
    j.set("bits", Json(bits));
    j.set("bits_no_scales", Json(bits_ns));
    j.set("val_ppl", Json(pr.ppl));
    j.set("val_tokens", Json(pr.tokens));
    if (k > 0) j.set("arith_acc", Json(acc));
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("model      %s\nquant      %s\n", model.c_str(), desc.c_str());
    if (bits < 32) std::printf("bits/wt    %.4f (%.4f without scales)\n", bits, bits_ns);
    std::printf("val ppl    %.3f (%lld tokens)\n", pr.ppl, (long long)pr.tokens);
    if (k > 0) std::printf("arith acc  %.1f%% (%d problems)\n", 100 * acc, k);
  }
}

// A packed model: the file fixes the quantization, the engine computes (NUMERICS.md §10).
int eval_packed(const ArgParser& a, const std::string& path) {
  for (const char* o : {"bits", "rho", "plan", "ptq", "a8", "kv8", "group", "beta"})
    RZ_CHECK(!a.given(o), "--%s: not applicable to a packed model (%s fixes its quantization)", o, path.c_str());
  PackedModel pm = PackedModel::load(path);
  RZ_CHECK(!pm.tokenizer_json.empty(), "%s: the packed model has no tokenizer.json (pack it from a checkpoint that has one)",
           path.c_str());
  const Tokenizer tok = Tokenizer::from_json(pm.tokenizer_json, path + ": tokenizer.json");
  PreparedData data = prepare_data_packed(a.str("data"), pm);
  if (data.valid_shard.empty()) fail("--data %s: has no validation split", a.str("data").c_str());
  TokenShard valid(data.valid_shard);
  const int T = int(a.i64_in("seq", 1, pm.cfg.max_position_embeddings - 1));
  const PplResult pr = packed_perplexity(pm, valid, T, a.i64_in("windows", 0, int64_t(1) << 40));
  const int k = int(a.i64_in("arith", 0, 100000));
  const double acc = k > 0 ? eval_arith(packed_greedy_completer(pm, tok), 99, k).accuracy() : NAN;
  double n = 0, bytes = 0, code_bytes = 0;
  for (const auto& e : pm.matrices()) {
    n += double(e.second->desc.d_out) * double(e.second->desc.d_in);
    bytes += double(e.second->stream_bytes());
    code_bytes += double(e.second->codes.size());
  }
  const std::string desc = strfmt("packed %s, engine (int8 kernels%s%s), bits = stored bits of the packed blocks",
                                  pm.opt.plan.str().c_str(), pm.opt.a8 ? ", A8" : ", A8 (trained without)",
                                  pm.opt.kv8 ? ", KV8" : ", KV8 (trained without)");
  print_eval(a, path, desc, 8 * bytes / n, 8 * code_bytes / n, pr, k, acc);
  return 0;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  ArgParser a(argv[0],
              "Perplexity on the validation split and greedy arithmetic exact-match accuracy of a model. With "
              "--bits/--rho the model is evaluated as its quantized version would compute it (post-training "
              "quantization by --ptq, fake-quant forward).");
  a.option("-m,--model", "data/teacher",
           "HF checkpoint directory (config.json, model.safetensors, tokenizer.json) or a packed .razor file");
  a.option("--data", "default", "default | FILE.txt | FILE.ids | FILE.tok");
  a.option("--seq", "256", "tokens per evaluation window");
  a.option("--windows", "0", "validation windows (0: all)");
  a.option("--arith", "200", "held-out arithmetic problems (0: skip)");
  a.option("--bits", "", "quantize: 4 | 2.79 | 1.88 | 1.58 (super-group plan) or 3 | 2 (uniform baselines)");
  a.option("--rho", "", "quantize with this rho instead of --bits (e.g. 1/8)");
  a.option("--group", "64", "quantization group size G");
  a.option("--beta", "2.0", "ternary scale factor");
  a.option("--ptq", "rtn", "rtn | rtn-gamma | ptqtp | asym | log2 (asym / log2 take --bits 2..8)");
  a.option("--plan", "", "bit-budget plan from `razor plan` (per-tensor layouts; other tensors follow --bits)");
  a.flag("--a8", "8-bit activations into every linear");
  a.flag("--kv8", "8-bit K and V");
  a.option("--threads", "0", "threads (0: all cores)");
  a.flag("--json", "print one JSON object");
  if (!a.parse(argc, argv)) return 0;
  int th = int(a.i64_in("threads", 0, 4096));
  apply_threads(th);
  const std::string dir = a.str("model");
  if (path_exists(dir) && !is_directory(dir)) return eval_packed(a, dir);  // a file: a packed model
  std::string tok_path = dir + "/tokenizer.json";
  std::unique_ptr<Model> m = Model::load(dir, /*trainable=*/false);
  std::string desc = "full precision";
  double bits = 32, bits_ns = 32;
  const bool has_plan = !a.str("plan").empty();
  if (!a.str("bits").empty() || !a.str("rho").empty() || has_plan || a.on("a8") || a.on("kv8")) {
    PtqMethod method = parse_ptq_method(a.str("ptq"));
    const bool weights = !a.str("bits").empty() || !a.str("rho").empty() || has_plan;
    std::string bits_arg = a.str("bits").empty() ? "1.88" : a.str("bits");
    QuantSpec spec = make_quant_spec(bits_arg, a.str("rho"), int(a.i64_in("group", 1, 1 << 16)),
                                     a.f64_in("beta", 0.01, 100.0), method);
    if (has_plan) apply_plan_file(spec, *m, a.str("plan"));
    spec.quantize_weights = weights;  // false: A8 / KV8 only
    spec.a8 = a.on("a8");
    spec.kv8 = a.on("kv8");
    PtqReport rep = apply_ptq(*m, spec, method);
    // Weights now hold their dequantized values; the hooks add only A8 / KV8.
    QuantSpec act = spec;
    act.quantize_weights = false;
    install_quant_hooks(*m, act);
    if (weights) {
      BitReport br = ptq_bit_report(*m, spec, method);
      bits = br.avg_bits;
      bits_ns = br.avg_bits_no_scales;
    }
    desc = (has_plan ? "plan " + a.str("plan") + " + " : std::string()) + spec.str() + " " + ptq_method_name(method) + strfmt(" (weight rel. error %.4f)", rep.rel_error);
  }
  PreparedData data = prepare_data(a.str("data"), tok_path);
  if (data.valid_shard.empty()) fail("--data %s: has no validation split", a.str("data").c_str());
  TokenShard valid(data.valid_shard);
  int T = int(a.i64_in("seq", 1, m->cfg.max_position_embeddings - 1));
  PplResult pr = eval_perplexity(*m, valid, T, a.i64_in("windows", 0, int64_t(1) << 40));
  int k = int(a.i64_in("arith", 0, 100000));
  double acc = NAN;
  if (k > 0) {
    Tokenizer tok = Tokenizer::load(tok_path);
    acc = eval_arith_accuracy(*m, tok, k);
  }
  print_eval(a, dir, desc, bits, bits_ns, pr, k, acc);
  return 0;
}

}  // namespace razor
