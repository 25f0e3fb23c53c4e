// Tests for the teacher dump (train/teacher_dump.h) and the QAD loop (train/qad.h) on a
// tiny random teacher and a tiny token shard: the store the dump writes (and its resume),
// loss going down, step-0 log components against losses recomputed from the store, exact
// resume, refusal of a store from another teacher.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "autograd/tape.h"
#include "core/rng.h"
#include "distill/losses.h"
#include "distill/store.h"
#include "train/teacher_dump.h"
#include "io/json.h"
#include "model_test_util.h"
#include "nn/model.h"
#include "nn/ptq_model.h"
#include "nn/quant_hooks.h"
#include "qad_test_util.h"
#include "test_util.h"
#include "train/adamw.h"
#include "train/calib.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/qad.h"
#include "train/shards.h"

using namespace razor;

namespace {

constexpr int kT = 16;

// A tiny random teacher (tied qwen3, V=37, C=16, L=2) in HF layout plus a token shard.
struct Fixture {
  TempDir dir;
  std::string teacher, tokens;
  explicit Fixture(uint64_t seed = 7, int n_tokens = 400) {
    teacher = dir.path + "/teacher";
    Model m(tiny_config(true));
    m.init_random(seed, 0.3f);  // large weights: a peaked, non-trivial teacher
    m.save(teacher);
    tokens = dir.path + "/train.tok";
    Rng rng(99);
    std::vector<int32_t> ids;
    for (int i = 0; i < n_tokens; ++i) ids.push_back(int32_t(rng.below(37)));
    write_token_shard(tokens, ids, {}, 37);
  }
  TeacherDumpOptions dump_opts(int64_t max_seq) const {
    TeacherDumpOptions o;
    o.seq_len = kT;
    o.top_k = 8;
    o.max_sequences = max_seq;
    o.batch = 3;
    o.shard_sequences = 4;
    o.progress = nullptr;
    return o;
  }
  // A store of the first n sequences of the shard, at dir/store.
  std::string dumped_store(int64_t n) const {
    const std::string store = dir.path + "/store";
    dump_teacher_store(teacher, TokenShard(tokens), store, dump_opts(n));
    return store;
  }
  QadConfig qad(const std::string& out, const std::string& store) const {
    QadConfig c;
    c.teacher_dir = teacher;
    c.data = tokens;
    c.store = store;
    c.out = out;
    set_short_qad_run(c, kT);
    c.dump = dump_opts(0);
    return c;
  }
};

std::vector<Json> read_json_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<Json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(Json::parse(line, path));
  return out;
}

}  // namespace

TEST_SUITE("qad") {
  TEST_CASE("teacher dump: a store the reader accepts, with the teacher's own outputs") {
    Fixture f;
    std::string store = f.dir.path + "/store";
    TeacherDumpResult r = dump_teacher_store(f.teacher, TokenShard(f.tokens), store, f.dump_opts(10));
    CHECK(r.complete);
    CHECK(r.sequences == 10);
    StoreReader rd(store);
    REQUIRE(rd.num_sequences() == 10);
    CHECK(rd.info().seq_len == kT);
    CHECK(rd.info().top_k == 8);
    rd.check_compatible(teacher_checkpoint_hash(f.teacher), tokenizer_file_hash(f.teacher));
    // Sequence 3 is tokens [48, 65) of the shard.
    TokenShard shard(f.tokens);
    SequenceView v = rd.sequence(3);
    for (int t = 0; t <= kT; ++t) CHECK(v.ids[t] == shard.token(uint64_t(3 * kT + t)));
    // Entropy and the final-norm tap against an independent forward of that window alone.
    std::unique_ptr<Model> m = Model::load(f.teacher, false);
    std::vector<int32_t> ids(v.ids, v.ids + kT);
    NoGradGuard ng;
    ForwardResult fr = m->forward(ids, 1, kT, true);
    const int64_t V = 37, C = 16;
    for (int t = 0; t < kT; t += 5) {
      const float* z = fr.logits.value().data() + t * V;
      double mx = *std::max_element(z, z + V), se = 0;
      for (int64_t i = 0; i < V; ++i) se += std::exp(z[i] - mx);
      double lse = mx + std::log(se), h = 0;
      for (int64_t i = 0; i < V; ++i) h -= std::exp(z[i] - lse) * (z[i] - lse);
      CHECK(v.entropy[t] == doctest::Approx(h).epsilon(1e-4));
      CHECK(v.target_logp[t] == doctest::Approx(z[v.ids[t + 1]] - lse).epsilon(1e-4));
      std::vector<float> row(C);
      v.hidden_row(2, t, row.data());
      for (int64_t c = 0; c < C; ++c)
        CHECK(row[size_t(c)] == doctest::Approx(fr.hidden[2].value()[t * C + c]).epsilon(1e-2).scale(1));
    }
    // A finished store is found complete; a second dump writes nothing.
    TeacherDumpResult again = dump_teacher_store(f.teacher, TokenShard(f.tokens), store, f.dump_opts(10));
    CHECK(again.complete);
    CHECK(again.resumed_from == 10);
  }

  TEST_CASE("teacher dump: an interrupted dump resumes to the same store") {
    Fixture f;
    std::string full = f.dir.path + "/full", part = f.dir.path + "/part";
    dump_teacher_store(f.teacher, TokenShard(f.tokens), full, f.dump_opts(10));
    TeacherDumpOptions o = f.dump_opts(10);
    o.stop_after = 6;  // one complete shard of 4, two sequences in the unfinished shard
    TeacherDumpResult r1 = dump_teacher_store(f.teacher, TokenShard(f.tokens), part, o);
    CHECK_FALSE(r1.complete);
    CHECK_THROWS_AS(StoreReader{part}, Error);  // no manifest yet
    TeacherDumpResult r2 = dump_teacher_store(f.teacher, TokenShard(f.tokens), part, f.dump_opts(10));
    CHECK(r2.resumed_from == 4);
    CHECK(r2.complete);
    StoreReader a(full), b(part);
    REQUIRE(b.num_sequences() == 10);
    const int64_t bytes = RecordLayout::make(a.info()).bytes;
    for (int64_t i = 0; i < 10; ++i) {
      SequenceView va = a.sequence(i), vb = b.sequence(i);
      CHECK(std::memcmp(va.ids, vb.ids, bytes) == 0);  // the whole record, byte for byte
    }
  }

  TEST_CASE("qad: a few steps on one batch reduce the loss") {
    Fixture f;
    const std::string store = f.dumped_store(2);
    QadConfig c = f.qad(f.dir.path + "/run", store);
    c.steps = 8;
    c.lr = 2e-2f;
    c.warmup_frac = 0;
    QadSummary s = run_qad(c);
    REQUIRE(s.log.size() == 8);
    for (const QadStepLog& l : s.log) CHECK(std::isfinite(l.loss));
    CHECK(s.log.back().loss < 0.8 * s.log.front().loss);
    CHECK(s.log.back().logit < s.log.front().logit);
  }

  TEST_CASE("qad: --log-json step 0 equals the losses recomputed from the store") {
    Fixture f;
    std::string store = f.dir.path + "/store";
    dump_teacher_store(f.teacher, TokenShard(f.tokens), store, f.dump_opts(2));  // N = batch: step 0 reads both
    QadConfig c = f.qad(f.dir.path + "/run", store);
    c.steps = 2;
    c.log_json = f.dir.path + "/log.jsonl";
    run_qad(c);
    std::vector<Json> lines = read_json_lines(c.log_json);
    REQUIRE(lines.size() == 2);
    const Json& j = lines[0];

    StoreReader rd(store);
    std::unique_ptr<Model> st = Model::load(f.teacher, true);
    QuantSpec spec;
    spec.plan = PrecisionPlan{0.125, 8, 2.0f};
    spec.a8 = spec.kv8 = true;
    install_quant_hooks(*st, spec);
    std::vector<SequenceView> views = {rd.sequence(0), rd.sequence(1)};
    std::vector<int32_t> ids;
    for (auto& v : views) ids.insert(ids.end(), v.ids, v.ids + kT);
    ForwardResult fr = st->forward(ids, 2, kT, true);
    DistillConfig dc;
    DistillStats ls, fs;
    Var ce = cross_entropy(fr.logits, ce_targets(views));
    Var lg = logit_distill_loss(fr.logits, views, dc, &ls);
    Var ft = afd_loss(fr.hidden, views, dc, &fs);
    // CE directly in double from the student logits.
    double ce_direct = 0;
    for (int b = 0; b < 2; ++b)
      for (int t = 0; t < kT; ++t) {
        const float* z = fr.logits.value().data() + (b * kT + t) * 37;
        double mx = *std::max_element(z, z + 37), se = 0;
        for (int i = 0; i < 37; ++i) se += std::exp(z[i] - mx);
        ce_direct += mx + std::log(se) - z[views[size_t(b)].ids[t + 1]];
      }
    ce_direct /= 2 * kT;
    CHECK(j.at("ce").as_double() == doctest::Approx(ce_direct).epsilon(1e-5));
    CHECK(j.at("ce").as_double() == doctest::Approx(ce.item()).epsilon(1e-6));
    CHECK(j.at("logit").as_double() == doctest::Approx(ls.logit).epsilon(1e-6));
    CHECK(j.at("fkl").as_double() == doctest::Approx(ls.fkl).epsilon(1e-6));
    CHECK(j.at("rkl").as_double() == doctest::Approx(ls.rkl).epsilon(1e-6));
    CHECK(j.at("lambda").as_double() == doctest::Approx(ls.lambda).epsilon(1e-6));
    CHECK(j.at("feature").as_double() == doctest::Approx(fs.feature).epsilon(1e-6));
    CHECK(ls.logit > 0);
    CHECK(fs.feature > 0);
    double total = 0.1 * ce.item() + 2.0 * ls.logit + 0.1 * fs.feature;
    CHECK(j.at("loss").as_double() == doctest::Approx(total).epsilon(1e-5));
    REQUIRE(j.at("layers").size() == fs.layers.size());
    for (size_t i = 0; i < fs.layers.size(); ++i) CHECK(j.at("layers")[i].as_int() == fs.layers[i]);
    // grad_norm is the pre-update norm of this step's gradient.
    Var loss = add(add(scale(ce, 0.1f), scale(lg, 2.0f)), scale(ft, 0.1f));
    st->zero_grad();
    backward(loss);
    double gn = grad_global_norm(st->grads.data(), size_t(st->grads.numel()));
    CHECK(j.at("grad_norm").as_double() == doctest::Approx(gn).epsilon(1e-4));
    LrSchedule sch;
    sch.kind = c.schedule;  // the default: cosine
    sch.peak_lr = 1e-2f;
    sch.total_steps = 2;
    CHECK(j.at("lr").as_double() == doctest::Approx(sch.lr_at(0)));
  }

  TEST_CASE("qad: resume after N steps gives the uninterrupted run's metrics bit for bit") {
    Fixture f;
    std::string store = f.dir.path + "/store";
    dump_teacher_store(f.teacher, TokenShard(f.tokens), store, f.dump_opts(5));  // odd N: epochs straddle steps
    QadConfig a = f.qad(f.dir.path + "/a", store);
    a.log_json = f.dir.path + "/a.jsonl";
    run_qad(a);
    QadConfig b = f.qad(f.dir.path + "/b", store);
    b.log_json = f.dir.path + "/b.jsonl";
    b.stop_after = 4;  // killed after step 4; the last checkpoint is step 3
    run_qad(b);
    b.stop_after = -1;
    b.resume = true;
    QadSummary sb = run_qad(b);
    CHECK(sb.log.size() == 3);  // steps 4..6 redone
    std::vector<Json> la = read_json_lines(a.log_json), lb = read_json_lines(b.log_json);
    REQUIRE(la.size() == 6);
    REQUIRE(lb.size() == 6);
    for (size_t i = 0; i < 6; ++i)
      for (const char* k : {"step", "loss", "ce", "feature", "logit", "fkl", "rkl", "lambda", "lr", "grad_norm"})
        CHECK_MESSAGE(la[i].at(k).dump() == lb[i].at(k).dump(), "step ", i + 1, " ", k);
    Checkpoint ca = load_checkpoint(a.out + "/checkpoint"), cb = load_checkpoint(b.out + "/checkpoint");
    CHECK(ca.meta.step == 6);
    CHECK(cb.meta.step == 6);
    CHECK(ca.params == cb.params);
    CHECK(ca.adam_v == cb.adam_v);
    CsvTable ta = read_metrics_csv(a.out + "/metrics.csv"), tb = read_metrics_csv(b.out + "/metrics.csv");
    REQUIRE(tb.column("loss")->size() == 6);
    CHECK(*ta.column("loss") == *tb.column("loss"));
    // A resume with other options is refused.
    b.lr = 1e-3f;
    CHECK_THROWS_AS(run_qad(b), Error);
  }

  TEST_CASE("qad: --init starts the student from another checkpoint of the teacher's architecture") {
    Fixture f;
    const std::string store = f.dumped_store(2);
    QadConfig a = f.qad(f.dir.path + "/a", store);
    a.steps = 2;
    a.log_json = f.dir.path + "/a.jsonl";
    run_qad(a);
    // The teacher's own weights under another name: the same run, bit for bit.
    const std::string copy = f.dir.path + "/copy", other = f.dir.path + "/other", wide = f.dir.path + "/wide";
    Model::load(f.teacher, false)->save(copy);
    QadConfig b = f.qad(f.dir.path + "/b", store);
    b.steps = 2;
    b.init_dir = copy;
    b.log_json = f.dir.path + "/b.jsonl";
    run_qad(b);
    std::vector<Json> la = read_json_lines(a.log_json), lb = read_json_lines(b.log_json);
    REQUIRE(la.size() == 2);
    REQUIRE(lb.size() == 2);
    for (size_t i = 0; i < 2; ++i) CHECK(la[i].at("loss").dump() == lb[i].at("loss").dump());
    // Other weights: step 0's CE is that of those weights, fake-quantized as the student.
    Model m(tiny_config(true));
    m.init_random(123, 0.3f);
    m.save(other);
    QadConfig c = f.qad(f.dir.path + "/c", store);
    c.steps = 1;
    c.init_dir = other;
    c.log_json = f.dir.path + "/c.jsonl";
    run_qad(c);
    std::vector<Json> lc = read_json_lines(c.log_json);
    REQUIRE(lc.size() == 1);
    std::unique_ptr<Model> st = Model::load(other, true);
    QuantSpec spec;
    spec.plan = PrecisionPlan{0.125, 8, 2.0f};
    spec.a8 = spec.kv8 = true;
    install_quant_hooks(*st, spec);
    StoreReader rd(store);
    std::vector<SequenceView> views = {rd.sequence(0), rd.sequence(1)};
    std::vector<int32_t> ids;
    for (auto& v : views) ids.insert(ids.end(), v.ids, v.ids + kT);
    double ce = 0;
    {
      NoGradGuard no_grad;  // nothing left on the tape that outlives `st`
      ce = cross_entropy(st->forward(ids, 2, kT, false).logits, ce_targets(views)).item();
    }
    CHECK(lc[0].at("ce").as_double() == doctest::Approx(ce).epsilon(1e-6));
    CHECK(lc[0].at("ce").as_double() != doctest::Approx(la[0].at("ce").as_double()).epsilon(1e-3));
    // Another architecture is refused, naming the option.
    ModelConfig wc = tiny_config(true);
    wc.intermediate_size = 32;
    Model w(wc);
    w.init_random(5, 0.3f);
    w.save(wide);
    QadConfig d = f.qad(f.dir.path + "/d", store);
    d.init_dir = wide;
    check_throws_containing([&] { run_qad(d); }, "--init");
  }

  TEST_CASE("qad: --init gptq starts from GPTQ's weights of the teacher, as `razor quantize --latent` writes them") {
    Fixture f;
    const std::string store = f.dumped_store(2);
    // A run of `steps` steps from `init` ("" = the teacher), its per-step log.
    auto run_from = [&](const std::string& name, int64_t steps, const std::string& init, int64_t calib) {
      QadConfig c = f.qad(f.dir.path + "/" + name, store);
      c.steps = steps;
      c.init_dir = init;
      c.init_calib_sequences = calib;
      c.log_json = f.dir.path + "/" + name + ".jsonl";
      run_qad(c);
      return read_json_lines(c.log_json);
    };
    const std::vector<Json> la = run_from("a", 2, "gptq", 5);
    // The same start made by hand: GPTQ of the teacher at the student's layout, calibrated on the
    // same windows of --data, each matrix written as the preimage its RTN maps to GPTQ's codes.
    std::unique_ptr<Model> m = Model::load(f.teacher, false);
    const QadConfig d = f.qad("", store);
    QuantSpec spec;
    spec.plan = PrecisionPlan{d.rho, d.group, d.beta};
    const CalibSet calib = calibration_set(f.tokens, "", 5, kT, f.dir.path + "/cache");
    CalibPtqOptions copt;
    std::vector<std::pair<std::string, QuantizedWeight>> qw;
    apply_ptq(*m, spec, PtqMethod::Gptq, &calib, &copt, &qw);
    REQUIRE(qw.size() >= 2 * 7);  // every decoder linear of the two layers
    set_rtn_preimages(*m, qw);
    m->save(f.dir.path + "/latent");
    const std::vector<Json> lb = run_from("b", 2, f.dir.path + "/latent", 128);
    const std::vector<Json> lt = run_from("t", 1, "", 128);  // the teacher's start
    REQUIRE(la.size() == 2);
    REQUIRE(lb.size() == 2);
    REQUIRE(lt.size() == 1);
    for (size_t i = 0; i < 2; ++i)
      for (const char* k : {"loss", "ce", "feature", "logit", "grad_norm"})
        CHECK_MESSAGE(la[i].at(k).dump() == lb[i].at(k).dump(), "step ", i + 1, " ", k);
    CHECK(la[0].at("ce").as_double() != doctest::Approx(lt[0].at("ce").as_double()).epsilon(1e-4));
    // --init-calib's count reaches the calibration: another count, another start.
    CHECK(run_from("c", 1, "gptq", 2)[0].at("ce").dump() != la[0].at("ce").dump());
    // --init gptq-mlp: GPTQ's gate/up/down (the same calibration), the teacher's everything else,
    // as a checkpoint merged by hand from the two gives it.
    std::unique_ptr<Model> t = Model::load(f.teacher, false);
    int mlp = 0;
    for (Param& p : t->entries)
      if (p.role == TensorRole::Gate || p.role == TensorRole::Up || p.role == TensorRole::Down) {
        p.value.copy_from(m->find(p.name)->value);
        ++mlp;
      }
    REQUIRE(mlp == 2 * 3);
    t->save(f.dir.path + "/latent-mlp");
    const std::vector<Json> lm = run_from("m", 2, "gptq-mlp", 5);
    const std::vector<Json> lbm = run_from("bm", 2, f.dir.path + "/latent-mlp", 128);
    REQUIRE(lm.size() == 2);
    REQUIRE(lbm.size() == 2);
    for (size_t i = 0; i < 2; ++i)
      for (const char* k : {"loss", "ce", "feature", "logit", "grad_norm"})
        CHECK_MESSAGE(lm[i].at(k).dump() == lbm[i].at(k).dump(), "gptq-mlp step ", i + 1, " ", k);
    CHECK(lm[0].at("ce").dump() != la[0].at("ce").dump());
    CHECK(lm[0].at("ce").dump() != lt[0].at("ce").dump());
  }

  TEST_CASE("qad: a store from another teacher is refused") {
    Fixture f(7), g(8);
    std::string store = f.dir.path + "/store";
    dump_teacher_store(f.teacher, TokenShard(f.tokens), store, f.dump_opts(2));
    QadConfig c = g.qad(g.dir.path + "/run", store);  // teacher g, store of teacher f
    try {
      run_qad(c);
      FAIL("a foreign store was accepted");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("teacher") != std::string::npos);
    }
    // Writing into it with teacher g is refused too, and the store stays readable.
    CHECK_THROWS_AS(dump_teacher_store(g.teacher, TokenShard(g.tokens), store, g.dump_opts(2)), Error);
    CHECK(StoreReader(store).num_sequences() == 2);
  }
}
