// Tests for src/distill: hashes, the teacher store (record math, round trip, damaged files,
// resume, hash checks) and the distillation losses (values against double-precision direct
// formulas, top-K vs full, finite-difference gradients, lambda, mask alignment, AFD).
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "core/checksum.h"
#include "distill/losses.h"
#include "distill/store.h"
#include "store_test_util.h"
#include "test_util.h"
#include "io/json.h"

using namespace razor;
namespace fs = std::filesystem;

namespace {

RawSeq make_raw(const StoreInfo& info, uint64_t seed, int masked_prefix = 0) {
  Rng rng(seed);
  const int64_t T = info.seq_len, L = info.num_layers, C = info.hidden_size, V = info.vocab_size;
  RawSeq r;
  for (int64_t i = 0; i <= T; ++i) r.ids.push_back(int32_t(rng.below(uint64_t(V))));
  for (int64_t i = 0; i <= T; ++i) r.mask.push_back(i < masked_prefix ? 0 : 1);
  r.hidden.assign(size_t(L + 1), std::vector<float>(size_t(T * C)));
  for (int64_t l = 0; l <= L; ++l)
    for (int64_t k = 0; k < T * C; ++k)
      // Correlated taps (a residual stream), so the cosines are not all ~0.
      r.hidden[size_t(l)][size_t(k)] = (l ? r.hidden[size_t(l - 1)][size_t(k)] : 0.0f) + rng.normal();
  for (int64_t k = 0; k < T * V; ++k) r.logits.push_back(2.0f * rng.normal());
  return r;
}

std::string tmp_dir(const char* name) {
  std::string d = "/tmp/razor_test_distill_" + std::to_string(getpid()) + "_" + name;
  fs::remove_all(d);
  return d;
}

void write_store(const std::string& dir, const StoreInfo& info, int n, uint64_t seed0) {
  StoreWriter w(dir, info);
  for (int i = 0; i < n; ++i) {
    RawSeq r = make_raw(info, seed0 + uint64_t(i), i % 3);
    w.add_sequence(r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
  }
  w.finish();
}

double lse_d(const std::vector<double>& a) {
  double m = -INFINITY;
  for (double x : a) m = std::max(m, x);
  if (m == -INFINITY) return m;
  double s = 0;
  for (double x : a) s += std::exp(x - m);
  return m + std::log(s);
}

// Direct double-precision KLs (NUMERICS §7) from the raw teacher logits: per sequence the
// mean over valid positions, then the batch mean. topk: the teacher's (K+1) bins from the
// record (its ids), else all V tokens.
struct DirectKl { double fkl = 0, rkl = 0; };
DirectKl direct_kl(const std::vector<RawSeq>& raw, const std::vector<SequenceView>& views, const Tensor& student,
                   const std::vector<uint8_t>& valid) {
  const int64_t B = int64_t(raw.size()), T = views[0].T, V = views[0].V, K = views[0].K;
  DirectKl out;
  for (int64_t b = 0; b < B; ++b) {
    double f = 0, r = 0;
    int64_t n = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (!valid[size_t(b * T + t)]) continue;
      ++n;
      std::vector<double> zt(static_cast<size_t>(V)), zs(static_cast<size_t>(V));
      for (int64_t v = 0; v < V; ++v) {
        zt[size_t(v)] = raw[size_t(b)].logits[size_t(t * V + v)];
        zs[size_t(v)] = student[(b * T + t) * V + v];
      }
      const double lt = lse_d(zt), ls = lse_d(zs);
      std::vector<double> pt, ps;  // bin probabilities
      if (K == 0) {
        for (int64_t v = 0; v < V; ++v) pt.push_back(std::exp(zt[size_t(v)] - lt)), ps.push_back(std::exp(zs[size_t(v)] - ls));
      } else {
        std::vector<bool> in(static_cast<size_t>(V), false);
        double tt = 0, ts = 0;
        for (int64_t j = 0; j < K; ++j) {
          const int32_t id = views[size_t(b)].topk_ids[t * K + j];
          in[size_t(id)] = true;
          pt.push_back(std::exp(zt[size_t(id)] - lt)), ps.push_back(std::exp(zs[size_t(id)] - ls));
        }
        for (int64_t v = 0; v < V; ++v)
          if (!in[size_t(v)]) tt += std::exp(zt[size_t(v)] - lt), ts += std::exp(zs[size_t(v)] - ls);
        pt.push_back(tt), ps.push_back(ts);
      }
      for (size_t j = 0; j < pt.size(); ++j) {
        if (pt[j] > 0) f += pt[j] * std::log(pt[j] / ps[j]);
        if (ps[j] > 0) r += ps[j] * std::log(ps[j] / pt[j]);
      }
    }
    out.fkl += f / double(std::max<int64_t>(n, 1)) / double(B);
    out.rkl += r / double(std::max<int64_t>(n, 1)) / double(B);
  }
  return out;
}

struct Batch {
  StoreInfo info;
  std::vector<RawSeq> raw;
  std::vector<TeacherRecord> recs;
  std::vector<SequenceView> views;
};

Batch make_batch(const StoreInfo& info, int B, uint64_t seed) {
  Batch bt;
  bt.info = info;
  for (int b = 0; b < B; ++b) {
    bt.raw.push_back(make_raw(info, seed + uint64_t(b), b == 1 ? 2 : 0));
    const RawSeq& r = bt.raw.back();
    bt.recs.push_back(TeacherRecord::make(info, r.ids.data(), r.mask.data(), r.taps(), r.logits.data()));
  }
  for (auto& r : bt.recs) bt.views.push_back(r.view());
  return bt;
}

Tensor random_tensor(const Shape& s, uint64_t seed, float std) {
  Tensor t = Tensor::empty(s);
  Rng rng(seed);
  fill_normal(t, rng, std);
  return t;
}

// Central finite differences of a double-valued loss of x, against x's analytic gradient.
// Tolerance: the losses are computed in double from the f32 inputs, so the FD error is the
// O(h^2) truncation (h = 1e-3 on O(1) curvature: ~1e-7) plus the f32 rounding of the
// analytic gradient (~1e-7 relative); 2e-5 absolute + 1e-4 relative leaves a wide margin
// while a wrong term (a missing factor, sign or bin) is off by > 1e-2.
template <class F>
void check_gradient(Tensor x, const Tensor& analytic, F&& loss) {
  const double h = 1e-3;
  double worst = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float z = x[i];
    x[i] = float(z + h);
    const double zp = x[i], lp = loss();
    x[i] = float(z - h);
    const double zm = x[i], lm = loss();
    x[i] = z;
    const double fd = (lp - lm) / (zp - zm);
    const double err = std::fabs(fd - analytic[i]);
    worst = std::max(worst, err);
    if (err > 2e-5 + 1e-4 * std::fabs(fd)) {
      FAIL_CHECK("gradient element " << i << ": finite difference " << fd << ", analytic " << analytic[i]);
      return;
    }
  }
  (void)worst;
}

double logit_loss_value(const Var& x, const Batch& bt, const DistillConfig& cfg, DistillStats* st = nullptr) {
  NoGradGuard ng;
  DistillStats s;
  logit_distill_loss(x, bt.views, cfg, &s);
  if (st) *st = s;
  return s.logit;
}

Tensor logit_grad(const Tensor& z, const Batch& bt, const DistillConfig& cfg) {
  Var x(z.clone(), true);
  Var l = logit_distill_loss(x, bt.views, cfg);
  backward(l);
  return x.grad().clone();
}

}  // namespace

TEST_SUITE("distill") {
  TEST_CASE("hash: FNV-1a test vectors; streaming hash64 independent of the split") {
    CHECK(fnv1a64("", 0) == 0xcbf29ce484222325ull);
    CHECK(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
    std::vector<uint8_t> data(1000);
    Rng rng(3);
    for (auto& b : data) b = uint8_t(rng.next_u32());
    const uint64_t one = hash64(data.data(), data.size());
    for (size_t split : {size_t(0), size_t(1), size_t(31), size_t(32), size_t(33), size_t(999)}) {
      Hash64 h;
      h.update(data.data(), split);
      h.update(data.data() + split, data.size() - split);
      CHECK(h.digest() == one);
    }
    data[500] ^= 1;
    CHECK(hash64(data.data(), data.size()) != one);
    CHECK(hash64(data.data(), 999) != hash64(data.data(), 1000));
    CHECK(parse_hex64(hex64(one), "x") == one);
    CHECK_THROWS_AS(parse_hex64("12zz", "x"), Error);
  }

  TEST_CASE("store: entropy, top-K, tail mass, target, cosine sums against direct formulas") {
    for (HiddenDtype hd : {HiddenDtype::BF16, HiddenDtype::INT8}) {
      StoreInfo info = test_store_info(5, 3, 8, 11, hd, LogitStorage::TopK, 4);
      RawSeq r = make_raw(info, 7, 2);
      TeacherRecord rec = TeacherRecord::make(info, r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
      SequenceView s = rec.view();
      for (int64_t t = 0; t < 5; ++t) {
        std::vector<double> z(11);
        for (int v = 0; v < 11; ++v) z[size_t(v)] = r.logits[size_t(t * 11 + v)];
        const double lse = lse_d(z);
        double h = 0;
        for (double x : z) h -= std::exp(x - lse) * (x - lse);
        CHECK(s.entropy[t] == doctest::Approx(h).epsilon(1e-6));
        CHECK(s.target_logp[t] == doctest::Approx(z[size_t(r.ids[size_t(t + 1)])] - lse).epsilon(1e-6));
        double top_mass = 0;
        for (int j = 0; j < 4; ++j) {
          const int32_t id = s.topk_ids[t * 4 + j];
          CHECK(s.logp_at(t, j) == doctest::Approx(z[size_t(id)] - lse).epsilon(1e-6));
          top_mass += std::exp(z[size_t(id)] - lse);
          if (j) CHECK(z[size_t(s.topk_ids[t * 4 + j - 1])] >= z[size_t(id)]);
          // Nothing outside the top K is larger.
          for (int v = 0; v < 11; ++v) {
            bool in = false;
            for (int k = 0; k < 4; ++k) in = in || s.topk_ids[t * 4 + k] == v;
            if (!in) CHECK(z[size_t(v)] <= z[size_t(id)]);
          }
        }
        CHECK(std::exp(double(s.tail_logp[t])) == doctest::Approx(1 - top_mass).epsilon(1e-5));
      }
      // Hidden taps: bf16 round-to-nearest, or int8 within half a step of the per-token scale.
      std::vector<float> row(8);
      for (int64_t l = 0; l <= 3; ++l)
        for (int64_t t = 0; t < 5; ++t) {
          s.hidden_row(l, t, row.data());
          for (int c = 0; c < 8; ++c) {
            const float x = r.hidden[size_t(l)][size_t(t * 8 + c)];
            if (hd == HiddenDtype::BF16) CHECK(row[size_t(c)] == bf16_to_f32(f32_to_bf16(x)));
            else CHECK(std::fabs(row[size_t(c)] - x) <= 0.5f * s.hidden_scale[l * 5 + t] * 1.0001f);
          }
        }
      // Cosine sums: razor valid t where mask[t+1] (t = 1..4), reference where mask[t] (t = 2..4).
      CHECK(s.cos_count[0] == 4);
      CHECK(s.cos_count[1] == 3);
      for (int a = 0; a < 2; ++a)
        for (int64_t l = 1; l <= 3; ++l) {
          double sum = 0;
          for (int64_t t = 0; t < 5; ++t) {
            if (!r.mask[size_t(t + 1 - a)]) continue;
            double d = 0, na = 0, nb = 0;
            for (int c = 0; c < 8; ++c) {
              const double x = r.hidden[size_t(l)][size_t(t * 8 + c)], y = r.hidden[size_t(l - 1)][size_t(t * 8 + c)];
              d += x * y, na += x * x, nb += y * y;
            }
            sum += d / std::sqrt(na * nb);
          }
          CHECK(s.cos_sum[a * 3 + l - 1] == doctest::Approx(sum).epsilon(1e-12));
        }
    }
  }

  TEST_CASE("store: round trip over shards for bf16/int8 hidden and top-K/full logits") {
    struct Case { HiddenDtype hd; LogitStorage ls; LogpDtype lp; };
    for (Case c : {Case{HiddenDtype::BF16, LogitStorage::TopK, LogpDtype::F32},
                   Case{HiddenDtype::INT8, LogitStorage::TopK, LogpDtype::F16},
                   Case{HiddenDtype::BF16, LogitStorage::Full, LogpDtype::F16},
                   Case{HiddenDtype::INT8, LogitStorage::Full, LogpDtype::F32}}) {
      StoreInfo info = test_store_info(6, 2, 8, 13, c.hd, c.ls, 5, c.lp, 2);
      const std::string dir = tmp_dir("roundtrip");
      write_store(dir, info, 5, 100);
      CHECK(fs::exists(dir + "/shard-00002.bin"));
      CHECK_FALSE(fs::exists(dir + "/shard-00003.bin"));
      for (StoreVerify vm : {StoreVerify::Eager, StoreVerify::Lazy}) {
        StoreReader rd(dir, vm);
        REQUIRE(rd.num_sequences() == 5);
        CHECK(rd.info().teacher_id == "test-teacher");
        rd.prefetch(0, 5);
        for (int i = 0; i < 5; ++i) {
          RawSeq r = make_raw(info, 100 + uint64_t(i), i % 3);
          TeacherRecord rec = TeacherRecord::make(info, r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
          SequenceView v = rd.sequence(i);
          CHECK(std::memcmp(v.ids, rec.storage.data(), size_t(rec.layout.bytes)) == 0);
          CHECK(v.ids[6] == r.ids[6]);
          CHECK(v.mask[0] == (i % 3 == 0 ? 1 : 0));
        }
        StoreStats st = rd.stats();
        CHECK(st.sequences == 5);
        CHECK(st.tokens == 30);
        CHECK(st.shards == 3);
        CHECK(st.bytes_per_token == doctest::Approx(double(RecordLayout::make(info).bytes) / 6));
        int64_t on_disk = 0;
        for (auto& e : fs::directory_iterator(dir)) on_disk += int64_t(fs::file_size(e.path()));
        CHECK(st.total_bytes == on_disk);
        CHECK_THROWS_AS(rd.sequence(5), Error);
      }
      fs::remove_all(dir);
    }
  }

  TEST_CASE("store: damaged files give clear errors") {
    StoreInfo info = test_store_info(4, 2, 4, 9, HiddenDtype::BF16, LogitStorage::TopK, 3);
    const std::string dir = tmp_dir("damaged");
    auto fresh = [&] {
      fs::remove_all(dir);
      write_store(dir, info, 4, 5);
    };
    const std::string shard = dir + "/shard-00001.bin";
    auto patch = [&](int64_t off, uint8_t x) {
      std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(off);
      char ch;
      f.read(&ch, 1);
      ch = char(uint8_t(ch) ^ x);
      f.seekp(off);
      f.write(&ch, 1);
    };
    fresh();
    fs::resize_file(shard, fs::file_size(shard) - 10);
    check_throws_containing([&] { StoreReader r(dir); }, "truncated");
    fresh();
    fs::resize_file(shard, 60);
    check_throws_containing([&] { StoreReader r(dir); }, "truncated");
    fresh();
    patch(200, 0x40);  // a payload byte
    check_throws_containing([&] { StoreReader r(dir); }, "checksum mismatch");
    {
      StoreReader lazy(dir, StoreVerify::Lazy);  // opens; the bad shard fails on first use
      CHECK(lazy.sequence(0).ids != nullptr);
      check_throws_containing([&] { lazy.sequence(2); }, "checksum mismatch");
    }
    fresh();
    patch(0, 0x01);
    check_throws_containing([&] { StoreReader r(dir); }, "bad magic");
    fresh();
    patch(44, 0x01);  // L in the header
    check_throws_containing([&] { StoreReader r(dir); }, "header checksum");
    fresh();
    {
      Json m = Json::parse(read_file(dir + "/manifest.json"));
      m.set("num_sequences", int64_t(7));
      write_file_atomic(dir + "/manifest.json", m.dump(2));
    }
    check_throws_containing([&] { StoreReader r(dir); }, "num_sequences is 7 but the shards hold 4");
    fresh();
    {
      Json m = Json::parse(read_file(dir + "/manifest.json"));
      m.set("vocab_size", int64_t(-3));
      write_file_atomic(dir + "/manifest.json", m.dump(2));
    }
    check_throws_containing([&] { StoreReader r(dir); }, "vocab_size");
    for (const char* key : {"hidden_dtype", "logits", "logp_dtype"}) {  // named with the manifest's path
      fresh();
      Json m = Json::parse(read_file(dir + "/manifest.json"));
      m.set(key, "fp8");
      write_file_atomic(dir + "/manifest.json", m.dump(2));
      check_throws_containing([&] { StoreReader r(dir); }, std::string("manifest.json: ") + key + ":");
    }
    fresh();
    fs::remove(dir + "/manifest.json");
    check_throws_containing([&] { StoreReader r(dir); }, "no manifest.json");
    fs::remove_all(dir);
    check_throws_containing([&] { StoreReader r(dir + "/nope"); }, "no manifest.json");
  }

  TEST_CASE("store: an interrupted dump resumes after the last complete shard") {
    StoreInfo info = test_store_info(4, 2, 4, 9, HiddenDtype::INT8, LogitStorage::TopK, 3, LogpDtype::F32, 2);
    const std::string ref = tmp_dir("resume_ref"), dir = tmp_dir("resume");
    write_store(ref, info, 7, 40);
    {
      StoreWriter w(dir, info);
      CHECK(w.next_sequence() == 0);
      for (int i = 0; i < 5; ++i) {  // two complete shards + one sequence in a temporary shard
        RawSeq r = make_raw(info, 40 + uint64_t(i), i % 3);
        w.add_sequence(r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
      }
      CHECK(fs::exists(dir + "/shard-00002.bin.tmp"));
    }  // "killed": no finish()
    CHECK_FALSE(fs::exists(dir + "/manifest.json"));
    check_throws_containing([&] { StoreReader r(dir); }, "no manifest.json");
    {
      StoreInfo other = info;
      other.hidden_size = 8;
      check_throws_containing([&] { StoreWriter w(dir, other); }, "differ");
    }
    {
      StoreWriter w(dir, info);
      CHECK(w.next_sequence() == 4);
      CHECK_FALSE(w.complete());
      CHECK_FALSE(fs::exists(dir + "/shard-00002.bin.tmp"));
      for (int64_t i = w.next_sequence(); i < 7; ++i) {
        RawSeq r = make_raw(info, 40 + uint64_t(i), int(i % 3));
        w.add_sequence(r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
      }
      w.finish();
    }
    StoreReader a(ref), b(dir);
    REQUIRE(b.num_sequences() == 7);
    const int64_t bytes = RecordLayout::make(info).bytes;
    for (int i = 0; i < 7; ++i) CHECK(std::memcmp(a.sequence(i).ids, b.sequence(i).ids, size_t(bytes)) == 0);
    {
      StoreWriter w(dir, info);  // finished store: nothing more to do
      CHECK(w.complete());
      CHECK(w.next_sequence() == 7);
      RawSeq r = make_raw(info, 1);
      check_throws_containing([&] { w.add_sequence(r.ids.data(), r.mask.data(), r.taps(), r.logits.data()); },
                              "complete");
    }
    {
      StoreInfo other = info;
      other.teacher_hash ^= 1;
      check_throws_containing([&] { StoreWriter w(dir, other); }, "different settings");
    }
    // A damaged complete shard stops the resume with advice.
    fs::remove(dir + "/manifest.json");
    fs::resize_file(dir + "/shard-00001.bin", 100);
    check_throws_containing([&] { StoreWriter w(dir, info); }, "delete this shard");
    fs::remove_all(ref);
    fs::remove_all(dir);
  }

  TEST_CASE("store: a store from another teacher or tokenizer is refused") {
    StoreInfo info = test_store_info(4, 1, 4, 9, HiddenDtype::BF16, LogitStorage::Full, 0, LogpDtype::F16);
    const std::string dir = tmp_dir("compat");
    write_store(dir, info, 1, 9);
    StoreReader r(dir);
    r.check_compatible(info.teacher_hash, info.tokenizer_hash);
    check_throws_containing([&] { r.check_compatible(info.teacher_hash + 1, info.tokenizer_hash); },
                            "made by teacher 'test-teacher'");
    check_throws_containing([&] { r.check_compatible(info.teacher_hash, info.tokenizer_hash + 1); },
                            "another tokenizer");
    fs::remove_all(dir);
    // Bad writer settings are refused up front.
    StoreInfo bad = info;
    bad.logits = LogitStorage::TopK;
    bad.top_k = 10;
    check_throws_containing([&] { RecordLayout::make(bad); }, "top_k");
  }

  TEST_CASE("losses: hand example V=3, T=2, B=1 (EAKLD, CAKLD, FKL, RKL)") {
    StoreInfo info = test_store_info(2, 1, 2, 3, HiddenDtype::BF16, LogitStorage::Full, 0, LogpDtype::F32);
    Batch bt;
    bt.info = info;
    RawSeq r;
    r.ids = {0, 1, 2};
    r.mask = {1, 1, 1};
    r.hidden = {{1, 0, 0, 1}, {1, 1, 1, -1}};
    r.logits = {1, 2, 0, 0, 0, 3};
    bt.raw.push_back(r);
    bt.recs.push_back(TeacherRecord::make(info, r.ids.data(), r.mask.data(), r.taps(), r.logits.data()));
    bt.views.push_back(bt.recs[0].view());
    Var x(Tensor::from({2, 3}, {0.5f, 0.5f, 0.0f, 1.0f, 0.0f, 2.0f}), false);
    // By hand: pT(0) = softmax(1,2,0), pT(1) = softmax(0,0,3); pS likewise.
    auto sm = [](double a, double b, double c, int i) {
      const double m = std::max(a, std::max(b, c)), s = std::exp(a - m) + std::exp(b - m) + std::exp(c - m);
      const double v[3] = {a, b, c};
      return std::exp(v[i] - m) / s;
    };
    double fkl = 0, rkl = 0, H = 0, lam_tok = 0, conf = 0;
    const double zt[2][3] = {{1, 2, 0}, {0, 0, 3}}, zs[2][3] = {{0.5, 0.5, 0}, {1, 0, 2}};
    for (int t = 0; t < 2; ++t) {
      double h = 0;
      for (int v = 0; v < 3; ++v) {
        const double pt = sm(zt[t][0], zt[t][1], zt[t][2], v), ps = sm(zs[t][0], zs[t][1], zs[t][2], v);
        fkl += pt * std::log(pt / ps) / 2;
        rkl += ps * std::log(ps / pt) / 2;
        h -= pt * std::log(pt);
      }
      H += h / 2;
      lam_tok += std::min(h, std::log(16.0)) / std::log(16.0) / 2;
      conf += sm(zt[t][0], zt[t][1], zt[t][2], r.ids[size_t(t + 1)]) / 2;
    }
    DistillConfig cfg;
    DistillStats st;
    CHECK(logit_loss_value(x, bt, cfg, &st) == doctest::Approx(lam_tok * fkl + (1 - lam_tok) * rkl).epsilon(1e-6));
    CHECK(st.fkl == doctest::Approx(fkl).epsilon(1e-6));
    CHECK(st.rkl == doctest::Approx(rkl).epsilon(1e-6));
    CHECK(st.lambda == doctest::Approx(lam_tok).epsilon(1e-6));
    CHECK(st.valid == 2);
    cfg.eakld_clip = EakldClip::Batch;
    CHECK(logit_loss_value(x, bt, cfg, &st) ==
          doctest::Approx(std::min(1.0, H / std::log(16.0)) * fkl + (1 - std::min(1.0, H / std::log(16.0))) * rkl).epsilon(1e-6));
    cfg.logit_loss = LogitLoss::Cakld;
    CHECK(logit_loss_value(x, bt, cfg, &st) == doctest::Approx((1 - conf) * fkl + conf * rkl).epsilon(1e-6));
    CHECK(st.lambda == doctest::Approx(conf).epsilon(1e-6));
    cfg.logit_loss = LogitLoss::Forward;
    CHECK(logit_loss_value(x, bt, cfg) == doctest::Approx(fkl).epsilon(1e-6));
    cfg.logit_loss = LogitLoss::Reverse;
    CHECK(logit_loss_value(x, bt, cfg) == doctest::Approx(rkl).epsilon(1e-6));
    // Identical distributions: both KLs are 0.
    Var same(Tensor::from({2, 3}, {1, 2, 0, 0, 0, 3}), false);
    CHECK(std::fabs(logit_loss_value(same, bt, cfg)) < 1e-7);
  }

  TEST_CASE("losses: KLs and lambdas against direct formulas on a masked batch; K = V equals full") {
    const int64_t T = 3, V = 7;
    Batch topk = make_batch(test_store_info(T, 2, 4, V, HiddenDtype::BF16, LogitStorage::TopK, 3), 2, 50);
    Batch topv = make_batch(test_store_info(T, 2, 4, V, HiddenDtype::BF16, LogitStorage::TopK, V), 2, 50);
    Batch full = make_batch(test_store_info(T, 2, 4, V, HiddenDtype::BF16, LogitStorage::Full, 0), 2, 50);
    Var x(random_tensor({2 * T, V}, 9, 1.5f), false);
    DistillConfig cfg;
    const std::vector<uint8_t> valid = valid_positions(topk.views, MaskAlign::Razor);
    CHECK(valid == std::vector<uint8_t>{1, 1, 1, 0, 1, 1});
    for (Batch* bt : {&topk, &topv, &full}) {
      DistillStats st;
      logit_loss_value(x, *bt, cfg, &st);
      DirectKl d = direct_kl(bt->raw, bt->views, x.value(), valid);
      CHECK(st.fkl == doctest::Approx(d.fkl).epsilon(1e-5));
      CHECK(st.rkl == doctest::Approx(d.rkl).epsilon(1e-5));
      CHECK(st.fkl > 0);
    }
    DistillStats a, b;
    logit_loss_value(x, topk, cfg, &a);
    logit_loss_value(x, full, cfg, &b);
    CHECK(a.fkl < b.fkl);  // the (K+1)-bin KL is a lower bound
    for (LogitLoss k : {LogitLoss::Eakld, LogitLoss::Cakld, LogitLoss::Forward, LogitLoss::Reverse}) {
      cfg.logit_loss = k;
      logit_loss_value(x, topv, cfg, &a);
      logit_loss_value(x, full, cfg, &b);
      CHECK(a.logit == doctest::Approx(b.logit).epsilon(1e-6));
      Tensor ga = logit_grad(x.value(), topv, cfg), gb = logit_grad(x.value(), full, cfg);
      for (int64_t i = 0; i < ga.numel(); ++i) CHECK(ga[i] == doctest::Approx(gb[i]).epsilon(1e-5).scale(1e-6));
    }
    // Lambdas from the entropies / target probabilities of the raw teacher logits.
    double tok = 0, conf = 0, batch = 0;
    int n = 0;
    const double lnk = std::log(16.0);
    for (int bi = 0; bi < 2; ++bi) {
      double hs = 0;
      int nb = 0;
      for (int t = 0; t < T; ++t) {
        if (!valid[size_t(bi * T + t)]) continue;
        std::vector<double> z(static_cast<size_t>(V));
        for (int v = 0; v < V; ++v) z[size_t(v)] = topk.raw[size_t(bi)].logits[size_t(t * V + v)];
        const double l = lse_d(z);
        double h = 0;
        for (double q : z) h -= std::exp(q - l) * (q - l);
        tok += std::min(h, lnk) / lnk, hs += h, ++nb, ++n;
        conf += std::exp(z[size_t(topk.raw[size_t(bi)].ids[size_t(t + 1)])] - l);
      }
      batch += hs / nb / 2;
    }
    cfg.logit_loss = LogitLoss::Eakld;
    logit_loss_value(x, topk, cfg, &a);
    CHECK(a.lambda == doctest::Approx(tok / n).epsilon(1e-6));
    cfg.eakld_clip = EakldClip::Batch;
    logit_loss_value(x, topk, cfg, &a);
    CHECK(a.lambda == doctest::Approx(std::min(1.0, batch / lnk)).epsilon(1e-6));
    cfg.logit_loss = LogitLoss::Cakld;
    logit_loss_value(x, topk, cfg, &a);
    CHECK(a.lambda == doctest::Approx(conf / n).epsilon(1e-6));
  }

  TEST_CASE("losses: gradients of FKL, RKL, EAKLD, CAKLD by finite differences (top-K and full)") {
    const int64_t T = 3, V = 7;
    for (LogitStorage ls : {LogitStorage::TopK, LogitStorage::Full}) {
      Batch bt = make_batch(test_store_info(T, 2, 4, V, HiddenDtype::BF16, ls, 3), 2, 70);
      for (LogitLoss k : {LogitLoss::Forward, LogitLoss::Reverse, LogitLoss::Eakld, LogitLoss::Cakld}) {
        CAPTURE(int(k));
        CAPTURE(int(ls));
        DistillConfig cfg;
        cfg.logit_loss = k;
        Var x(random_tensor({2 * T, V}, 11, 1.5f), false);
        Tensor g = logit_grad(x.value(), bt, cfg);
        // Masked positions get no gradient.
        for (int64_t v = 0; v < V; ++v) CHECK(g[3 * V + v] == 0.0f);
        check_gradient(x.value(), g, [&] { return logit_loss_value(x, bt, cfg); });
      }
    }
  }

  TEST_CASE("head_losses: the chunked head equals linear + cross_entropy + logit_distill_loss") {
    // Large enough for the parallel paths (N*V >= 32768). One chunk: the same bits as the
    // materialised path, values and both gradients; several chunks (uneven): the same values
    // and gradients up to the weight gradient's fp32 summation over chunks.
    const int64_t T = 16, B = 2, N = B * T, C = 24, V = 1100;
    for (LogitStorage ls : {LogitStorage::TopK, LogitStorage::Full}) {
      CAPTURE(int(ls));
      Batch bt = make_batch(test_store_info(T, 2, 4, V, HiddenDtype::BF16, ls, 16), int(B), 400);
      const Tensor x0 = random_tensor({N, C}, 41, 1.0f), w0 = random_tensor({V, C}, 42, 0.3f);
      const std::vector<int32_t> y = ce_targets(bt.views);
      REQUIRE(std::count(y.begin(), y.end(), -1) >= 1);
      DistillConfig cfg;
      Var xr(x0.clone(), true), wr(w0.clone(), true);
      DistillStats sr;
      Var z = linear(xr, wr);
      Var ce_r = cross_entropy(z, y), l_r = logit_distill_loss(z, bt.views, cfg, &sr);
      Var tot_r = add(scale(ce_r, 0.7f), scale(l_r, 1.3f));
      backward(tot_r);
      for (int64_t R : {N, int64_t(5)}) {
        CAPTURE(R);
        Var x(x0.clone(), true), w(w0.clone(), true);
        DistillStats st;
        HeadLosses h = head_losses(x, w, y, &bt.views, cfg, &st, R);
        Var tot = add(scale(h.ce, 0.7f), scale(h.logit, 1.3f));
        backward(tot);
        if (R == N) {
          CHECK(h.ce.item() == ce_r.item());
          CHECK(h.logit.item() == l_r.item());
          CHECK(st.fkl == sr.fkl);
          CHECK(st.rkl == sr.rkl);
          CHECK(std::memcmp(x.grad().data(), xr.grad().data(), size_t(N * C) * sizeof(float)) == 0);
          CHECK(std::memcmp(w.grad().data(), wr.grad().data(), size_t(V * C) * sizeof(float)) == 0);
        } else {
          CHECK(h.ce.item() == doctest::Approx(ce_r.item()).epsilon(1e-6));
          CHECK(h.logit.item() == doctest::Approx(l_r.item()).epsilon(1e-6));
          for (int64_t i = 0; i < N * C; ++i) CHECK(x.grad()[i] == doctest::Approx(xr.grad()[i]).epsilon(1e-5).scale(1e-6));
          double worst = 0;
          for (int64_t i = 0; i < V * C; ++i) worst = std::max(worst, double(std::fabs(w.grad()[i] - wr.grad()[i])));
          CHECK(worst < 1e-6);
        }
      }
      // Without a teacher: CE only, the same bits as cross_entropy.
      Var x(x0.clone(), true), w(w0.clone(), true);
      HeadLosses h = head_losses(x, w, y, nullptr, cfg, nullptr, N);
      CHECK(!h.logit.defined());
      CHECK(h.ce.item() == ce_r.item());
    }
  }

  TEST_CASE("head_losses: gradients of x and w by finite differences, several chunks") {
    const int64_t T = 3, V = 7, C = 3;
    Batch bt = make_batch(test_store_info(T, 2, 4, V, HiddenDtype::BF16, LogitStorage::TopK, 3), 2, 410);
    Var x(random_tensor({2 * T, C}, 43, 1.0f), true), w(random_tensor({V, C}, 44, 1.0f), true);
    const std::vector<int32_t> y = ce_targets(bt.views);
    DistillConfig cfg;
    HeadLosses h = head_losses(x, w, y, &bt.views, cfg, nullptr, 2);
    backward(h.logit);  // the double-valued loss, so finite differences are precise
    const Tensor gx = x.grad().clone(), gw = w.grad().clone();
    auto value = [&] {
      NoGradGuard ng;
      DistillStats st;
      head_losses(x, w, y, &bt.views, cfg, &st, 2);
      return st.logit;
    };
    check_gradient(x.value(), gx, value);
    check_gradient(w.value(), gw, value);
    CHECK_THROWS_AS(head_losses(x, w, std::vector<int32_t>(5, 0), &bt.views, cfg, nullptr, 2), Error);
    CHECK_THROWS_AS(head_losses(x, w, std::vector<int32_t>(6, int32_t(V)), nullptr, cfg, nullptr, 2), Error);
  }

  TEST_CASE("losses: lambda carries no gradient") {
    Batch bt = make_batch(test_store_info(3, 2, 4, 7, HiddenDtype::BF16, LogitStorage::TopK, 3), 2, 80);
    Var x(random_tensor({6, 7}, 12, 1.0f), false);
    DistillConfig cfg;
    DistillStats st, st2;
    logit_loss_value(x, bt, cfg, &st);
    Var y(random_tensor({6, 7}, 13, 3.0f), false);
    logit_loss_value(y, bt, cfg, &st2);
    CHECK(st.lambda == st2.lambda);  // depends on the teacher only
    CHECK(st.lambda > 0.05);
    CHECK(st.lambda < 0.95);
    Tensor ge = logit_grad(x.value(), bt, cfg);
    cfg.logit_loss = LogitLoss::Forward;
    Tensor gf = logit_grad(x.value(), bt, cfg);
    cfg.logit_loss = LogitLoss::Reverse;
    Tensor gr = logit_grad(x.value(), bt, cfg);
    for (int64_t i = 0; i < ge.numel(); ++i)
      CHECK(ge[i] == doctest::Approx(st.lambda * gf[i] + (1 - st.lambda) * gr[i]).epsilon(1e-5).scale(1e-7));
  }

  TEST_CASE("losses: EAKLD entropy clip min(H, ln k)/ln k on a vocabulary larger than k (clip active and inactive)") {
    // V = 64 > k = 16, so a flat teacher distribution has H near ln 64 > ln 16 and the clip
    // takes effect; a peaked one has H < ln 16 and it does not. lambda is recomputed here in
    // double from the raw teacher logits, independently of the store's entropy field.
    const int64_t T = 4, V = 64, B = 2;
    const StoreInfo info = test_store_info(T, 2, 4, V, HiddenDtype::BF16, LogitStorage::TopK, 16);
    auto build = [&](bool flat_positions) {
      Batch bt;
      bt.info = info;
      for (int64_t b = 0; b < B; ++b) {
        RawSeq r = make_raw(info, 200 + uint64_t(b), b == 1 ? 2 : 0);
        Rng rng(300 + uint64_t(b));
        for (int64_t t = 0; t < T; ++t) {
          // Even positions flat (logit std 0.1) when asked, the others peaked (std 4).
          const float sd = (flat_positions && t % 2 == 0) ? 0.1f : 4.0f;
          for (int64_t v = 0; v < V; ++v) r.logits[size_t(t * V + v)] = sd * rng.normal();
        }
        bt.raw.push_back(r);
      }
      for (const RawSeq& r : bt.raw) bt.recs.push_back(TeacherRecord::make(info, r.ids.data(), r.mask.data(), r.taps(), r.logits.data()));
      for (auto& r : bt.recs) bt.views.push_back(r.view());
      return bt;
    };
    const double lnk = std::log(16.0);
    for (bool flat : {true, false}) {
      CAPTURE(flat);
      Batch bt = build(flat);
      const std::vector<uint8_t> valid = valid_positions(bt.views, MaskAlign::Razor);
      double clipped = 0, unclipped = 0, hmax = 0;
      int n = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          if (!valid[size_t(b * T + t)]) continue;
          std::vector<double> z(bt.raw[size_t(b)].logits.begin() + t * V, bt.raw[size_t(b)].logits.begin() + (t + 1) * V);
          const double l = lse_d(z);
          double h = 0;
          for (double q : z) h -= std::exp(q - l) * (q - l);
          clipped += std::min(h, lnk) / lnk, unclipped += h / lnk, hmax = std::max(hmax, h), ++n;
        }
      REQUIRE(n >= 4);
      clipped /= n, unclipped /= n;
      if (flat) {
        CHECK(hmax > lnk + 1.0);                 // some positions are far above ln k ...
        CHECK(unclipped - clipped > 0.15);       // ... so a lambda without the clip differs
      } else {
        CHECK(hmax < lnk);                       // every position below ln k: clip inactive
        CHECK(clipped == doctest::Approx(unclipped).epsilon(1e-12));
      }
      DistillConfig cfg;  // EAKLD, clip per token, k = 16
      REQUIRE(cfg.entropy_k == 16);
      Var x(random_tensor({B * T, V}, 17, 1.0f), false);
      DistillStats st;
      logit_loss_value(x, bt, cfg, &st);
      CHECK(st.lambda == doctest::Approx(clipped).epsilon(1e-6));
      CHECK(st.logit == doctest::Approx(st.lambda * st.fkl + (1 - st.lambda) * st.rkl).epsilon(1e-6));
      const DirectKl d = direct_kl(bt.raw, bt.views, x.value(), valid);
      CHECK(st.logit == doctest::Approx(clipped * d.fkl + (1 - clipped) * d.rkl).epsilon(1e-5));
    }
  }

  TEST_CASE("losses: the two mask alignments differ by exactly one position") {
    const uint8_t mask[5] = {0, 0, 1, 1, 1};  // a 2-token prompt, T = 4
    std::vector<uint8_t> razor = valid_positions(mask, 1, 4, MaskAlign::Razor);
    std::vector<uint8_t> ref = valid_positions(mask, 1, 4, MaskAlign::Reference);
    CHECK(razor == std::vector<uint8_t>{0, 1, 1, 1});
    CHECK(ref == std::vector<uint8_t>{0, 0, 1, 1});
    Batch bt = make_batch(test_store_info(4, 2, 4, 7, HiddenDtype::BF16, LogitStorage::TopK, 3), 2, 90);
    std::vector<uint8_t> a = valid_positions(bt.views, MaskAlign::Razor), b = valid_positions(bt.views, MaskAlign::Reference);
    int diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff += a[i] != b[i];
    CHECK(diff == 1);  // sequence 1 has a 2-token masked prefix; sequence 0 none
    CHECK(bt.views[1].cos_count[0] == bt.views[1].cos_count[1] + 1);
    std::vector<int32_t> y = ce_targets(bt.views);
    CHECK(y[4] == -1);
    CHECK(y[5] == bt.raw[1].ids[2]);
    DistillConfig cfg;
    Var x(random_tensor({8, 7}, 14, 1.0f), false);
    DistillStats s1, s2;
    logit_loss_value(x, bt, cfg, &s1);
    cfg.mask_align = MaskAlign::Reference;
    logit_loss_value(x, bt, cfg, &s2);
    CHECK(s1.valid == s2.valid + 1);
    CHECK(s1.fkl != s2.fkl);
  }

  TEST_CASE("AFD: layer selection (lowest c_l, ties to the lower index), fixed and list modes") {
    const double sums[2][5] = {{0.5, 0.2, 0.5, 0.2, 0.9}, {0.1, 0.9, 0.9, 0.9, 0.9}};
    const int64_t counts[2] = {1, 1};
    SequenceView v;
    v.T = 1, v.L = 5, v.C = 1, v.V = 2;
    v.cos_sum = &sums[0][0];
    v.cos_count = counts;
    std::vector<SequenceView> batch = {v, v};
    DistillConfig cfg;
    CHECK(afd_select_layers(batch, cfg) == std::vector<int>{1, 2, 4});
    cfg.afd_k = 1;
    CHECK(afd_select_layers(batch, cfg) == std::vector<int>{2});
    cfg.afd_k = 9;  // more than L: all layers
    CHECK(afd_select_layers(batch, cfg) == std::vector<int>{1, 2, 3, 4, 5});
    cfg.afd_k = 3;
    cfg.mask_align = MaskAlign::Reference;  // the second row of sums
    CHECK(afd_select_layers(batch, cfg) == std::vector<int>{1, 2, 3});
    CHECK(afd_layer_cosines(batch, MaskAlign::Razor)[1] == doctest::Approx(0.2));
    parse_afd("fixed", cfg);
    CHECK(afd_select_layers(batch, cfg) == std::vector<int>{1, 3, 5});
    parse_afd("0,4,4", cfg);
    CHECK(afd_select_layers(batch, cfg) == std::vector<int>{0, 4});
    parse_afd("6", cfg);
    check_throws_containing([&] { afd_select_layers(batch, cfg); }, "outside the feature taps");
    check_throws_containing([&] { parse_afd("1,x", cfg); }, "--feature");
    check_throws_containing([&] { parse_logit_loss("kl"); }, "--loss-logit");
  }

  TEST_CASE("AFD: value against the direct formula and finite-difference gradients (bf16 and int8 teacher)") {
    const int64_t B = 2, T = 3, C = 4, L = 4;
    for (HiddenDtype hd : {HiddenDtype::BF16, HiddenDtype::INT8}) {
      Batch bt = make_batch(test_store_info(T, L, C, 5, hd, LogitStorage::TopK, 2), int(B), 110);
      std::vector<Var> feats;
      for (int64_t l = 0; l <= L; ++l) feats.emplace_back(random_tensor({B, T, C}, 200 + uint64_t(l), 2.0f), true);
      DistillConfig cfg;
      DistillStats st;
      Var loss = afd_loss(feats, bt.views, cfg, &st);
      REQUIRE(st.layers.size() == 3);
      // The selection is the 3 lowest c_l.
      std::vector<double> c = afd_layer_cosines(bt.views, MaskAlign::Razor);
      for (int l = 1; l <= L; ++l) {
        bool chosen = std::find(st.layers.begin(), st.layers.end(), l) != st.layers.end();
        int lower = 0;
        for (int m = 1; m <= L; ++m) lower += c[size_t(m - 1)] < c[size_t(l - 1)] || (c[size_t(m - 1)] == c[size_t(l - 1)] && m < l);
        CHECK(chosen == (lower < 3));
      }
      const std::vector<uint8_t> valid = valid_positions(bt.views, MaskAlign::Razor);
      double direct = 0;
      std::vector<float> row(static_cast<size_t>(C));
      for (int l : st.layers) {
        double mse = 0;
        for (int64_t b = 0; b < B; ++b) {
          double s = 0;
          int64_t n = 0;
          for (int64_t t = 0; t < T; ++t) {
            if (!valid[size_t(b * T + t)]) continue;
            ++n;
            bt.views[size_t(b)].hidden_row(l, t, row.data());
            for (int64_t k = 0; k < C; ++k) {
              const double d = double(feats[size_t(l)].value()[(b * T + t) * C + k]) - row[size_t(k)];
              s += d * d;
            }
          }
          mse += s / double(std::max<int64_t>(n, 1) * C) / double(B);
        }
        direct += mse / 3;
      }
      CHECK(st.feature == doctest::Approx(direct).epsilon(1e-9));
      CHECK(loss.item() == doctest::Approx(direct).epsilon(1e-6));
      backward(loss);
      for (int64_t l = 0; l <= L; ++l) {
        const bool chosen = std::find(st.layers.begin(), st.layers.end(), int(l)) != st.layers.end();
        if (!chosen) {
          CHECK_FALSE(feats[size_t(l)].has_grad());
          continue;
        }
        check_gradient(feats[size_t(l)].value(), feats[size_t(l)].grad(), [&] {
          NoGradGuard ng;
          DistillStats s;
          afd_loss(feats, bt.views, cfg, &s);
          return s.feature;
        });
      }
      // Fixed-layer ablation: 1, floor((L+1)/2), L.
      cfg.afd_mode = AfdMode::Fixed;
      afd_loss(feats, bt.views, cfg, &st);
      CHECK(st.layers == std::vector<int>{1, 2, 4});
      tape().clear();
    }
  }

  TEST_CASE("distill_losses: both losses and every logged component in one call") {
    const int64_t B = 2, T = 3, C = 4, L = 2, V = 7;
    Batch bt = make_batch(test_store_info(T, L, C, V, HiddenDtype::BF16, LogitStorage::TopK, 3), int(B), 130);
    std::vector<Var> feats;
    for (int64_t l = 0; l <= L; ++l) feats.emplace_back(random_tensor({B, T, C}, 300 + uint64_t(l), 1.0f), true);
    Var logits(random_tensor({B * T, V}, 310, 1.0f), true);
    DistillOutput o = distill_losses(feats, logits, bt.views, DistillConfig());
    CHECK(o.stats.layers == std::vector<int>{1, 2});  // k = 3 > L = 2: every layer
    CHECK(o.stats.layer_cos.size() == 2);
    CHECK(o.stats.feature == doctest::Approx(o.feature.item()).epsilon(1e-6));
    CHECK(o.stats.logit == doctest::Approx(o.logit.item()).epsilon(1e-6));
    CHECK(o.stats.valid == 5);
    CHECK(tape().size() == 2);
    tape().clear();
  }
}
