#include "train/qad.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/checksum.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "core/util.h"
#include "infer/pack.h"
#include "io/json.h"
#include "io/tokenizer.h"
#include "nn/model.h"
#include "nn/ptq_model.h"
#include "nn/quant_hooks.h"
#include "quant/budget.h"
#include "quant/plan.h"
#include "train/task_eval.h"
#include "train/calib.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/loop.h"
#include "io/file_util.h"
#include "train/metrics.h"
#include "train/shards.h"

namespace razor {

void qad_default_weights(double rho, double* a_task, double* a_feature, double* a_logit) {
  bool four_bit = period_from_rho(rho) == 1;  // every row 4-bit
  *a_task = four_bit ? 0.05 : 0.1;
  *a_feature = four_bit ? 0.5 : 0.1;
  *a_logit = 2.0;
}

// v at 9 significant digits (the log's precision; io/json prints it back as those digits), null
// when not finite.
static Json num9(double v) {
  if (!std::isfinite(v)) return Json();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return Json(std::strtod(buf, nullptr));
}

std::string QadStepLog::json() const {
  Json j = Json::object();
  j.set("step", step);
  j.set("loss", num9(loss));
  j.set("ce", num9(ce));
  j.set("feature", num9(feature));
  j.set("logit", num9(logit));
  j.set("fkl", num9(fkl));
  j.set("rkl", num9(rkl));
  j.set("lambda", num9(lambda));
  Json ls = Json::array();
  for (int l : layers) ls.push_back(Json(l));
  j.set("layers", ls);
  j.set("lr", num9(lr));
  j.set("grad_norm", num9(grad_norm));
  j.set("tokens_per_s", num9(tokens_per_s));
  j.set("comm_s", num9(comm_s));
  return j.dump();
}

bool pack_student_hook(const std::string& student_dir, const std::string& out_path, double rho, int group, float beta,
                       bool a8, bool kv8, const std::string& plan) {
  std::unique_ptr<Model> m = Model::load(student_dir, /*trainable=*/false);
  PackOptions opt;
  opt.plan.rho = rho;
  opt.plan.group = group;
  opt.plan.beta = beta;
  opt.a8 = a8;
  opt.kv8 = kv8;
  if (!plan.empty()) opt.overrides = load_plan(plan);
  PackedModel pm = pack_model(*m, opt);
  std::string tok = student_dir + "/tokenizer.json";
  if (path_exists(tok)) pm.tokenizer_json = read_file(tok);
  std::string tc = student_dir + "/tokenizer_config.json";
  if (path_exists(tc)) {
    pm.tokenizer_config_json = read_file(tc);
    Json::parse(pm.tokenizer_config_json, tc);
  }
  pm.save(out_path);
  return true;
}

namespace {

// Store sequence read by global sample j (see the header): epoch permutations cached.
class SequenceOrder {
 public:
  SequenceOrder(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  int64_t at(int64_t j) {
    int64_t e = j / n_;
    if (e != epoch_) {
      perm_.resize(size_t(n_));
      for (int64_t i = 0; i < n_; ++i) perm_[size_t(i)] = i;
      Rng rng(seed_ ^ (0x9e3779b97f4a7c15ull * uint64_t(e + 1)));
      for (int64_t i = n_ - 1; i > 0; --i) std::swap(perm_[size_t(i)], perm_[size_t(rng.below(uint64_t(i + 1)))]);
      epoch_ = e;
    }
    return perm_[size_t(j % n_)];
  }

 private:
  int64_t n_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;
};

Json config_json(const QadConfig& c, const StoreInfo& store, double a_task, double a_feature, double a_logit,
                 int64_t total_steps) {
  Json j = Json::object();
  j.set("format", "razor-qad-run");
  j.set("teacher", c.teacher_dir);
  j.set("teacher_hash", hex64(store.teacher_hash));
  if (!c.init_dir.empty()) j.set("init", c.init_dir);
  if (init_from_gptq(c.init_dir)) j.set("init_calib_sequences", double(c.init_calib_sequences));
  j.set("data", c.data);
  j.set("valid", c.valid);
  j.set("store", c.store);
  j.set("store_sequences", store.num_sequences);
  j.set("rho", c.rho);
  if (!c.plan.empty()) j.set("plan", c.plan);
  j.set("bits", PrecisionPlan{c.rho, c.group, c.beta}.str());
  j.set("group", int64_t(c.group));
  j.set("beta", double(c.beta));
  j.set("a8", c.a8);
  j.set("kv8", c.kv8);
  j.set("int_forward", c.a8 && c.int_forward);
  const char* ll[] = {"eakld", "cakld", "fkl", "rkl"};
  j.set("loss_logit", c.logit_none ? "none" : ll[int(c.distill.logit_loss)]);
  j.set("eakld_clip", c.distill.eakld_clip == EakldClip::Token ? "token" : "batch");
  j.set("eakld_k", int64_t(c.distill.entropy_k));
  std::string feat = c.feature_none ? "none" : c.distill.afd_mode == AfdMode::Adaptive ? "adaptive"
                                           : c.distill.afd_mode == AfdMode::Fixed    ? "fixed"
                                                                                      : "fixed:";
  if (!c.feature_none && c.distill.afd_mode == AfdMode::List)
    for (size_t i = 0; i < c.distill.afd_layers.size(); ++i)
      feat += (i ? "," : "") + std::to_string(c.distill.afd_layers[i]);
  j.set("feature", feat);
  j.set("afd_k", int64_t(c.distill.afd_k));
  j.set("mask_align", c.distill.mask_align == MaskAlign::Razor ? "razor" : "reference");
  j.set("a_task", a_task);
  j.set("a_feature", a_feature);
  j.set("a_logit", a_logit);
  j.set("lr", double(c.lr));
  j.set("schedule", lr_schedule_name(c.schedule));
  j.set("warmup", double(c.warmup_frac));
  j.set("weight_decay", double(c.weight_decay));
  j.set("batch", int64_t(c.batch));
  j.set("seq", int64_t(c.seq));
  j.set("accum", int64_t(c.accum));
  j.set("steps", total_steps);
  j.set("seed", int64_t(c.seed));
  j.set("eval_every", c.eval_every);
  j.set("ckpt_every", c.ckpt_every);
  return j;
}

// Fields a resumed run must share with the checkpoint (else its loss curve means nothing).
void check_resume_config(const Json& have, const Json& want, const std::string& where) {
  check_resume_keys(have, want, where,
                    {"teacher_hash", "store_sequences", "rho", "group", "beta", "a8", "kv8", "loss_logit",
                     "eakld_clip", "eakld_k", "feature", "afd_k", "mask_align", "a_task", "a_feature", "a_logit",
                     "lr", "schedule", "warmup", "weight_decay", "batch", "seq", "accum", "steps", "seed", "plan"});
}

// Keeps the lines of a JSON-lines log whose "step" is <= keep (the resumed run redoes the rest).
// A last line without its newline (the run was killed while writing it) is dropped unparsed.
void trim_json_log(const std::string& path, int64_t keep) {
  if (!path_exists(path)) return;
  const std::string text = read_file(path);
  std::string kept;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // partial last line
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    Json j = Json::parse(line, path);
    if (j.get_int("step", INT64_MAX) <= keep) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

// Replicas stay bit-identical when every rank gets the same allreduce result; this checks
// that (a checksum of the parameters, compared by max over ranks) and, should an MPI
// library ever hand ranks different roundings, copies rank 0's state to all.
void sync_replicas(float* params, float* m, float* v, size_t P, FILE* log) {
  uint64_t h = hash64(params, P * sizeof(float));
  double mine[4] = {double(h >> 32), double(h & 0xffffffffu), -double(h >> 32), -double(h & 0xffffffffu)};
  dist_allreduce_max(mine, 4);
  if (mine[0] == -mine[2] && mine[1] == -mine[3]) return;
  if (log) std::fprintf(log, "note: rank parameters diverged (float rounding); re-synchronised from rank 0\n");
  dist_broadcast(params, P * sizeof(float), 0);
  dist_broadcast(m, P * sizeof(float), 0);
  dist_broadcast(v, P * sizeof(float), 0);
}

}  // namespace

// The option checks that need no data (before the data and the teacher dump).
static void check_qad_options(const QadConfig& c) {
  RZ_CHECK(c.batch >= 1, "--batch: must be >= 1 (got %d)", c.batch);
  RZ_CHECK(c.accum >= 1, "--accum: must be >= 1 (got %d)", c.accum);
  RZ_CHECK(c.seq >= 2, "--seq: must be >= 2 (got %d)", c.seq);
  RZ_CHECK(c.lr > 0 && std::isfinite(c.lr), "--lr: must be > 0 (got %g)", double(c.lr));
  RZ_CHECK(c.group >= 1, "--group: must be >= 1 (got %d)", c.group);
  c.distill.validate();
  if (!is_directory(c.teacher_dir))
    fail("--teacher: %s is not a directory (train one with `razor pretrain`, or give a Hugging Face checkpoint)",
         c.teacher_dir.c_str());
  if (!c.feature_none && c.distill.afd_mode == AfdMode::List) {
    // Checked here, before the data and the teacher dump, not at the first step.
    const int64_t L = ModelConfig::load(c.teacher_dir + "/config.json").num_hidden_layers;
    for (int l : c.distill.afd_layers)
      if (l > L) fail("--feature: layer %d outside the feature taps [0, %lld] of %s", l, (long long)L,
                      c.teacher_dir.c_str());
  }
}

// Dumps the teacher store when it is missing (an unfinished one resumes).
static void ensure_teacher_store(const QadConfig& c, const std::string& train_shard, FILE* log) {
  if (path_exists(store_manifest_path(c.store))) return;
  TokenShard shard(train_shard);
  TeacherDumpOptions d = c.dump;
  d.seq_len = c.seq;
  if (!c.data_parallel) d.rank = 0, d.ranks = 1;
  if (!c.progress) d.progress = nullptr;
  // --taps auto keeps only AFD's per-sequence taps at large shapes; this run's feature loss
  // must be one such a store serves (adaptive, razor alignment), else every tap is kept.
  d.afd_k = c.distill.afd_k;
  if (d.taps == TapStorage::Auto && !c.feature_none &&
      (c.distill.afd_mode != AfdMode::Adaptive || c.distill.mask_align != MaskAlign::Razor))
    d.taps = TapStorage::All;
  if (log) std::fprintf(log, "teacher store: writing %s (%lld sequences of %d tokens)\n", c.store.c_str(),
                        (long long)teacher_dump_sequences(shard, d), c.seq);
  if (log) std::fflush(log);
  TeacherDumpResult r = dump_teacher_store(c.teacher_dir, shard, c.store, d);
  if (!r.complete) fail("%s: the teacher dump stopped before the end", c.store.c_str());
}

// The run's outputs (rank 0): latent student, dequantized student, tokenizer files,
// the task suite, summary.json, the packed student and the summary table.
static void write_outputs(const QadConfig& c, const Model& student_m, const QuantSpec& spec, int ranks,
                          QadSummary* sum_out) {
  const Model* student = &student_m;
  std::unique_ptr<Model> teacher;  // loaded for the task suite only
  QadSummary& sum = *sum_out;
  FILE* log = c.log;
  student->save(c.out + "/student");
  {
    Model deq(student->cfg, /*trainable=*/false);
    deq.params.copy_from(student->params);
    for (Param& p : deq.entries) {
      WeightLayout l = spec.layout_for(p.name, p.kind);
      if (!l.quantized()) continue;
      fake_quant_weight(p.name, p.value, p.value, l);  // in place
    }
    deq.save(c.out + "/student-dequant");
  }
  if (path_exists(c.teacher_dir + "/tokenizer.json")) {
    std::string tj = read_file(c.teacher_dir + "/tokenizer.json");
    write_file_atomic(c.out + "/student/tokenizer.json", tj);
    write_file_atomic(c.out + "/student-dequant/tokenizer.json", tj);
  }
  if (path_exists(c.teacher_dir + "/tokenizer_config.json")) {  // chat template: generate --chat, GGUF export
    std::string tc = read_file(c.teacher_dir + "/tokenizer_config.json");
    write_file_atomic(c.out + "/student/tokenizer_config.json", tc);
    write_file_atomic(c.out + "/student-dequant/tokenizer_config.json", tc);
  }
  bool packed = pack_student_hook(c.out + "/student", c.out + "/student.razor", c.rho, c.group, c.beta, c.a8, c.kv8, c.plan);
  if (c.task_items > 0 && path_exists(c.teacher_dir + "/tokenizer.json")) {
    // The student is scored as it is deployed when it was packed: student.razor through the
    // engine (integer kernels, KV cache; generative items decode token by token), else its
    // fake-quant forward.
    Tokenizer tok = Tokenizer::load(c.teacher_dir + "/tokenizer.json");
    if (!teacher) teacher = Model::load(c.teacher_dir, /*trainable=*/false);
    const std::string heldout = suite_heldout_text();
    sum.teacher_tasks = evaluate_builtin_suite(*make_task_model(*teacher, tok), TaskSuiteConfig(), c.task_items, heldout);
    teacher.reset();
    if (packed) {
      const PackedModel pm = PackedModel::load(c.out + "/student.razor");
      sum.student_tasks = evaluate_builtin_suite(*make_task_model(pm, tok), TaskSuiteConfig(), c.task_items, heldout);
    } else {
      sum.student_tasks = evaluate_builtin_suite(*make_task_model(*student, tok), TaskSuiteConfig(), c.task_items, heldout);
    }
  }
  {
    // The summary, machine-readable (scripts: tools/ablations.sh, tools/budget_table.sh).
    Json j = Json::object();
    j.set("steps", sum.steps);
    if (std::isfinite(sum.teacher_ppl)) j.set("teacher_ppl", sum.teacher_ppl);  // NaN: no validation data
    if (std::isfinite(sum.student_ppl)) j.set("student_ppl", sum.student_ppl);
    if (!sum.teacher_tasks.empty()) j.set("teacher_tasks", task_results_json(sum.teacher_tasks));
    if (!sum.student_tasks.empty()) j.set("student_tasks", task_results_json(sum.student_tasks));
    j.set("avg_bits", sum.avg_bits);
    j.set("avg_bits_no_scales", sum.avg_bits_no_scales);
    j.set("tokens_per_s", sum.tokens_per_s);
    j.set("student_razor", packed ? c.out + "/student.razor" : std::string());
    write_file_atomic(c.out + "/summary.json", j.dump(2) + "\n");
  }
  if (log) {
    std::fprintf(log, "\n%-26s %14s %14s\n", "", "teacher", "student");
    std::fprintf(log, "%-26s %14.3f %14.3f\n", "valid perplexity", sum.teacher_ppl, sum.student_ppl);
    print_task_comparison(log, sum.teacher_tasks, sum.student_tasks, 26);
    if (packed && !sum.student_tasks.empty())
      std::fprintf(log, "%-26s (the student's tasks: student.razor through the engine)\n", "");
    std::fprintf(log, "%-26s %14s %14.4f\n", "bits/weight (with scales)", "16 (bf16)", sum.avg_bits);
    std::fprintf(log, "%-26s %14s %14.4f\n", "bits/weight (no scales)", "16 (bf16)", sum.avg_bits_no_scales);
    std::fprintf(log, "%-26s %12.2f MB %12.2f MB\n", "weights size (est.)", sum.teacher_bytes / 1e6,
                 sum.student_bytes / 1e6);
    std::fprintf(log, "%-26s %14s %14.0f\n", "train tokens/s", "", sum.tokens_per_s);
    if (ranks > 1)
      std::fprintf(log, "%-26s %14s %13.1f%%\n", "step time in allreduce", "", 100 * sum.comm_fraction);
    std::fprintf(log, "\nrun: %s (metrics.csv, chart.svg, run.json, checkpoint/, student/, student-dequant/%s)\n",
                 c.out.c_str(), packed ? ", student.razor" : "");
    if (packed) std::fprintf(log, "try it: ./razor generate -m %s/student.razor -p \"And God said\"\n", c.out.c_str());
  }
}

struct LossWeights {
  double task, feature, logit;
};

// One micro-batch: forward of the student on ids [B, T] (the store's sequences `views`),
// a_task * CE + a_logit * logit loss + a_feature * AFD, each scaled by inv = 1 / accum,
// backward; the logged values accumulate into lg.
static void micro_batch(Model& student, const std::vector<int32_t>& ids, const std::vector<SequenceView>& views,
                        const QadConfig& c, const LossWeights& w, double inv, QadStepLog* lg_out) {
  QadStepLog& lg = *lg_out;
  const int64_t B = int64_t(views.size()), T = c.seq;
  const double a_task = w.task, a_feature = w.feature, a_logit = w.logit;
  // The head and its losses a chunk of rows at a time (never all [B*T, V] logits at once;
  // the default model fits one chunk, which gives the materialised path's bits).
  ForwardResult fr = student.forward_to_head(ids, B, T, /*want_hidden=*/!c.feature_none);
  DistillStats st_logit;
  HeadLosses hl = head_losses(fr.head_x, fr.head_w, ce_targets(views), c.logit_none ? nullptr : &views, c.distill,
                              &st_logit, head_chunk_rows(student.cfg.vocab_size));
  Var ce = hl.ce;
  Var total = scale(ce, float(a_task * inv));
  lg.ce += double(ce.item()) * inv;
  if (!c.logit_none) {
    const DistillStats& st = st_logit;
    Var l = hl.logit;
    total = add(total, scale(l, float(a_logit * inv)));
    lg.logit += st.logit * inv;
    lg.fkl += st.fkl * inv;
    lg.rkl += st.rkl * inv;
    lg.lambda += st.lambda * inv;
  } else {
    lg.logit = lg.fkl = lg.rkl = lg.lambda = NAN;
  }
  if (!c.feature_none) {
    DistillStats st;
    Var f = afd_loss(fr.hidden, views, c.distill, &st);
    total = add(total, scale(f, float(a_feature * inv)));
    lg.feature += st.feature * inv;
    lg.layers = st.layers;
  } else {
    lg.feature = NAN;
  }
  lg.loss += double(total.item());
  backward(total);
}

// Data parallelism: sums every rank's micro-batch gradients grads [P] (each already scaled by
// 1/accum: the single-process gradient of the same global batch, up to float summation order)
// and the logged values (ce logit fkl rkl lambda feature loss, then the AFD layers of the last
// micro-batch: count + up to L1 ids, sent by the rank that ran it, `has_last`). Sets lg.comm_s.
static void allreduce_step(float* grads, size_t P, bool has_last, size_t L1, std::vector<double>* stats,
                           QadStepLog* lg_out) {
  QadStepLog& lg = *lg_out;
  const size_t kStats = 7;
  double tc = now_seconds();
  dist_allreduce_sum(grads, P);
  stats->assign(kStats + 1 + L1, 0.0);
  double* st = stats->data();
  st[0] = lg.ce, st[1] = lg.logit, st[2] = lg.fkl, st[3] = lg.rkl, st[4] = lg.lambda, st[5] = lg.feature;
  st[6] = lg.loss;
  if (has_last) {
    st[kStats] = double(lg.layers.size());
    for (size_t i = 0; i < lg.layers.size() && i < L1; ++i) st[kStats + 1 + i] = double(lg.layers[i]);
  }
  dist_allreduce_sum(stats->data(), stats->size());
  lg.ce = st[0], lg.logit = st[1], lg.fkl = st[2], lg.rkl = st[3], lg.lambda = st[4], lg.feature = st[5];
  lg.loss = st[6];
  lg.layers.resize(size_t(st[kStats]));
  for (size_t i = 0; i < lg.layers.size(); ++i) lg.layers[i] = int(st[kStats + 1 + i]);
  lg.comm_s = now_seconds() - tc;
}

// Resolves the defaults that depend on the run (output folder, store, data, validation shard)
// and prepares the token shards; rank 0 builds the token cache first, the others then find it
// (or build their own copy when the cache directory is not shared).
static PreparedData resolve_paths(QadConfig& c, bool lead, int ranks) {
  if (c.out.empty()) {
    char name[96];
    std::snprintf(name, sizeof name, "runs/qad-rho%g-g%d%s%s", c.rho, c.group, c.a8 ? "-a8" : "", c.kv8 ? "-kv8" : "");
    c.out = name;
  }
  if (c.resume && lead && !checkpoint_exists(c.out + "/checkpoint"))  // before any data or teacher work
    fail("--resume: %s/checkpoint has no checkpoint", c.out.c_str());
  make_dirs(c.out);
  if (c.store.empty()) c.store = c.out + "/store";
  if (c.data.empty()) c.data = "default";
  PreparedData prep;
  if (lead) prep = prepare_data(c.data, c.teacher_dir + "/tokenizer.json", c.cache_dir, c.records);
  if (ranks > 1) dist_barrier();
  if (!lead) prep = prepare_data(c.data, c.teacher_dir + "/tokenizer.json", c.cache_dir, c.records);
  if (c.valid.empty()) {
    c.valid = prep.valid_shard;
  } else if (!ends_with(c.valid, ".tok")) {
    fail("--valid: %s: give a token shard (.tok); text validation data comes with --data", c.valid.c_str());
  }
  return prep;
}

static bool is_mlp_matrix(TensorRole r) { return r == TensorRole::Gate || r == TensorRole::Up || r == TensorRole::Down; }

// --init gptq: the teacher's weights replaced by GPTQ's at the student's layout, written as
// their RTN preimage (what `razor quantize --ptq gptq --latent` writes), so the student's first
// forward is GPTQ's model. Calibrated on --data's training split like `razor quantize --calib`,
// with full-precision activations as there.
// --init gptq-mlp keeps GPTQ's MLP matrices only (docs/quality.md: GPTQ's start keeps word
// problems and loses held-out facts; its MLPs alone keep both): GPTQ runs over the whole
// model as for --init gptq, so the MLPs are calibrated exactly as there, and every other tensor
// is then put back to the teacher's value.
static void gptq_start(const QadConfig& c, const QuantSpec& spec, Model& student) {
  const bool mlp_only = c.init_dir == "gptq-mlp";
  const std::vector<float> teacher_values =
      mlp_only ? std::vector<float>(student.params.data(), student.params.data() + student.params.numel())
               : std::vector<float>();
  QuantSpec s = spec;
  s.a8 = s.kv8 = s.int_forward = false;
  RZ_CHECK(c.seq <= student.cfg.max_position_embeddings, "--init gptq: --seq %d exceeds the model's context %lld",
           c.seq, (long long)student.cfg.max_position_embeddings);
  const CalibSet calib =
      calibration_set(c.data, c.teacher_dir + "/tokenizer.json", c.init_calib_sequences, c.seq, c.cache_dir);
  CalibPtqOptions copt;
  std::vector<std::pair<std::string, QuantizedWeight>> qw;
  const auto t0 = std::chrono::steady_clock::now();
  const PtqReport rep = apply_ptq(student, s, PtqMethod::Gptq, &calib, &copt, &qw);
  if (mlp_only) {
    for (Param& p : student.entries)
      if (!is_mlp_matrix(p.role))
        std::copy_n(teacher_values.data() + p.offset, p.value.numel(), p.value.data());
    qw.erase(std::remove_if(qw.begin(), qw.end(),
                            [&](const auto& q) { return !is_mlp_matrix(student.find(q.first)->role); }),
             qw.end());
  }
  set_rtn_preimages(student, qw);
  if (c.log)
    std::fprintf(c.log, "init: GPTQ's weights of the teacher%s (%d of %d tensors, %lld calibration sequences of %d "
                 "tokens, %.1f s, weight rel. error %.4f)\n", mlp_only ? " for the MLP matrices" : "", int(qw.size()),
                 rep.tensors, (long long)c.init_calib_sequences, c.seq,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), rep.rel_error);
}

// The trainable student: the teacher's weights with the quantizer hooks of `spec` installed.
static std::unique_ptr<Model> load_student(const QadConfig& c, const StoreInfo& si, const QuantSpec& spec) {
  const bool gptq = init_from_gptq(c.init_dir);
  const std::string& from = c.init_dir.empty() || gptq ? c.teacher_dir : c.init_dir;
  std::unique_ptr<Model> student = Model::load(from, /*trainable=*/true);
  if (student->cfg.num_hidden_layers != si.num_layers || student->cfg.hidden_size != si.hidden_size ||
      student->cfg.vocab_size != si.vocab_size)
    fail("%s: store shape (L=%lld C=%lld V=%lld) does not match the %s %s", c.store.c_str(), (long long)si.num_layers,
         (long long)si.hidden_size, (long long)si.vocab_size, from == c.teacher_dir ? "teacher" : "--init checkpoint",
         from.c_str());
  if (!c.init_dir.empty() && !gptq) {
    // The student must be the teacher's architecture. Layers, hidden size and vocabulary were
    // checked against the store (the teacher's) above; these are the other shape fields.
    const ModelConfig t = ModelConfig::load(c.teacher_dir + "/config.json");
    const ModelConfig& s = student->cfg;
    if (s.model_type != t.model_type || s.num_attention_heads != t.num_attention_heads ||
        s.num_key_value_heads != t.num_key_value_heads || s.head_dim != t.head_dim ||
        s.intermediate_size != t.intermediate_size || s.tie_word_embeddings != t.tie_word_embeddings)
      fail("--init %s: not the teacher's architecture (%s): type, heads, KV heads, head_dim, FFN and tied "
           "embeddings must match", from.c_str(), c.teacher_dir.c_str());
  }
  if (gptq && !c.resume) gptq_start(c, spec, *student);  // a resumed run reads its checkpoint
  install_quant_hooks(*student, spec);
  student->recompute = c.recompute;
  return student;
}

// --resume: rank 0 reads the checkpoint (its configuration must be this run's), the others get
// the state by broadcast. Returns the step to continue from (0 without --resume).
static int64_t resume_student(const QadConfig& c, const Json& run, int ranks, bool lead, int64_t total_steps,
                              Model& student, AdamW& opt) {
  if (!c.resume) return 0;
  const size_t P = size_t(student.params.numel());
  const std::string ckpt_dir = c.out + "/checkpoint";
  int64_t step0 = 0;
  if (lead) {
    if (!checkpoint_exists(ckpt_dir)) fail("--resume: %s has no checkpoint", ckpt_dir.c_str());
    Checkpoint ck = load_checkpoint(ckpt_dir);
    check_resume_config(ck.meta.config, run, ck.loaded_from);
    if (ck.params.size() != P) fail("%s: %zu parameters, the student has %zu", ck.loaded_from.c_str(), ck.params.size(), P);
    step0 = restore_state(ck, student, opt);
    if (c.log) std::fprintf(c.log, "resuming %s at step %lld of %lld\n", ck.loaded_from.c_str(), (long long)step0,
                            (long long)total_steps);
    if (c.log) std::fflush(c.log);
  }
  if (ranks > 1) {
    dist_broadcast(&step0, sizeof step0, 0);
    dist_broadcast(student.params.data(), P * sizeof(float), 0);
    dist_broadcast(opt.m().data(), P * sizeof(float), 0);
    dist_broadcast(opt.v().data(), P * sizeof(float), 0);
    opt.set_steps_done(step0);
  }
  return step0;
}

// metrics.csv's columns: the losses, one per AFD layer a step can select (*n_layer_cols), then
// lr, grad_norm, tokens_per_s, val_ppl.
static std::vector<std::string> metric_columns(const QadConfig& c, const StoreInfo& si, int* n_layer_cols) {
  std::vector<std::string> cols = {"step", "loss", "loss_ce", "loss_feature", "loss_logit", "fkl", "rkl", "lambda"};
  *n_layer_cols = c.feature_none ? 0
                  : c.distill.afd_mode == AfdMode::Adaptive ? std::min<int>(c.distill.afd_k, int(si.num_layers))
                  : c.distill.afd_mode == AfdMode::Fixed    ? 3
                                                            : int(c.distill.afd_layers.size());
  for (int i = 0; i < *n_layer_cols; ++i) cols.push_back("afd_layer" + std::to_string(i + 1));
  for (const char* k : {"lr", "grad_norm", "tokens_per_s", "val_ppl"}) cols.push_back(k);
  return cols;
}

// One optimizer step s (0-based): this rank's micro-batches of the global batch, the gradient
// allreduce under data parallelism, AdamW. Returns the step's log (loss terms, lr, norm, speed).
struct QadStepper {
  const QadConfig& c;
  Model& student;
  AdamW& opt;
  StoreReader& store;
  SequenceOrder order;  // the store sequence of each global sample
  const LrSchedule& sched;
  LossWeights w;
  int rank, ranks;
  size_t L1;  // AFD layer ids a step can log
  std::vector<double> stats;
  std::vector<SequenceView> views;
  std::vector<int32_t> ids;

  QadStepLog step(int64_t s) {
    const double t0 = now_seconds();
    const int64_t B = c.batch, T = c.seq;
    views.resize(size_t(B));
    ids.resize(size_t(B * T));
    QadStepLog lg;
    lg.step = s + 1;
    student.zero_grad();
    for (int a = rank; a < c.accum; a += ranks) {
      for (int64_t b = 0; b < B; ++b) {
        int64_t j = (s * c.accum + a) * B + b;
        views[size_t(b)] = store.sequence(order.at(j));
        std::copy_n(views[size_t(b)].ids, T, &ids[size_t(b * T)]);
      }
      micro_batch(student, ids, views, c, w, 1.0 / double(c.accum), &lg);
    }
    if (ranks > 1) allreduce_step(student.grads.data(), size_t(student.params.numel()),
                                  (c.accum - 1) % ranks == rank, L1, &stats, &lg);
    lg.lr = sched.lr_at(s);
    lg.grad_norm = opt.step(student.params.data(), student.grads.data(), float(lg.lr));
    if (!std::isfinite(lg.grad_norm))
      fail("step %lld: the gradient norm is not finite (loss %g); lower --lr or check the teacher store",
           (long long)(s + 1), lg.loss);
    lg.seconds = now_seconds() - t0;
    lg.tokens_per_s = double(int64_t(c.batch) * c.accum * T) / lg.seconds;
    return lg;
  }
};

// The bits and bytes of the student's layout (the summary's size rows).
static void account_bits(const Model& student, const QuantSpec& spec, QadSummary* sum) {
  BitReport br = bit_report(model_matrices(student, spec));
  sum->avg_bits = br.avg_bits;
  sum->avg_bits_no_scales = br.avg_bits_no_scales;
  sum->student_bytes = int64_t(std::ceil(double(br.quantized_params) * br.avg_bits / 8.0)) +
                       (br.total_params - br.quantized_params) * 2;
  sum->teacher_bytes = br.total_params * 2;
}

QadSummary run_qad(const QadConfig& cin) {
  QadConfig c = cin;
  // Data parallelism (core/dist.h): rank r runs micro-batches r, r+N, ... of every step.
  const int ranks = c.data_parallel ? dist_size() : 1;
  const int rank = c.data_parallel ? dist_rank() : 0;
  const bool lead = rank == 0;  // writes run.json, metrics, checkpoints, outputs
  if (!lead) {
    c.log = nullptr;
    c.progress = false;
  }
  if (c.threads > 0) set_num_threads(c.threads);
  check_qad_options(c);
  const PreparedData prep = resolve_paths(c, lead, ranks);
  LossWeights w;
  qad_default_weights(c.rho, &w.task, &w.feature, &w.logit);
  if (c.a_task >= 0) w.task = c.a_task;
  if (c.a_feature >= 0) w.feature = c.a_feature;
  if (c.a_logit >= 0) w.logit = c.a_logit;
  FILE* log = c.log;

  // ---- teacher store (dumped when missing or unfinished)
  ensure_teacher_store(c, prep.train_shard, log);
  StoreReader store(c.store, StoreVerify::Lazy);
  store.check_compatible(teacher_checkpoint_hash(c.teacher_dir), tokenizer_file_hash(c.teacher_dir));
  const StoreInfo& si = store.info();
  if (!c.feature_none) check_store_serves_afd(si, c.distill, c.store);
  if (si.seq_len != c.seq)
    fail("--seq: the store %s holds sequences of %lld tokens, not %d (give --seq %lld or another --store)",
         c.store.c_str(), (long long)si.seq_len, c.seq, (long long)si.seq_len);
  const int64_t N = store.num_sequences();
  RZ_CHECK(N >= 1, "%s: the teacher store holds no sequences", c.store.c_str());

  // ---- student, optimizer, schedule, resume
  QuantSpec spec;
  spec.plan = PrecisionPlan{c.rho, c.group, c.beta};
  spec.a8 = c.a8;
  spec.kv8 = c.kv8;
  spec.int_forward = c.int_forward;
  if (!c.plan.empty()) spec.overrides = load_plan(c.plan);
  std::unique_ptr<Model> student = load_student(c, si, spec);
  keep_step_memory();
  AdamW opt = make_optimizer(*student, c.weight_decay);
  const int64_t per_step = int64_t(c.batch) * c.accum;
  int64_t total_steps = c.steps > 0 ? c.steps : int64_t(std::ceil(c.epochs * double(N) / double(per_step)));
  RZ_CHECK(total_steps >= 1, "--steps/--epochs: the run has no step (epochs %g, %lld sequences)", c.epochs,
           (long long)N);
  const LrSchedule sched = make_schedule(c.schedule, c.lr, total_steps, c.warmup_frac);
  Json run = config_json(c, si, w.task, w.feature, w.logit, total_steps);
  run.set("ranks", int64_t(ranks));  // informative: a resume may use another N
  if (lead && ranks > 1 && c.accum % ranks != 0 && log)
    std::fprintf(log, "note: --accum %d is not a multiple of the %d ranks: some ranks idle part of each step\n",
                 c.accum, ranks);
  const int64_t step0 = resume_student(c, run, ranks, lead, total_steps, *student, opt);
  // Every rank made its own start; GPTQ's (--init gptq / gptq-mlp) goes through OpenMP
  // reductions, so rank 0's is the one all ranks train from.
  if (ranks > 1 && !c.resume && init_from_gptq(c.init_dir))
    dist_broadcast(student->params.data(), size_t(student->params.numel()) * sizeof(float), 0);
  if (lead) write_file_atomic(c.out + "/run.json", run.dump(2) + "\n");

  // ---- logs, validation data, teacher reference
  int n_layer_cols = 0;
  std::unique_ptr<StepReport> report;
  if (lead) report.reset(new StepReport(c.out, metric_columns(c, si, &n_layer_cols), c.resume, step0, total_steps,
                                        c.progress, 3));
  std::unique_ptr<std::ofstream> jlog;
  if (lead && !c.log_json.empty()) {
    if (c.resume) trim_json_log(c.log_json, step0);
    jlog.reset(new std::ofstream(c.log_json, c.resume ? std::ios::app : std::ios::trunc));
    if (!*jlog) fail("--log-json: cannot write %s", c.log_json.c_str());
  }
  std::unique_ptr<TokenShard> valid;
  if (lead && !c.valid.empty()) valid.reset(new TokenShard(c.valid));
  QadSummary sum;
  sum.teacher_ppl = sum.student_ppl = NAN;
  if (valid)  // the teacher is not held through training (2.4 GB at Qwen3-0.6B); loaded again for the summary
    sum.teacher_ppl = eval_perplexity(*Model::load(c.teacher_dir, false), *valid, c.seq, c.eval_windows, c.batch).ppl;

  // ---- the loop
  QadStepper stepper{c, *student, opt, store, SequenceOrder(N, c.seed), sched, w, rank, ranks, size_t(si.num_layers) + 1, {}, {}, {}};
  double tokens_total = 0, seconds_total = 0, comm_total = 0;
  for (int64_t s = step0; s < total_steps; ++s) {
    QadStepLog lg = stepper.step(s);
    tokens_total += double(per_step * c.seq);
    seconds_total += lg.seconds;
    comm_total += lg.comm_s;
    double vppl = NAN;
    if (valid && cadence_due(c.eval_every, s + 1, total_steps))
      sum.student_ppl = vppl = eval_perplexity(*student, *valid, c.seq, c.eval_windows, c.batch).ppl;
    std::vector<double> row = {double(s + 1), lg.loss, lg.ce, lg.feature, lg.logit, lg.fkl, lg.rkl, lg.lambda};
    for (int i = 0; i < n_layer_cols; ++i) row.push_back(i < int(lg.layers.size()) ? double(lg.layers[size_t(i)]) : NAN);
    row.insert(row.end(), {lg.lr, lg.grad_norm, lg.tokens_per_s, vppl});
    if (report) report->step(row, s + 1, lg.loss, double(per_step * c.seq), vppl);
    if (jlog) *jlog << lg.json() << "\n" << std::flush;
    sum.log.push_back(lg);
    const bool ckpt_due = cadence_due(c.ckpt_every, s + 1, total_steps);
    if (ckpt_due && ranks > 1) sync_replicas(student->params.data(), opt.m().data(), opt.v().data(),
                                           size_t(student->params.numel()), log);
    if (lead && ckpt_due) {
      const Rng r(c.seed);
      const std::array<uint64_t, 4> rng = {r.s[0], r.s[1], r.s[2], r.s[3]};
      save_train_state(c.out + "/checkpoint", s + 1, run, *student, opt, &rng);
    }
    if (c.stop_after >= 0 && s + 1 >= c.stop_after) {
      if (report) report->finish(/*chart=*/false);
      sum.steps = s + 1;
      return sum;
    }
  }
  if (report) report->finish(/*chart=*/true);
  // Training is over and the checkpoint written: the moments are not needed for the outputs
  // (4.8 GB at Qwen3-0.6B, which the dequantized copy and the packing below would add to).
  std::vector<float>().swap(opt.m());
  std::vector<float>().swap(opt.v());
  sum.steps = total_steps;
  sum.tokens_per_s = seconds_total > 0 ? tokens_total / seconds_total : 0;
  sum.ranks = ranks;
  sum.comm_fraction = seconds_total > 0 ? comm_total / seconds_total : 0;
  account_bits(*student, spec, &sum);
  if (c.final_outputs && lead) write_outputs(c, *student, spec, ranks, &sum);
  return sum;
}

}  // namespace razor
