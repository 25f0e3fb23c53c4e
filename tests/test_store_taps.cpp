// Tests for the compact teacher store (distill/store.h, issue 22 item 1): the one-pass logit
// statistics against the multi-pass double-precision computation they replaced, selected-tap
// stores (round trip, tap ids = AFD's per-sequence selection of a store of every tap, the
// version 2 format and its damaged-file errors), AFD on a selected-tap store (B = 1 bit for
// bit equal to the store of every tap, B > 1 the per-sequence formula, finite-difference
// gradients), the options a selected-tap store refuses, and the bytes-per-token formula.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/checksum.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "distill/losses.h"
#include "distill/store.h"
#include "store_test_util.h"
#include "test_util.h"
#include "io/json.h"

using namespace razor;
namespace fs = std::filesystem;

namespace {

StoreInfo info_of(int64_t T, int64_t L, int64_t C, int64_t V, HiddenDtype hd, int64_t K, int64_t selected,
                  LogitStorage ls = LogitStorage::TopK, LogpDtype lp = LogpDtype::F32) {
  StoreInfo i = test_store_info(T, L, C, V, hd, ls, K, lp);
  i.selected_taps = selected;
  return i;
}

// Taps of a residual stream whose per-layer update size varies with the seed, so that the
// lowest-cosine layers differ from sequence to sequence. `masked`: mask[i] = 0 for i < masked.
RawSeq make_raw(const StoreInfo& info, uint64_t seed, int masked) {
  Rng rng(seed);
  const int64_t T = info.seq_len, L = info.num_layers, C = info.hidden_size, V = info.vocab_size;
  RawSeq r;
  for (int64_t i = 0; i <= T; ++i) r.ids.push_back(int32_t(rng.below(uint64_t(V))));
  for (int64_t i = 0; i <= T; ++i) r.mask.push_back(i < masked ? 0 : 1);
  r.hidden.assign(size_t(L + 1), std::vector<float>(size_t(T * C)));
  for (int64_t l = 0; l <= L; ++l) {
    const float step = 0.3f + 2.0f * rng.uniform();
    for (int64_t k = 0; k < T * C; ++k)
      r.hidden[size_t(l)][size_t(k)] = (l ? r.hidden[size_t(l - 1)][size_t(k)] : 0.0f) + step * rng.normal();
  }
  for (int64_t k = 0; k < T * V; ++k) r.logits.push_back(2.0f * rng.normal());
  return r;
}

std::string tmp_dir(const char* name) {
  std::string d = "/tmp/razor_test_taps_" + std::to_string(getpid()) + "_" + name;
  fs::remove_all(d);
  return d;
}

// The multi-pass computation encode_record used before the one-pass rewrite, kept verbatim
// as the reference: max, sum of exp, entropy from the log-probs, partial_sort top-K (ties to
// the lower id), tail by a sum over the non-top tokens.
struct MultiPass {
  double entropy = 0, target = 0, tail_logp = 0;
  std::vector<int32_t> top;
  std::vector<double> logp;  // top-K log-probs (K > 0) or all V
};
MultiPass multi_pass(const float* z, int64_t V, int64_t K, int32_t target_id) {
  MultiPass r;
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(z[v]));
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(double(z[v]) - mx);
  const double lse = mx + std::log(s);
  double h = 0;
  for (int64_t v = 0; v < V; ++v) {
    const double lp = double(z[v]) - lse;
    h -= std::exp(lp) * lp;
  }
  r.entropy = h;
  r.target = double(z[target_id]) - lse;
  if (K == 0) {
    for (int64_t v = 0; v < V; ++v) r.logp.push_back(double(z[v]) - lse);
    return r;
  }
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + K, order.end(),
                    [z](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
  std::vector<uint8_t> in(static_cast<size_t>(V), 0);
  for (int64_t j = 0; j < K; ++j) {
    r.top.push_back(order[size_t(j)]);
    in[size_t(order[size_t(j)])] = 1;
    r.logp.push_back(double(z[order[size_t(j)]]) - lse);
  }
  double tail = 0;
  for (int64_t v = 0; v < V; ++v)
    if (!in[size_t(v)]) tail += std::exp(double(z[v]) - mx);
  r.tail_logp = tail > 0 ? mx + std::log(tail) - lse : -std::numeric_limits<double>::infinity();
  return r;
}

// `got` is `want` rounded to float, or one of its float neighbours: the one-pass sums differ
// from the multi-pass ones only in double rounding (~1e-16 relative), which can move a value
// across a float rounding boundary, never further.
bool within_one_float_step(float got, double want) {
  const float w = float(want);
  if (std::isinf(w) || std::isinf(got)) return got == w;
  return got == w || got == std::nextafter(w, INFINITY) || got == std::nextafter(w, -INFINITY);
}

}  // namespace

TEST_SUITE("distill") {
  TEST_CASE("store: one pass over the vocabulary equals the multi-pass computation; threads do not change bytes") {
    const int64_t T = 40, V = 1000;
    struct Case {
      const char* name;
      int64_t K;
      LogitStorage ls;
    };
    for (Case cs : {Case{"K=64", 64, LogitStorage::TopK}, Case{"K=1", 1, LogitStorage::TopK},
                    Case{"K=V", V, LogitStorage::TopK}, Case{"full", 0, LogitStorage::Full}}) {
      INFO(cs.name);
      StoreInfo info = info_of(T, 2, 4, V, HiddenDtype::BF16, cs.K ? cs.K : 64, 0, cs.ls);
      RawSeq r = make_raw(info, 5, 3);
      Rng rng(77);
      // Position families: random (t % 5 == 0), ascending (the running max moves at every
      // entry), descending, all equal (ties: the K lowest ids), few distinct values (many
      // ties across the top-K boundary), a huge spread (tail underflow).
      for (int64_t t = 0; t < T; ++t) {
        float* z = &r.logits[size_t(t * V)];
        for (int64_t v = 0; v < V; ++v) switch (t % 6) {
            case 0: break;
            case 1: z[v] = -5.0f + 0.01f * float(v); break;
            case 2: z[v] = 5.0f - 0.01f * float(v); break;
            case 3: z[v] = 1.5f; break;
            case 4: z[v] = float(int(rng.below(4))); break;
            case 5: z[v] = v % 97 == 0 ? 300.0f + float(v) : -300.0f * rng.uniform(); break;
          }
      }
      set_num_threads(1);
      TeacherRecord one = TeacherRecord::make(info, r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
      set_num_threads(3);  // T * V >= 2^15: the threaded loop, an uneven split
      TeacherRecord three = TeacherRecord::make(info, r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
      set_num_threads(2);
      CHECK(std::memcmp(one.storage.data(), three.storage.data(), size_t(one.layout.bytes)) == 0);
      const SequenceView s = one.view();
      const int64_t K = s.K;
      int64_t exact = 0, values = 0;
      for (int64_t t = 0; t < T; ++t) {
        INFO("t = " << t);
        const MultiPass ref = multi_pass(&r.logits[size_t(t * V)], V, K, r.ids[size_t(t + 1)]);
        CHECK(within_one_float_step(s.entropy[t], ref.entropy));
        CHECK(within_one_float_step(s.target_logp[t], ref.target));
        exact += (s.entropy[t] == float(ref.entropy)) + (s.target_logp[t] == float(ref.target));
        values += 2;
        for (int64_t j = 0; j < s.bins(); ++j) {
          if (K > 0) REQUIRE(s.topk_ids[t * K + j] == ref.top[size_t(j)]);
          CHECK(within_one_float_step(s.logp_at(t, j), ref.logp[size_t(j)]));
          exact += s.logp_at(t, j) == float(ref.logp[size_t(j)]);
          ++values;
        }
        if (K > 0) {
          CHECK(within_one_float_step(s.tail_logp[t], ref.tail_logp));
          exact += s.tail_logp[t] == float(ref.tail_logp);
          ++values;
        }
      }
      // The float values are almost all the same bits (a one-step difference is rare).
      CHECK(double(exact) >= 0.99 * double(values));
    }
  }

  TEST_CASE("store: selected taps round trip; tap ids are AFD's per-sequence selection from a store of every tap") {
    const int64_t T = 5, L = 6, C = 8, V = 11, K = 3, n = 3;
    for (HiddenDtype hd : {HiddenDtype::BF16, HiddenDtype::INT8}) {
      const StoreInfo all = info_of(T, L, C, V, hd, K, 0), sel = info_of(T, L, C, V, hd, K, n);
      const std::string dall = tmp_dir("all"), dsel = tmp_dir("sel");
      const int N = 5;  // sequence 4 has no valid position (every c_l = 0: layers 1, 2, 3)
      {
        StoreWriter wa(dall, all), ws(dsel, sel);
        for (int i = 0; i < N; ++i) {
          RawSeq r = make_raw(all, 300 + uint64_t(i), i == 4 ? int(T + 1) : i % 3);
          wa.add_sequence(r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
          SequenceView v = ws.add_sequence(r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
          CHECK(v.taps == n);
        }
        wa.finish();
        ws.finish();
      }
      StoreReader ra(dall), rs(dsel);
      CHECK(rs.info().selected_taps == n);
      CHECK(ra.info().selected_taps == 0);
      const RecordLayout la = RecordLayout::make(all), ls = RecordLayout::make(sel);
      CHECK(ls.bytes < la.bytes);
      DistillConfig cfg;
      std::vector<std::vector<int>> seen;
      for (int i = 0; i < N; ++i) {
        const SequenceView a = ra.sequence(i), s = rs.sequence(i);
        REQUIRE(s.tap_ids != nullptr);
        CHECK(a.tap_ids == nullptr);
        CHECK(a.taps == L + 1);
        const std::vector<int> want = afd_select_layers({a}, cfg);
        std::vector<int> got(s.tap_ids, s.tap_ids + s.taps);
        CHECK(got == want);
        seen.push_back(got);
        if (i == 4) CHECK(got == std::vector<int>{1, 2, 3});
        // Kept taps: the same bytes as in the store of every tap; the others are not there.
        std::vector<float> ra_row(static_cast<size_t>(C)), rs_row(static_cast<size_t>(C));
        for (int64_t l = 0; l <= L; ++l) {
          const bool kept = std::find(want.begin(), want.end(), int(l)) != want.end();
          CHECK(s.has_tap(l) == kept);
          if (!kept) {
            check_throws_containing([&] { s.hidden_row(l, 0, rs_row.data()); }, "not stored");
            continue;
          }
          for (int64_t t = 0; t < T; ++t) {
            a.hidden_row(l, t, ra_row.data());
            s.hidden_row(l, t, rs_row.data());
            CHECK(std::memcmp(ra_row.data(), rs_row.data(), size_t(4 * C)) == 0);
            if (hd == HiddenDtype::INT8) CHECK(a.hidden_scale[l * T + t] == s.hidden_scale[s.tap_slot(l) * T + t]);
          }
        }
        // Everything else is the same bytes.
        CHECK(std::memcmp(a.ids, s.ids, size_t(4 * (T + 1))) == 0);
        CHECK(std::memcmp(a.mask, s.mask, size_t(T + 1)) == 0);
        CHECK(std::memcmp(a.topk_ids, s.topk_ids, size_t(4 * T * K)) == 0);
        CHECK(std::memcmp(a.logp, s.logp, size_t(4 * T * K)) == 0);
        CHECK(std::memcmp(a.tail_logp, s.tail_logp, size_t(4 * T)) == 0);
        CHECK(std::memcmp(a.entropy, s.entropy, size_t(4 * T)) == 0);
        CHECK(std::memcmp(a.target_logp, s.target_logp, size_t(4 * T)) == 0);
        CHECK(std::memcmp(a.cos_sum, s.cos_sum, size_t(8 * 2 * L)) == 0);
        CHECK(std::memcmp(a.cos_count, s.cos_count, 16) == 0);
      }
      // The sequences do not all select the same taps (the per-sequence rule is exercised).
      CHECK(std::count(seen.begin(), seen.end(), seen[0]) < N);
      // Formats: every tap stays version 1 (manifest and header unchanged); selected is 2.
      Json ma = Json::parse(read_file(dall + "/manifest.json")), ms = Json::parse(read_file(dsel + "/manifest.json"));
      CHECK(ma.at("version").as_int() == 1);
      CHECK_FALSE(ma.has("taps"));
      CHECK(ms.at("version").as_int() == 2);
      CHECK(ms.at("taps").as_string() == "selected");
      CHECK(ms.at("selected_taps").as_int() == n);
      std::string ha = read_file(dall + "/shard-00000.bin").substr(0, 128),
                  hs = read_file(dsel + "/shard-00000.bin").substr(0, 128);
      CHECK(ha[8] == 1);
      CHECK(ha[63] == 0);
      CHECK(hs[8] == 2);
      CHECK(hs[63] == char(n));
      // Resuming a store with the other tap setting is refused.
      fs::remove(dsel + "/manifest.json");
      check_throws_containing([&] { StoreWriter w(dsel, all); }, "differ");
      fs::remove_all(dall);
      fs::remove_all(dsel);
    }
  }

  TEST_CASE("AFD on a selected-tap store: B = 1 bit for bit the store of every tap; B > 1 the per-sequence formula") {
    const int64_t T = 4, L = 5, C = 6, V = 9, K = 3;
    const int B = 3;
    for (HiddenDtype hd : {HiddenDtype::BF16, HiddenDtype::INT8}) {
      const StoreInfo all = info_of(T, L, C, V, hd, K, 0), sel = info_of(T, L, C, V, hd, K, 3);
      std::vector<TeacherRecord> ra, rs;
      for (int b = 0; b < B; ++b) {
        RawSeq r = make_raw(all, 500 + uint64_t(b), b);
        ra.push_back(TeacherRecord::make(all, r.ids.data(), r.mask.data(), r.taps(), r.logits.data()));
        rs.push_back(TeacherRecord::make(sel, r.ids.data(), r.mask.data(), r.taps(), r.logits.data()));
      }
      std::vector<SequenceView> va, vs;
      for (int b = 0; b < B; ++b) va.push_back(ra[size_t(b)].view()), vs.push_back(rs[size_t(b)].view());
      DistillConfig cfg;
      const std::vector<std::vector<int>> sel_b = afd_sequence_layers(va, cfg);
      CHECK(afd_sequence_layers(vs, cfg) == sel_b);
      CHECK((sel_b[0] != sel_b[1] || sel_b[1] != sel_b[2]));  // the batch's sequences disagree

      // B = 1: value, logged components and every gradient with the same bits.
      for (int b = 0; b < B; ++b) {
        auto run = [&](const SequenceView& v, DistillStats* st, std::vector<Tensor>* grads) {
          std::vector<Var> f;
          for (int64_t l = 0; l <= L; ++l) {
            Tensor x = Tensor::empty({1, T, C});
            Rng rng(900 + uint64_t(l));
            fill_normal(x, rng, 2.0f);
            f.emplace_back(x, true);
          }
          Var loss = afd_loss(f, {v}, cfg, st);
          backward(loss);
          for (auto& x : f) grads->push_back(x.has_grad() ? x.grad().clone() : Tensor::zeros({0}));
          return loss.item();
        };
        DistillStats s1, s2;
        std::vector<Tensor> g1, g2;
        const float l1 = run(va[size_t(b)], &s1, &g1), l2 = run(vs[size_t(b)], &s2, &g2);
        CHECK(std::memcmp(&l1, &l2, 4) == 0);
        CHECK(std::memcmp(&s1.feature, &s2.feature, 8) == 0);
        CHECK(s1.layers == s2.layers);
        REQUIRE(s1.layer_mse.size() == s2.layer_mse.size());
        CHECK(std::memcmp(s1.layer_mse.data(), s2.layer_mse.data(), 8 * s1.layer_mse.size()) == 0);
        CHECK(s1.layer_cos == s2.layer_cos);
        for (int64_t l = 0; l <= L; ++l) {
          REQUIRE(g1[size_t(l)].numel() == g2[size_t(l)].numel());
          if (g1[size_t(l)].numel() > 0)
            CHECK(std::memcmp(g1[size_t(l)].data(), g2[size_t(l)].data(), size_t(4 * T * C)) == 0);
        }
        tape().clear();
      }

      // B = 3: the per-sequence formula, computed here directly in double.
      std::vector<Var> feats;
      for (int64_t l = 0; l <= L; ++l) {
        Tensor x = Tensor::empty({B, T, C});
        Rng rng(700 + uint64_t(l));
        fill_normal(x, rng, 2.0f);
        feats.emplace_back(x, true);
      }
      DistillStats st;
      Var loss = afd_loss(feats, vs, cfg, &st);
      double direct = 0;
      std::vector<float> row(static_cast<size_t>(C));
      for (int b = 0; b < B; ++b) {
        int64_t nv = 0;
        for (int64_t t = 0; t < T; ++t) nv += vs[size_t(b)].mask[t + 1] != 0;
        double seq = 0;
        for (int l : sel_b[size_t(b)]) {
          double s = 0;
          for (int64_t t = 0; t < T; ++t) {
            if (!vs[size_t(b)].mask[t + 1]) continue;
            va[size_t(b)].hidden_row(l, t, row.data());  // the teacher from the store of every tap
            for (int64_t c = 0; c < C; ++c) {
              const double d = double(feats[size_t(l)].value()[(b * T + t) * C + c]) - row[size_t(c)];
              s += d * d;
            }
          }
          seq += s / double(std::max<int64_t>(nv, 1) * C);
        }
        direct += seq / double(sel_b[size_t(b)].size()) / double(B);
      }
      CHECK(st.feature == doctest::Approx(direct).epsilon(1e-12));
      CHECK(loss.item() == doctest::Approx(direct).epsilon(1e-6));
      // Not the per-micro-batch selection's value (the documented deviation at B > 1).
      DistillStats st_all;
      {
        NoGradGuard ng;
        afd_loss(feats, va, cfg, &st_all);
      }
      CHECK(std::fabs(st_all.feature - st.feature) > 1e-6 * st.feature);
      // Logged layers: the 3 taps selected by the most sequences.
      std::vector<int> uses(size_t(L + 1), 0);
      for (const auto& s : sel_b)
        for (int l : s) ++uses[size_t(l)];
      for (int l : st.layers)
        for (int m = 1; m <= L; ++m)
          if (std::find(st.layers.begin(), st.layers.end(), m) == st.layers.end()) CHECK(uses[size_t(l)] >= uses[size_t(m)]);
      backward(loss);
      // Gradients by central finite differences (tolerance as test_distill.cpp's check_gradient:
      // FD truncation ~1e-7 plus the f32 rounding of the analytic gradient).
      for (int64_t l = 0; l <= L; ++l) {
        bool used = false;
        for (const auto& s : sel_b) used = used || std::find(s.begin(), s.end(), int(l)) != s.end();
        if (!used) {
          CHECK_FALSE(feats[size_t(l)].has_grad());
          continue;
        }
        Tensor x = feats[size_t(l)].value();
        const Tensor g = feats[size_t(l)].grad();
        for (int64_t i = 0; i < x.numel(); ++i) {
          const float z = x[i];
          auto at = [&](float v) {
            x[i] = v;
            NoGradGuard ng;
            DistillStats s;
            afd_loss(feats, vs, cfg, &s);
            return s.feature;
          };
          const float zp = float(z + 1e-3), zm = float(z - 1e-3);
          const double fd = (at(zp) - at(zm)) / (double(zp) - double(zm));
          x[i] = z;
          const double err = std::fabs(fd - g[i]);
          if (err > 2e-5 + 1e-4 * std::fabs(fd)) {
            FAIL_CHECK("tap " << l << " element " << i << ": finite difference " << fd << ", analytic " << g[i]);
            break;
          }
        }
      }
      tape().clear();
    }
  }

  TEST_CASE("a selected-tap store refuses the feature losses it cannot serve") {
    const StoreInfo sel = info_of(4, 6, 4, 9, HiddenDtype::BF16, 3, 3), all = info_of(4, 6, 4, 9, HiddenDtype::BF16, 3, 0);
    DistillConfig cfg;
    check_store_serves_afd(sel, cfg, "runs/x/store");  // adaptive, k = 3: served
    cfg.afd_k = 2;
    check_store_serves_afd(sel, cfg, "runs/x/store");  // the 2 lowest are among the 3 kept
    cfg.afd_k = 4;
    check_throws_containing([&] { check_store_serves_afd(sel, cfg, "runs/x/store"); }, "runs/x/store: ");
    check_throws_containing([&] { check_store_serves_afd(sel, cfg, "runs/x/store"); }, "--afd-k 4");
    cfg.afd_k = 3;
    parse_afd("fixed", cfg);
    check_throws_containing([&] { check_store_serves_afd(sel, cfg, "runs/x/store"); }, "--feature fixed");
    parse_afd("1,2", cfg);
    check_throws_containing([&] { check_store_serves_afd(sel, cfg, "runs/x/store"); }, "--feature fixed:<list>");
    parse_afd("adaptive", cfg);
    cfg.mask_align = MaskAlign::Reference;
    check_throws_containing([&] { check_store_serves_afd(sel, cfg, "runs/x/store"); }, "--mask-align reference");
    // A store of every tap serves every mode.
    for (const char* mode : {"adaptive", "fixed", "0,6"}) {
      parse_afd(mode, cfg);
      check_store_serves_afd(all, cfg, "runs/x/store");
    }
    // afd_loss itself refuses a non-adaptive mode on selected views.
    RawSeq r = make_raw(sel, 3, 0);
    TeacherRecord rec = TeacherRecord::make(sel, r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
    std::vector<Var> f;
    for (int l = 0; l <= 6; ++l) f.emplace_back(Tensor::zeros({1, 4, 4}), false);
    parse_afd("fixed", cfg);
    cfg.mask_align = MaskAlign::Razor;
    check_throws_containing([&] { afd_loss(f, {rec.view()}, cfg); }, "selected-tap");
  }

  TEST_CASE("store: damaged selected-tap (version 2) stores give clear errors") {
    const StoreInfo info = info_of(4, 5, 4, 9, HiddenDtype::INT8, 3, 3);
    const std::string dir = tmp_dir("damaged"), shard = dir + "/shard-00000.bin";
    auto fresh = [&] {
      fs::remove_all(dir);
      StoreWriter w(dir, info);
      for (int i = 0; i < 3; ++i) {
        RawSeq r = make_raw(info, 40 + uint64_t(i), i);
        w.add_sequence(r.ids.data(), r.mask.data(), r.taps(), r.logits.data());
      }
      w.finish();
    };
    auto bytes = [&] { return read_file(shard); };
    auto put = [&](std::string b, bool fix_checksums) {
      if (fix_checksums) {  // payload hash at 80, header FNV-1a at 88, manifest to match
        const uint64_t payload = hash64(b.data() + 128, b.size() - 128);
        std::memcpy(&b[80], &payload, 8);
        const uint64_t h = fnv1a64(b.data(), 88);
        std::memcpy(&b[88], &h, 8);
        Json m = Json::parse(read_file(dir + "/manifest.json"));
        Json shards = Json::array();
        for (const Json& s : m.at("shards").items()) {
          Json c = s;
          if (c.at("file").as_string() == "shard-00000.bin") c.set("checksum", hex64(payload));
          shards.push_back(std::move(c));
        }
        m.set("shards", std::move(shards));
        write_file_atomic(dir + "/manifest.json", m.dump(2));
      }
      write_file_atomic(shard, b);
    };
    auto manifest = [&](const char* key, Json v) {
      Json m = Json::parse(read_file(dir + "/manifest.json"));
      m.set(key, std::move(v));
      write_file_atomic(dir + "/manifest.json", m.dump(2));
    };
    const RecordLayout lay = RecordLayout::make(info);
    REQUIRE(lay.tap_ids >= 0);
    fresh();
    { StoreReader ok(dir); CHECK(ok.num_sequences() == 3); }
    fs::resize_file(shard, fs::file_size(shard) - 3);
    check_throws_containing([&] { StoreReader r(dir); }, "truncated");
    fresh();
    std::string b = bytes();
    b[size_t(128 + lay.tap_ids)] = 0;  // tap 0 (the embedding: never selected), checksums made consistent
    put(b, true);
    check_throws_containing([&] { StoreReader r(dir); }, "tap_ids[0] = 0");
    fresh();
    b = bytes();
    std::swap(b[size_t(128 + lay.tap_ids)], b[size_t(128 + lay.tap_ids + 2)]);  // not ascending
    put(b, true);
    check_throws_containing([&] { StoreReader r(dir); }, "not an ascending feature tap");
    fresh();
    b = bytes();
    b[63] = 2;  // the header's selected-tap count
    put(b, false);
    check_throws_containing([&] { StoreReader r(dir); }, "header checksum");
    fresh();
    b = bytes();
    b[63] = 2;
    put(b, true);
    check_throws_containing([&] { StoreReader r(dir); }, "selected taps=2");
    fresh();
    b = bytes();
    b[8] = 3;  // an unknown version
    put(b, true);
    check_throws_containing([&] { StoreReader r(dir); }, "format version 3");
    fresh();
    b = bytes();
    b[8] = 1;  // version 1 with selected taps
    put(b, true);
    check_throws_containing([&] { StoreReader r(dir); }, "version 1");
    fresh();
    manifest("selected_taps", Json(int64_t(7)));  // more than L = 5
    check_throws_containing([&] { StoreReader r(dir); }, "selected_taps 7");
    fresh();
    manifest("taps", Json("all"));
    check_throws_containing([&] { StoreReader r(dir); }, "taps: 'all' in a version 2 store");
    fresh();
    manifest("version", Json(int64_t(1)));
    check_throws_containing([&] { StoreReader r(dir); }, "version 1 store with a 'taps' field");
    fs::remove_all(dir);
  }

  TEST_CASE("store: bytes per token of the Qwen3-0.6B shape (docs/distill.md table) and --taps auto") {
    // T = 512, L = 28, C = 1024, V = 151936, K = 64, f32 log-probs.
    auto per_token = [](HiddenDtype hd, int64_t selected) {
      StoreInfo i = info_of(512, 28, 1024, 151936, hd, 64, selected);
      return double(RecordLayout::make(i).bytes) / 512.0;
    };
    // The formula: 5 + 8 + H + D with H = N C 2 (bf16) or N (C + 4) (int8), D = 8 K + 4,
    // N = 29 or 3, plus section padding and (16 L + 16 + 2 n) / T, all within 64 sections / T.
    struct Row {
      HiddenDtype hd;
      int64_t n;
      double formula;
    };
    for (Row r : {Row{HiddenDtype::BF16, 0, 5 + 8 + 29 * 1024 * 2 + 516}, Row{HiddenDtype::INT8, 0, 5 + 8 + 29 * 1028 + 516},
                  Row{HiddenDtype::BF16, 3, 5 + 8 + 3 * 1024 * 2 + 516}, Row{HiddenDtype::INT8, 3, 5 + 8 + 3 * 1028 + 516}}) {
      const double got = per_token(r.hd, r.n);
      CHECK(got >= r.formula);
      CHECK(got <= r.formula + 12 * 64 / 512.0);
    }
    CHECK(per_token(HiddenDtype::BF16, 0) > 59000);
    CHECK(per_token(HiddenDtype::BF16, 3) <= 8192);  // the target, at bf16
    CHECK(per_token(HiddenDtype::INT8, 3) <= 4096);
    StoreInfo q = info_of(512, 28, 1024, 151936, HiddenDtype::BF16, 64, 0);
    CHECK(resolve_selected_taps(TapStorage::Auto, 3, q) == 3);
    CHECK(resolve_selected_taps(TapStorage::All, 3, q) == 0);
    CHECK(resolve_selected_taps(TapStorage::Selected, 5, q) == 5);
    CHECK(resolve_selected_taps(TapStorage::Selected, 40, q) == 28);  // k > L: every layer tap
    // The default teacher's shape (L = 6, C = 256, T = 256): every tap fits under 8 KiB.
    StoreInfo d = info_of(256, 6, 256, 4096, HiddenDtype::BF16, 64, 0);
    CHECK(resolve_selected_taps(TapStorage::Auto, 3, d) == 0);
    CHECK(parse_tap_storage("selected") == TapStorage::Selected);
    check_throws_containing([] { parse_tap_storage("some"); }, "not one of auto, all, selected");
  }
}
