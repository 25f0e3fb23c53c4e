// `razor eval`: validation perplexity and task accuracy (the built-in suite, --tasks N items
// per task; task files in JSONL, --task FILE.jsonl; train/task_eval.h) of an HF checkpoint,
// full precision or as a quantized model would compute it (fake-quant: --bits/--rho, --group,
// --a8, --kv8, --ptq rtn|rtn-gamma|ptqtp), or of a packed .razor model through the inference
// engine (integer kernels, int8 KV cache).
#include <chrono>
#include <cmath>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/ptq_calib.h"
#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "io/file_util.h"
#include "io/json.h"
#include "nn/ptq_model.h"
#include "quant/plan.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/evaluate_packed.h"
#include "train/task_eval.h"

namespace razor {

namespace {

// What to measure: perplexity (unless only task files were asked for), the built-in suite
// (--tasks N > 0), and every --task file.
struct EvalPlan {
  bool ppl = true;
  int builtin = 0;
  std::vector<std::string> files;
};

EvalPlan eval_plan(const ArgParser& a) {
  EvalPlan p;
  p.builtin = int(a.i64_in("tasks", 0, 1000000));
  const std::string t = a.str("task");
  for (size_t s = 0; s <= t.size() && !t.empty();) {
    size_t e = t.find(',', s);
    if (e == std::string::npos) e = t.size();
    if (e > s) p.files.push_back(t.substr(s, e - s));
    s = e + 1;
  }
  if (a.given("task")) {
    RZ_CHECK(!p.files.empty(), "--task: give one or more .jsonl files (comma-separated)");
    p.ppl = a.given("data") || a.given("windows");
    if (!a.given("tasks")) p.builtin = 0;
  }
  RZ_CHECK(!a.given("log-samples") || p.builtin > 0 || !p.files.empty(),
           "--log-samples: no items to log (--tasks N > 0 or --task FILE.jsonl)");
  if (a.given("log-samples")) {
    const std::string f = a.str("log-samples"), parent = parent_dir(f);
    RZ_CHECK(!f.empty() && f.back() != '/' && is_directory(parent.empty() ? "." : parent),
             "--log-samples '%s': not a file name in an existing directory", f.c_str());
  }
  return p;
}

// Reads every task file first, so a malformed one fails before any model work.
std::vector<std::pair<std::string, std::vector<TaskItem>>> load_task_files(const EvalPlan& p) {
  std::vector<std::pair<std::string, std::vector<TaskItem>>> out;
  for (const std::string& f : p.files) out.push_back({f, read_task_jsonl(f)});
  return out;
}

// Scores the suite and the files; with --log-samples FILE, one JSON line per item goes to FILE
// (written to a temporary name and renamed).
std::vector<TaskResult> run_tasks(const ArgParser& a, TaskModel& tm, const EvalPlan& p,
                                  const std::vector<std::pair<std::string, std::vector<TaskItem>>>& files) {
  const std::string log_path = a.str("log-samples");
  std::vector<Json> samples;
  std::vector<Json>* sp = log_path.empty() ? nullptr : &samples;
  std::vector<TaskResult> rs;
  if (p.builtin > 0) rs = evaluate_builtin_suite(tm, TaskSuiteConfig(), p.builtin, suite_heldout_text(), sp);
  for (const auto& f : files) rs.push_back(evaluate_task_items(tm, f.second, f.first, sp));
  if (sp) {
    std::string text;
    for (const Json& j : samples) text += j.dump() + "\n";
    write_file_atomic(log_path, text);
    log_note("razor eval: %zu samples written to %s\n", samples.size(), log_path.c_str());
  }
  return rs;
}

void print_eval(const ArgParser& a, const std::string& model, const std::string& desc, double bits, double bits_ns,
                const PplResult* pr, const std::vector<TaskResult>& tasks) {
  if (a.on("json")) {
    Json j = Json::object();
    j.set("model", model);
    j.set("quant", desc);
    j.set("bits", Json(bits));
    j.set("bits_no_scales", Json(bits_ns));
    if (pr) {
      j.set("val_ppl", Json(pr->ppl));
      j.set("val_tokens", Json(pr->tokens));
    }
    if (!tasks.empty()) j.set("tasks", task_results_json(tasks));
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("model      %s\nquant      %s\n", model.c_str(), desc.c_str());
    if (bits < 32) std::printf("bits/wt    %.4f (%.4f without scales)\n", bits, bits_ns);
    if (pr) std::printf("val ppl    %.3f (%lld tokens)\n", pr->ppl, (long long)pr->tokens);
    for (const TaskResult& r : tasks) std::printf("task       %-15s %s\n", r.name.c_str(), format_task_result(r).c_str());
  }
}

// A packed model: the file fixes the quantization, the engine computes (NUMERICS.md §10).
int eval_packed(const ArgParser& a, const std::string& path) {
  for (const char* o : {"bits", "rho", "plan", "ptq", "a8", "kv8", "group", "beta", "calib", "calib-sequences",
                        "calib-seq", "act-order", "damp", "gptq-block", "awq-grid", "awq-search-sequences"})
    RZ_CHECK(!a.given(o), "--%s: not applicable to a packed model (%s fixes its quantization)", o, path.c_str());
  const EvalPlan plan = eval_plan(a);
  const auto files = load_task_files(plan);
  PackedModel pm = PackedModel::load(path);
  pm.prepare_for_engine();
  RZ_CHECK(!pm.tokenizer_json.empty(), "%s: the packed model has no tokenizer.json (pack it from a checkpoint that has one)",
           path.c_str());
  const Tokenizer tok = Tokenizer::from_json(pm.tokenizer_json, path + ": tokenizer.json");
  PplResult pr;
  if (plan.ppl) {
    PreparedData data = prepare_data_packed(a.str("data"), pm);
    if (data.valid_shard.empty()) fail("--data %s: has no validation split", a.str("data").c_str());
    TokenShard valid(data.valid_shard);
    const int T = int(a.i64_in("seq", 1, pm.cfg.max_position_embeddings - 1));
    pr = packed_perplexity(pm, valid, T, a.i64_in("windows", 0, int64_t(1) << 40));
  }
  std::unique_ptr<TaskModel> tm = make_task_model(pm, tok);
  const std::vector<TaskResult> tasks = run_tasks(a, *tm, plan, files);
  double n = 0, bytes = 0, code_bytes = 0;
  for (const auto& e : pm.matrices()) {
    n += double(e.second->desc.d_out) * double(e.second->desc.d_in);
    bytes += double(e.second->stream_bytes());
    code_bytes += double(e.second->codes.size());
  }
  const std::string desc = strfmt("packed %s, engine (int8 kernels%s%s), bits = stored bits of the packed blocks",
                                  pm.opt.plan.str().c_str(), pm.opt.a8 ? ", A8" : ", A8 (trained without)",
                                  pm.opt.kv8 ? ", KV8" : ", KV8 (trained without)");
  print_eval(a, path, desc, 8 * bytes / n, 8 * code_bytes / n, plan.ppl ? &pr : nullptr, tasks);
  return 0;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  ArgParser a(argv[0],
              "Perplexity on the validation split and task accuracy of a model: the built-in suite's held-out items "
              "(--tasks N per task: arith, word, knowledge, knowledge_facts exact match; knowledge_mc, nextsent_mc acc / acc_norm) and "
              "task files in lm-evaluation-harness-like JSONL (--task FILE.jsonl: {\"context\", \"choices\", "
              "\"gold\"} -> acc, acc_norm; {\"prompt\", \"answer\", \"stop\"} -> exact match, greedy; docs/tasks.md). "
              "Every accuracy with its 95% confidence interval. With --task alone, only the files are scored (add "
              "--data / --windows for perplexity, --tasks for the suite). With --bits/--rho the model is evaluated as "
              "its quantized version would compute it (post-training quantization by --ptq, fake-quant forward); a "
              ".razor file runs through the inference engine.");
  a.option("-m,--model", "data/teacher",
           "HF checkpoint directory (config.json, model.safetensors, tokenizer.json) or a packed .razor file");
  a.option("--data", "default", "default (corpus + built-in tasks, docs/tasks.md) | DIR (train.txt + valid.txt, razor tasks --write) | FILE.txt | FILE.ids | FILE.tok");
  a.option("--seq", "256", "tokens per evaluation window");
  a.option("--windows", "0", "validation windows (0: all)");
  a.option("--tasks", "50", "held-out items per built-in task (0: skip the suite)");
  a.option("--task", "", "task files to score, FILE.jsonl[,FILE2.jsonl...] (razor tasks --write DIR writes the suite's)");
  a.option("--bits", "", "quantize: 4 | 2.79 | 1.88 | 1.58 (super-group plan) or 3 | 2 (uniform baselines)");
  a.option("--rho", "", "quantize with this rho instead of --bits (e.g. 1/8)");
  a.option("--group", "64", "quantization group size G");
  a.option("--beta", "2.0", "ternary scale factor");
  a.option("--ptq", "rtn", "rtn | rtn-gamma | ptqtp | asym | log2 | gptq | awq (asym / log2 take --bits 2..8; "
           "gptq / awq calibrate on --calib)");
  a.option("--plan", "", "bit-budget plan from `razor plan` (per-tensor layouts; other tensors follow --bits)");
  a.flag("--a8", "8-bit activations into every linear");
  a.flag("--kv8", "8-bit K and V");
  add_calib_ptq_options(a);
  a.option("--threads", "0", "threads (0: all cores)");
  a.flag("--json", "print one JSON object");
  a.option("--log-samples", "", "write every scored item to this JSONL file: the item, the prediction (generative) or "
           "each choice's log-likelihood and the argmaxes (multiple choice), and whether it was correct");
  if (!a.parse(argc, argv)) return 0;
  apply_threads_option(a, 0, 4096);
  const std::string dir = a.str("model");
  if (path_exists(dir) && !is_directory(dir)) return eval_packed(a, dir);  // a file: a packed model
  const EvalPlan plan = eval_plan(a);
  const auto files = load_task_files(plan);
  std::string tok_path = dir + "/tokenizer.json";
  const PtqMethod method = parse_ptq_method(a.str("ptq"));
  const CalibPtqOptions copt = calib_ptq_options(a, method);  // bad options fail before any work
  std::unique_ptr<Model> m = Model::load(dir, /*trainable=*/false);
  std::string desc = "full precision";
  double bits = 32, bits_ns = 32;
  const bool has_plan = !a.str("plan").empty();
  if (!a.str("bits").empty() || !a.str("rho").empty() || has_plan || a.on("a8") || a.on("kv8")) {
    const bool weights = !a.str("bits").empty() || !a.str("rho").empty() || has_plan;
    std::string bits_arg = a.str("bits").empty() ? "1.88" : a.str("bits");
    QuantSpec spec = quant_spec_option(a, bits_arg, method, *m);
    spec.quantize_weights = weights;  // false: A8 / KV8 only
    spec.a8 = a.on("a8");
    spec.kv8 = a.on("kv8");
    CalibSet calib;
    if (weights && ptq_needs_calibration(method)) calib = load_calib_set(a, tok_path, *m);
    const auto t0 = std::chrono::steady_clock::now();
    PtqReport rep;
    if (weights || !ptq_needs_calibration(method)) rep = apply_ptq(*m, spec, method, &calib, &copt);
    if (weights)
      print_calib_report(rep.calib, method,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
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
  PplResult pr;
  if (plan.ppl) {
    PreparedData data = prepare_data(a.str("data"), tok_path);
    if (data.valid_shard.empty()) fail("--data %s: has no validation split", a.str("data").c_str());
    TokenShard valid(data.valid_shard);
    int T = int(a.i64_in("seq", 1, m->cfg.max_position_embeddings - 1));
    pr = eval_perplexity(*m, valid, T, a.i64_in("windows", 0, int64_t(1) << 40));
  }
  std::vector<TaskResult> tasks;
  if (plan.builtin > 0 || !files.empty()) {
    Tokenizer tok = Tokenizer::load(tok_path);
    std::unique_ptr<TaskModel> tm = make_task_model(*m, tok);
    tasks = run_tasks(a, *tm, plan, files);
  }
  print_eval(a, dir, desc, bits, bits_ns, plan.ppl ? &pr : nullptr, tasks);
  return 0;
}

}  // namespace razor
