// Tests for the model-independent training infrastructure in src/train: token shards and the batch sampler, AdamW and schedules, checkpoints, metrics.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/threads.h"
#include "io/json.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "io/file_util.h"
#include "train/metrics.h"
#include "train/shards.h"
#include "test_util.h"

using namespace razor;

namespace {

// A fresh temporary directory, removed at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/razor_train_infra_XXXXXX";
    RZ_ASSERT(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { remove_tree(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// A byte-level "tokenizer": id = byte value, vocab 257 with EOS = 256.
std::vector<int32_t> byte_encode(std::string_view s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}

void patch_file(const std::string& path, long offset, unsigned char xor_mask) {
  std::string data = read_file(path);
  data[size_t(offset < 0 ? long(data.size()) + offset : offset)] ^= char(xor_mask);
  write_file_atomic(path, data.data(), data.size());
}

void truncate_file(const std::string& path, size_t drop) {
  std::string data = read_file(path);
  data.resize(data.size() - drop);
  write_file_atomic(path, data.data(), data.size());
}

}  // namespace

TEST_SUITE("train_infra") {
  TEST_CASE("shards: round trip uint16 and uint32, builder inserts EOS") {
    TempDir dir;
    std::vector<int32_t> toks = {1, 2, 3, 65534, 0, 7};
    write_token_shard(dir / "a.tok", toks, {0, 4}, 65535);
    TokenShard a(dir / "a.tok");
    CHECK(a.token_bytes() == 2);
    CHECK(a.size() == 6);
    CHECK(a.n_docs() == 2);
    CHECK(a.doc_start(1) == 4);
    std::vector<int32_t> back(6);
    a.read(0, 6, back.data());
    CHECK(back == toks);

    std::vector<int32_t> big = {69999, 0, 65536, 5, 9};
    write_token_shard(dir / "b.tok", big, {}, 70000);
    TokenShard b(dir / "b.tok");
    CHECK(b.token_bytes() == 4);
    CHECK(b.n_docs() == 0);
    for (size_t i = 0; i < big.size(); ++i) CHECK(b.token(i) == big[i]);

    CHECK(contains(error_of([&] { write_token_shard(dir / "c.tok", {1, 300}, {}, 256); }), "outside the vocabulary"));
    CHECK_FALSE(path_exists(dir / "c.tok"));

    auto docs = split_documents("\n\nfirst doc\nline two\n\n\nsecond\n\nthird\n");
    REQUIRE(docs.size() == 3);
    CHECK(docs[0] == "first doc\nline two");
    CHECK(docs[2] == "third");
    std::string text = "ab\n\ncd\nef\n";
    write_file_atomic(dir / "corpus.txt", text.data(), text.size());
    size_t n = build_token_shard({dir / "corpus.txt"}, dir / "c.tok", byte_encode, 256, 257, {"Q: 1+1= A: 2"});
    TokenShard c(dir / "c.tok");
    CHECK(n == c.size());
    CHECK(c.n_docs() == 3);
    CHECK(c.size() == 3 + 6 + 13);  // "ab" EOS, "cd\nef" EOS, arithmetic line EOS
    CHECK(c.token(2) == 256);
    CHECK(c.token(8) == 256);
    CHECK(c.token(c.size() - 1) == 256);
    CHECK(c.doc_start(1) == 3);
    CHECK(c.doc_start(2) == 9);
    CHECK(c.token(9) == 'Q');
  }

  TEST_CASE("shards: broken files are rejected with errors naming file and field") {
    TempDir dir;
    std::vector<int32_t> toks(100);
    for (int i = 0; i < 100; ++i) toks[size_t(i)] = i * 3;
    const std::string good = dir / "good.tok";
    write_token_shard(good, toks, {0, 50}, 1000);
    std::string bytes = read_file(good);
    auto variant = [&](const std::string& name, const std::function<void(const std::string&)>& breakit) {
      std::string p = dir / name;
      write_file_atomic(p, bytes.data(), bytes.size());
      breakit(p);
      return error_of([&] { TokenShard s(p); });
    };
    CHECK(error_of([&] { TokenShard s(good); }).empty());
    std::string e = variant("trunc.tok", [](const std::string& p) { truncate_file(p, 4); });
    CHECK(contains(e, "trunc.tok"));
    CHECK(contains(e, "truncated"));
    e = variant("tiny.tok", [](const std::string& p) { truncate_file(p, read_file(p).size() - 10); });
    CHECK(contains(e, "shorter than the 64-byte header"));
    e = variant("magic.tok", [](const std::string& p) { patch_file(p, 0, 0x20); });
    CHECK(contains(e, "bad magic"));
    e = variant("data.tok", [](const std::string& p) { patch_file(p, 64 + 11, 0x01); });
    CHECK(contains(e, "checksum mismatch"));
    e = variant("doc.tok", [](const std::string& p) { patch_file(p, -3, 0x01); });
    CHECK(contains(e, "checksum mismatch"));
    e = variant("count.tok", [](const std::string& p) { patch_file(p, 24, 0x01); });  // n_tokens
    CHECK(contains(e, "header checksum"));
    e = variant("version.tok", [](const std::string& p) { patch_file(p, 8, 0x02); });
    CHECK(contains(e, "version"));
    CHECK(contains(error_of([&] { TokenShard s(dir / "missing.tok"); }), "cannot open"));
  }

  TEST_CASE("sampler: deterministic from (seed, step), contiguous windows, exact resume") {
    TempDir dir;
    std::vector<int32_t> toks(5000);
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t(i % 997);
    write_token_shard(dir / "s.tok", toks, {}, 997);
    TokenShard shard(dir / "s.tok");
    BatchSampler s1(shard, 4, 16, 42);
    std::vector<std::vector<int32_t>> run;
    for (int64_t step = 0; step < 10; ++step) run.push_back(s1.sample(step));
    for (const auto& batch : run) {
      REQUIRE(batch.size() == 4 * 17);
      for (int b = 0; b < 4; ++b)
        for (int j = 0; j < 16; ++j)
          CHECK(batch[size_t(b * 17 + j + 1)] == (batch[size_t(b * 17 + j)] + 1) % 997);
    }
    CHECK(run[3] != run[4]);
    // A "resumed" sampler (new object, starting at step 7) sees exactly the same batches.
    BatchSampler s2(shard, 4, 16, 42);
    for (int64_t step = 7; step < 10; ++step) CHECK(s2.sample(step) == run[size_t(step)]);
    BatchSampler other_seed(shard, 4, 16, 43);
    CHECK(other_seed.sample(3) != run[3]);
    // Evaluation windows tile the shard without overlap (except the +1 target).
    CHECK(eval_window_count(shard, 16) == (5000 - 1) / 16);
    std::vector<int32_t> w(17);
    eval_window(shard, 16, 2, w.data());
    CHECK(w[0] == 32);
    CHECK(w[16] == 48);
    write_token_shard(dir / "short.tok", {1, 2, 3}, {}, 10);
    TokenShard short_shard(dir / "short.tok");
    CHECK(contains(error_of([&] { BatchSampler s(short_shard, 1, 8, 0); }), "too few"));
  }

  TEST_CASE("adamw: one and two steps against hand-computed values, decay mask") {
    float p[3] = {1.0f, -2.0f, 0.5f};
    float g[3] = {0.1f, -0.2f, 0.05f};
    AdamWConfig cfg;  // betas 0.9/0.95, eps 1e-8, wd 0.01, clip 1.0
    AdamW opt(3, cfg);
    opt.exclude_from_decay(2, 1);
    const double lr = 0.1;
    float norm = opt.step(p, g, float(lr));
    CHECK(norm == doctest::Approx(std::sqrt(0.0525)).epsilon(1e-6));
    // Step 1: mhat = g, vhat = g^2, so the Adam step is lr * g / (|g| + eps).
    double e0 = 1.0 * (1 - lr * 0.01) - lr * 0.1 / (0.1 + 1e-8);
    double e1 = -2.0 * (1 - lr * 0.01) + lr * 0.2 / (0.2 + 1e-8);
    double e2 = 0.5 - lr * 0.05 / (0.05 + 1e-8);  // no decay
    CHECK(p[0] == doctest::Approx(e0).epsilon(1e-6));
    CHECK(p[1] == doctest::Approx(e1).epsilon(1e-6));
    CHECK(p[2] == doctest::Approx(e2).epsilon(1e-6));
    CHECK(opt.m()[0] == doctest::Approx(0.01).epsilon(1e-6));
    CHECK(opt.v()[1] == doctest::Approx(0.05 * 0.04).epsilon(1e-6));
    // Step 2 with a different gradient on element 0.
    float g2[3] = {-0.3f, -0.2f, 0.05f};
    float p0 = p[0];
    opt.step(p, g2, float(lr));
    double m = 0.9 * 0.01 + 0.1 * -0.3, v = 0.95 * 0.0005 + 0.05 * 0.09;
    double mhat = m / (1 - 0.81), vhat = v / (1 - 0.9025);
    double expect = double(p0) * (1 - lr * 0.01) - lr * mhat / (std::sqrt(vhat) + 1e-8);
    CHECK(p[0] == doctest::Approx(expect).epsilon(1e-6));
    CHECK(opt.steps_done() == 2);
  }

  TEST_CASE("adamw: global norm clipping and non-finite gradients") {
    float g[2] = {3.0f, 4.0f};
    float norm = clip_grad_norm(g, 2, 1.0f);
    CHECK(norm == doctest::Approx(5.0));
    CHECK(g[0] == doctest::Approx(0.6).epsilon(1e-5));
    CHECK(g[1] == doctest::Approx(0.8).epsilon(1e-5));
    float small[2] = {0.3f, 0.4f};
    clip_grad_norm(small, 2, 1.0f);
    CHECK(small[0] == 0.3f);  // below the limit: untouched
    // Clipping happens before the update: a huge gradient moves a parameter by at most ~lr.
    AdamW opt(1);
    float p = 0.0f, big = 1e6f;
    CHECK(opt.step(&p, &big, 0.01f) == doctest::Approx(1e6));
    CHECK(p == doctest::Approx(-0.01).epsilon(1e-4));
    float nan_g = NAN, q = 1.0f;
    CHECK(std::isnan(opt.step(&q, &nan_g, 0.01f)));
    CHECK(q == 1.0f);
    CHECK(opt.steps_done() == 1);
    // The norm does not depend on the thread count (fixed blocks summed in a fixed order):
    // the same bits with 1, 2 and 3 threads, on a length that is not a multiple of the
    // block, and equal to a serial double-precision sum up to the final float rounding.
    std::vector<float> many(100003);
    double direct = 0;
    for (size_t i = 0; i < many.size(); ++i) {
      many[i] = float(std::sin(double(i)) * (1.0 + double(i % 977)));
      direct += double(many[i]) * double(many[i]);
    }
    const int prev = num_threads();
    std::vector<float> norms, clipped_sums;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      norms.push_back(grad_global_norm(many.data(), many.size()));
      std::vector<float> g = many;
      clip_grad_norm(g.data(), g.size(), 1.0f);
      double s = 0;
      for (float x : g) s += double(x);
      clipped_sums.push_back(float(s));
    }
    set_num_threads(prev);
    CHECK(norms[0] == doctest::Approx(std::sqrt(direct)).epsilon(1e-6));
    for (size_t k = 1; k < norms.size(); ++k) {
      CAPTURE(k + 1);
      CHECK(norms[k] == norms[0]);
      CHECK(clipped_sums[k] == clipped_sums[0]);
    }
  }

  TEST_CASE("schedules: values at key steps") {
    LrSchedule c{LrScheduleKind::Constant, 1e-3f, 100};
    CHECK(c.warmup_steps() == 5);
    CHECK(c.lr_at(0) == doctest::Approx(2e-4));
    CHECK(c.lr_at(4) == doctest::Approx(1e-3));
    CHECK(c.lr_at(50) == doctest::Approx(1e-3));
    CHECK(c.lr_at(99) == doctest::Approx(1e-3));
    LrSchedule k{LrScheduleKind::Cosine, 1e-3f, 1000};
    CHECK(k.warmup_steps() == 10);
    CHECK(k.lr_at(0) == doctest::Approx(1e-4));
    CHECK(k.lr_at(10) == doctest::Approx(1e-3));
    CHECK(k.lr_at(505) == doctest::Approx(5e-4));
    CHECK(k.lr_at(999) > 0.0f);
    CHECK(k.lr_at(999) < 1e-7f);
    CHECK(k.lr_at(1000) == 0.0f);
    LrSchedule none{LrScheduleKind::Cosine, 1.0f, 10, 0.0f};
    CHECK(none.lr_at(0) == 1.0f);
    CHECK(parse_lr_schedule("cosine") == LrScheduleKind::Cosine);
    CHECK(contains(error_of([] { parse_lr_schedule("linear", "--schedule"); }), "--schedule"));
  }

  TEST_CASE("checkpoint: round trip, failed save keeps the previous one, corruption detected") {
    TempDir dir;
    const std::string ck = dir / "checkpoint";
    std::vector<float> p = {1.5f, -2.0f, 3.25f}, m = {0.1f, 0.2f, 0.3f}, v = {1e-4f, 2e-4f, 3e-4f};
    CheckpointMeta meta;
    meta.step = 12;
    meta.data_cursor = 12;
    meta.rng = {1, 2, 0xffffffffffffffffull, 4};
    meta.config = Json::object();
    meta.config.set("lr", 2e-5);
    meta.config.set("model", "tiny");
    CHECK_FALSE(checkpoint_exists(ck));
    save_checkpoint(ck, meta, p.data(), m.data(), v.data(), 3);
    CHECK(checkpoint_exists(ck));
    Checkpoint a = load_checkpoint(ck);
    CHECK(a.meta.step == 12);
    CHECK(a.meta.rng[2] == 0xffffffffffffffffull);
    CHECK(a.params == p);
    CHECK(a.adam_m == m);
    CHECK(a.adam_v == v);
    CHECK(a.meta.config.get_string("model", "") == "tiny");

    // A save that dies after writing two files leaves the previous checkpoint intact.
    std::vector<float> p2 = {9.0f, 9.0f, 9.0f};
    CheckpointMeta meta2 = meta;
    meta2.step = 20;
    CheckpointSaveOptions crash;
    crash.fail_after_files = 2;
    CHECK(contains(error_of([&] { save_checkpoint(ck, meta2, p2.data(), m.data(), v.data(), 3, crash); }),
                   "simulated failure"));
    CHECK(is_directory(ck + ".tmp"));  // the debris a kill would leave
    Checkpoint b = load_checkpoint(ck);
    CHECK(b.meta.step == 12);
    CHECK(b.params == p);
    // The next save cleans up and replaces.
    save_checkpoint(ck, meta2, p2.data(), m.data(), v.data(), 3);
    CHECK_FALSE(path_exists(ck + ".tmp"));
    CHECK_FALSE(path_exists(ck + ".old"));
    CHECK(load_checkpoint(ck).meta.step == 20);

    // Killed between "move the old one aside" and "rename the new one in": <dir>.old is used.
    REQUIRE(std::rename(ck.c_str(), (ck + ".old").c_str()) == 0);
    CHECK(checkpoint_exists(ck));
    Checkpoint c = load_checkpoint(ck);
    CHECK(c.meta.step == 20);
    CHECK(c.loaded_from == ck + ".old");
    save_checkpoint(ck, meta, p.data(), m.data(), v.data(), 3);
    CHECK(load_checkpoint(ck).meta.step == 12);

    // Corrupted and truncated arrays, a missing state.json.
    patch_file(ck + "/adam_m.f32", -1, 0x40);
    std::string e = error_of([&] { load_checkpoint(ck); });
    CHECK(contains(e, "adam_m.f32"));
    CHECK(contains(e, "checksum mismatch"));
    save_checkpoint(ck, meta, p.data(), m.data(), v.data(), 3);
    truncate_file(ck + "/params.f32", 4);
    e = error_of([&] { load_checkpoint(ck); });
    CHECK(contains(e, "params.f32"));
    CHECK(contains(e, "does not match count"));
    CHECK(contains(error_of([&] { load_checkpoint(dir / "nowhere"); }), "no checkpoint"));
  }

  TEST_CASE("metrics: csv append/resume, svg chart, progress line") {
    TempDir dir;
    const std::string csv = dir / "metrics.csv";
    {
      MetricsCsv m(csv, {"step", "loss", "loss_ce", "val_ppl"});
      for (int s = 1; s <= 6; ++s) m.row({double(s), 5.0 / s, 4.0 / s, s % 3 == 0 ? 100.0 / s : NAN});
    }
    CHECK(read_file(csv).rfind("step,loss,loss_ce,val_ppl\n1,5,4,\n", 0) == 0);
    {  // resume from step 4: rows 5 and 6 are dropped, then re-written
      MetricsCsv m(csv, {"step", "loss", "loss_ce", "val_ppl"}, true, 4);
      m.row({5, 1.5, 1.0, NAN});
    }
    CsvTable t = read_metrics_csv(csv);
    REQUIRE(t.column("step"));
    CHECK(t.column("step")->size() == 5);
    CHECK(t.column("step")->back() == 5);
    CHECK(std::isnan((*t.column("val_ppl"))[0]));
    CHECK((*t.column("val_ppl"))[2] == doctest::Approx(100.0 / 3));
    CHECK(contains(error_of([&] { MetricsCsv m(csv, {"step", "other"}, true); }), "differs"));

    write_metrics_chart(csv, dir / "chart.svg");
    std::string svg = read_file(dir / "chart.svg");
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(svg.find("</svg>") == svg.size() - 7);
    size_t polylines = 0;
    for (size_t pos = 0; (pos = svg.find("<polyline", pos)) != std::string::npos; ++pos) ++polylines;
    CHECK(polylines == 3);  // loss, loss_ce, val_ppl
    ChartPanel panel{"p", "y", {{"a", {{0, 1}, {1, 2}, {2, NAN}, {3, 4}}}}, false};
    std::string one = render_svg_chart({panel});
    size_t at = one.find("points=\"");
    REQUIRE(at != std::string::npos);
    std::string pts = one.substr(at + 8, one.find('"', at + 8) - at - 8);
    size_t pairs = 1;
    for (char ch : pts) pairs += ch == ' ';
    CHECK(pairs == 3);  // the NaN point is skipped
    CHECK(contains(render_svg_chart({ChartPanel{"empty", "y", {}, true}}), "no data"));

    CHECK(format_duration(5) == "5s");
    CHECK(format_duration(185) == "3m05s");
    CHECK(format_duration(3720) == "1h02m");
    CHECK(ProgressLine::format(5, 100, 2.5, 1234, 65, "") == "step   5/100  loss 2.5000  1234 tok/s  ETA 1m05s");
    std::FILE* f = std::tmpfile();
    REQUIRE(f);
    ProgressLine pl(20, 10, f);
    pl.set_tty(false);
    for (int s = 1; s <= 20; ++s) pl.update(s, 1.0, 100);
    pl.finish();
    std::rewind(f);
    char buf[4096] = {};
    size_t got = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string out(buf, got);
    size_t lines = 0;
    for (char ch : out) lines += ch == '\n';
    CHECK(lines == 3);  // step 1, 10, 20
    CHECK(out.find('\r') == std::string::npos);
  }
}
