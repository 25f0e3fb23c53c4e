// Tests for src/distill: hashes, the teacher store (record math, round trip, damaged files,
// resume, hash checks) and the distillation losses (values against double-precision direct
// formulas, top-K vs full, finite-difference gradients, lambda, mask alignment, AFD).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "distill/hash.h"
#include "distill/losses.h"
#include "distill/store.h"
#include "io/json.h"

using namespace razor;
namespace fs = std::filesystem;

namespace {

// Raw teacher outputs for one sequence.
struct RawSeq {
  std::vector<int32_t> ids;               // [T+1]
  std::vector<uint8_t> mask;              // [T+1]
  std::vector<std::vector<float>> hidden;  // L+1 x [T, C]
  std::vector<float> logits;              // [T, V]
  std::vector<const float*> taps() const {
    std::vector<const float*> p;
    for (const auto& h : hidden) p.push_back(h.data());
    return p;
  }
};

StoreInfo make_info(int64_t T, int64_t L, int64_t C, int64_t V, HiddenDtype hd, LogitStorage ls, int64_t K,
                    LogpDtype lp = LogpDtype::F32, int64_t S = 2) {
  StoreInfo i;
  i.teacher_id = "test-teacher";
  i.teacher_hash = 0x1111222233334444ull;
  i.tokenizer_hash = 0x5555666677778888ull;
  i.seq_len = T, i.num_layers = L, i.hidden_size = C, i.vocab_size = V;
  i.hidden_dtype = hd, i.logits = ls, i.top_k = K, i.logp_dtype = lp, i.shard_sequences = S;
  return i;
}

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

// Runs f and checks it throws razor::Error whose message contains `part`.
template <class F>
void check_throws_containing(F&& f, const std::string& part) {
  bool threw = false;
  try {
    f();
  } catch (const Error& e) {
    threw = true;
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(part) != std::string::npos);
  }
  CHECK_MESSAGE(threw, "expected an error containing '" << part << "'");
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
    CHECK(parse_hash_hex(hash_hex(one), "x") == one);
    CHECK_THROWS_AS(parse_hash_hex("12zz", "x"), Error);
  }

  TEST_CASE("store: entropy, top-K, tail mass, target, cosine sums against direct formulas") {
    for (HiddenDtype hd : {HiddenDtype::BF16, HiddenDtype::INT8}) {
      StoreInfo info = make_info(5, 3, 8, 11, hd, LogitStorage::TopK, 4);
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
      StoreInfo info = make_info(6, 2, 8, 13, c.hd, c.ls, 5, c.lp, 2);
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
    StoreInfo info = make_info(4, 2, 4, 9, HiddenDtype::BF16, LogitStorage::TopK, 3);
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
    fresh();
    fs::remove(dir + "/manifest.json");
    check_throws_containing([&] { StoreReader r(dir); }, "no manifest.json");
    fs::remove_all(dir);
    check_throws_containing([&] { StoreReader r(dir + "/nope"); }, "no manifest.json");
  }

  TEST_CASE("store: an interrupted dump resumes after the last complete shard") {
    StoreInfo info = make_info(4, 2, 4, 9, HiddenDtype::INT8, LogitStorage::TopK, 3, LogpDtype::F32, 2);
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
    StoreInfo info = make_info(4, 1, 4, 9, HiddenDtype::BF16, LogitStorage::Full, 0, LogpDtype::F16);
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
}
