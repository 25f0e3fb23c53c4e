// Tests for src/quant: weight quantizers (NUMERICS.md §1), the precision plan and bit
// accounting (§2), A8 / KV8 (§4), PTQ baselines (§9).
#include <doctest/doctest.h>

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "quant/act_quant.h"
#include "quant/plan.h"
#include "quant/ptq.h"
#include "quant/quantize.h"
#include "test_util.h"

using namespace razor;

namespace {

const double kLog2_3 = std::log2(3.0);

std::vector<int> codes_of(const std::vector<float>& w, const QuantGroupFormat& f, float* scale) {
  std::vector<int8_t> c(w.size());
  *scale = quantize_group(w.data(), f, c.data());
  return std::vector<int>(c.begin(), c.end());
}

Tensor gaussian(int64_t rows, int64_t cols, uint64_t seed, float std = 0.02f) {
  Tensor t = Tensor::empty({rows, cols});
  Rng rng(seed);
  fill_normal(t, rng, std);
  return t;
}

}  // namespace

TEST_SUITE("quant") {
  // ------------------------------------------------------------ §1 weight quantizers

  TEST_CASE("ternary: NUMERICS.md example") {
    float s = 0;
    CHECK(codes_of({0.75f, -0.25f, 0.125f, -1.0f}, QuantGroupFormat::ternary(4), &s) == std::vector<int>{1, 0, 0, -1});
    CHECK(s == 1.0625f);
    std::vector<float> w = {0.75f, -0.25f, 0.125f, -1.0f}, out(4);
    CHECK(fake_quant_group(w.data(), QuantGroupFormat::ternary(4), out.data()) == 1.0625f);
    CHECK(out == std::vector<float>{1.0625f, 0.0f, 0.0f, -1.0625f});
  }

  TEST_CASE("int4: NUMERICS.md example, symmetric grid, ties to even") {
    float s = 0;
    // -3.5 -> -4, 0.5 -> 0, 2.5 -> 2: round half to even both directions.
    CHECK(codes_of({1.75f, -0.875f, 0.125f, 0.625f}, QuantGroupFormat::absmax(4, 4), &s) ==
          std::vector<int>{7, -4, 0, 2});
    CHECK(s == 0.25f);
    CHECK(codes_of({7.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f}, QuantGroupFormat::absmax(4, 8), &s) ==
          std::vector<int>{7, 0, 2, 2, 0, -2, -2, 4});
    CHECK(s == 1.0f);
    // All negative: the grid reaches -7, never -8.
    CHECK(codes_of({-1.75f, -0.875f, -0.125f, -0.625f}, QuantGroupFormat::absmax(4, 4), &s) ==
          std::vector<int>{-7, -4, 0, -2});
    CHECK(s == 0.25f);
    CHECK(QuantGroupFormat::absmax(4, 4).qmax() == 7);
    CHECK(QuantGroupFormat::absmax(8, 4).qmax() == 127);
    CHECK(QuantGroupFormat::absmax(2, 4).qmax() == 1);
    CHECK(QuantGroupFormat::absmax(3, 4).qmax() == 3);
  }

  TEST_CASE("ternary: ties at 0.5 go to zero, negative ties too") {
    float s = 0;
    // mean|w| = 0.5 -> s = 1: every ratio is exactly +-0.5 -> 0 (all equal magnitudes).
    CHECK(codes_of({0.5f, -0.5f, 0.5f, 0.5f}, QuantGroupFormat::ternary(4), &s) == std::vector<int>{0, 0, 0, 0});
    CHECK(s == 1.0f);
    CHECK(codes_of({-0.25f, -0.25f, -0.25f, -0.25f}, QuantGroupFormat::ternary(4), &s) ==
          std::vector<int>{0, 0, 0, 0});
    CHECK(s == 0.5f);
    // 1.5 / 2 = 0.75 -> 1; 0.5/2 = 0.25 -> 0; -1.5 -> -1; mean = 1 -> s = 2.
    CHECK(codes_of({1.5f, 0.5f, -1.5f, -0.5f}, QuantGroupFormat::ternary(4), &s) == std::vector<int>{1, 0, -1, 0});
    CHECK(s == 2.0f);
  }

  TEST_CASE("ternary: equal magnitudes whose scale is not fp16-exact (spec caveat)") {
    // 2 * mean = 0.2 rounds DOWN to fp16 0.199951171875, so 0.1 / s = 0.50012 -> 1.
    // NUMERICS.md's "all equal magnitudes -> all zeros" holds only for fp16-exact scales.
    float s = 0;
    CHECK(codes_of({0.1f, -0.1f, 0.1f, 0.1f}, QuantGroupFormat::ternary(4), &s) == std::vector<int>{1, -1, 1, 1});
    CHECK(s == 0.199951171875f);
    // 0.3: s = fp16(0.6) = 0.60009765625 rounds UP -> ratio < 0.5 -> zeros.
    CHECK(codes_of({0.3f, 0.3f, -0.3f, 0.3f}, QuantGroupFormat::ternary(4), &s) == std::vector<int>{0, 0, 0, 0});
  }

  TEST_CASE("all-zero group: scale is eps rounded to fp16, codes zero") {
    float s = 0;
    CHECK(codes_of({0, 0, 0, 0}, QuantGroupFormat::ternary(4), &s) == std::vector<int>{0, 0, 0, 0});
    CHECK(s == round_to_f16(1e-5f));
    CHECK(s == 1.0013580322265625e-05f);  // fp16 subnormal 168 * 2^-24
    CHECK(codes_of({0, -0.0f, 0, 0}, QuantGroupFormat::absmax(4, 4), &s) == std::vector<int>{0, 0, 0, 0});
    CHECK(s == round_to_f16(1e-5f / 7.0f));
    CHECK(s > 0.0f);
    std::vector<float> w(4, 0.0f), out(4, 1.0f);
    fake_quant_group(w.data(), QuantGroupFormat::ternary(4), out.data());
    CHECK(out == std::vector<float>{0, 0, 0, 0});
  }

  TEST_CASE("single large outlier") {
    float s = 0;
    // mean = 10.3/4 = 2.575, s = fp16(5.15); 10/s = 1.94 -> clamps to 1, the rest are 0.
    CHECK(codes_of({10.0f, 0.1f, -0.1f, 0.1f}, QuantGroupFormat::ternary(4), &s) == std::vector<int>{1, 0, 0, 0});
    CHECK(s == round_to_f16(5.15f));
    // int4: s = 1, 0.4 -> 0, -0.6 -> -1, 0.5 -> 0 (tie to even).
    CHECK(codes_of({7.0f, 0.4f, -0.6f, 0.5f}, QuantGroupFormat::absmax(4, 4), &s) == std::vector<int>{7, 0, -1, 0});
    // int8 with an outlier: the small values collapse to 0.
    CHECK(codes_of({100.0f, 0.3f, -0.3f, -100.0f}, QuantGroupFormat::absmax(8, 4), &s) ==
          std::vector<int>{127, 0, 0, -127});
  }

  TEST_CASE("the fp16-rounded scale is the one used for the codes") {
    // s32 = 1/7 = 0.142857..., fp16(s32) = 0.142822265625. 0.35712 / s32 = 2.49984 (-> 2),
    // 0.35712 / s16 = 2.50045 (-> 3); 1 / s16 = 7.0017 clamps to 7.
    float s = 0;
    CHECK(codes_of({1.0f, 0.35712f}, QuantGroupFormat::absmax(4, 2), &s) == std::vector<int>{7, 3});
    CHECK(s == 0.142822265625f);
    CHECK(s != 1.0f / 7.0f);
    CHECK(std::nearbyint(0.35712f / (1.0f / 7.0f)) == 2.0f);
  }

  TEST_CASE("random matrices: codes = clamp(rne(w/s)), fp16 scales, fake quant == dequantize bit for bit") {
    const Tensor w = gaussian(24, 128, 7);
    const WeightLayout layouts[] = {WeightLayout::ternary(32), WeightLayout::uniform(4, 32),
                                    WeightLayout::uniform(8, 64), WeightLayout::uniform(3, 16),
                                    WeightLayout::mixed_rows(8, 32), WeightLayout::mixed_rows(2, 128)};
    for (const WeightLayout& l : layouts) {
      CAPTURE(l.str());
      const QuantizedWeight q = quantize_weight("w", w, l);
      REQUIRE(q.codes.size() == size_t(24 * 128));
      REQUIRE(q.scales.size() == size_t(24 * (128 / l.group)));
      Tensor fq;
      fake_quant_weight("w", w, fq, l);
      const Tensor dq = q.dequantize();
      CHECK(std::memcmp(fq.data(), dq.data(), sizeof(float) * size_t(w.numel())) == 0);
      int mismatches = 0, beyond = 0, not_f16 = 0, bad_scale = 0;
      for (int64_t i = 0; i < 24; ++i) {
        const QuantGroupFormat f = l.row_format(i);
        const int m = f.qmax();
        for (int64_t k = 0; k < 128; ++k) {
          const float s = q.scales[size_t(i * (128 / l.group) + k / l.group)];
          const int c = q.codes[size_t(i * 128 + k)];
          float ref = std::nearbyint(w[i * 128 + k] / s);
          ref = std::fmin(std::fmax(ref, float(-m)), float(m));
          mismatches += int(ref) != c;
          beyond += c < -m || c > m;
        }
        for (int64_t g = 0; g < 128 / l.group; ++g) {
          const float s = q.scales[size_t(i * (128 / l.group) + g)];
          not_f16 += round_to_f16(s) != s;
          // Independent scale: plain sequential sum / max in double, then fp16.
          double acc = 0, mx = 0;
          for (int k = 0; k < l.group; ++k) {
            const double a = std::fabs(double(w[i * 128 + g * l.group + k]));
            acc += a;
            mx = std::max(mx, a);
          }
          const double ref = f.kind == QuantGroupFormat::Kind::kTernary ? 2.0 * acc / l.group : mx / m;
          bad_scale += std::fabs(s - ref) > 1e-3 * ref;  // fp16 has 11 significant bits
        }
      }
      CHECK(mismatches == 0);
      CHECK(beyond == 0);
      CHECK(not_f16 == 0);
      CHECK(bad_scale == 0);
    }
  }

  TEST_CASE("codes and scales are pinned by a golden hash (same bits on every ISA / build)") {
    // Inputs from integer RNG bits only (no libm), so they are identical on every platform.
    Tensor w = Tensor::empty({48, 192});
    Rng rng(2024);
    for (int64_t i = 0; i < w.numel(); ++i) w[i] = (rng.uniform() - 0.5f) * 0.125f;
    uint64_t h = 1469598103934665603ull;  // FNV-1a over codes and scale bits
    auto mix = [&h](const void* p, size_t n) {
      for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ull;
    };
    for (const WeightLayout& l : {WeightLayout::ternary(64), WeightLayout::mixed_rows(8, 32),
                                  WeightLayout::uniform(4, 64), WeightLayout::uniform(8, 16)}) {
      const QuantizedWeight q = quantize_weight("w", w, l);
      mix(q.codes.data(), q.codes.size());
      mix(q.scales.data(), q.scales.size() * sizeof(float));
    }
    std::vector<int8_t> c(size_t(w.numel()));
    std::vector<float> sc(size_t(w.numel() / 64));
    quantize_a8(w, 64, c.data(), sc.data());
    mix(c.data(), c.size());
    mix(sc.data(), sc.size() * sizeof(float));
    CHECK(h == 2993539950762517309ull);  // x86-64 AVX2 build; must match everywhere
  }

  TEST_CASE("mixed rows: row i is 4-bit iff i % P == 0, in every group") {
    const Tensor w = gaussian(20, 64, 11);
    const WeightLayout l = WeightLayout::mixed_rows(8, 16);
    CHECK(l.kind == LayoutKind::kMixedRows);
    const QuantizedWeight q = quantize_weight("layers.0.mlp.up_proj.weight", w, l);
    for (int64_t i = 0; i < 20; ++i) {
      const bool is4 = i % 8 == 0;
      CHECK(l.row_is_4bit(i) == is4);
      // Reference: the row on its own with the expected format.
      std::vector<int8_t> c(64);
      std::vector<float> s(4);
      quantize_row(w.data() + i * 64, 64, is4 ? QuantGroupFormat::absmax(4, 16) : QuantGroupFormat::ternary(16),
                   c.data(), s.data());
      CHECK(std::memcmp(c.data(), q.codes.data() + i * 64, 64) == 0);
      CHECK(std::memcmp(s.data(), q.scales.data() + i * 4, 4 * sizeof(float)) == 0);
      int maxabs = 0;
      for (int k = 0; k < 64; ++k) maxabs = std::max(maxabs, std::abs(int(c[size_t(k)])));
      CHECK(maxabs == (is4 ? 7 : 1));
    }
    CHECK(l.rows_4bit(20) == 3);  // rows 0, 8, 16
  }

  TEST_CASE("errors name the tensor: d_in % G, non-finite, bad layout") {
    const Tensor w = gaussian(4, 96, 3);
    Tensor out;
    std::string e = error_of([&] { fake_quant_weight("model.layers.3.self_attn.q_proj.weight", w, out,
                                                     WeightLayout::ternary(64)); });
    CHECK(e.find("model.layers.3.self_attn.q_proj.weight") != std::string::npos);
    CHECK(e.find("96") != std::string::npos);
    e = error_of([&] { quantize_weight("emb", w, WeightLayout::uniform(4, 64)); });
    CHECK(e.find("emb") != std::string::npos);
    e = error_of([&] { quantize_weight("w", w, WeightLayout::uniform(9, 32)); });
    CHECK(e.find("2..8") != std::string::npos);
    Tensor bad = w.clone();
    bad[100] = NAN;
    e = error_of([&] { quantize_weight("lm_head.weight", bad, WeightLayout::uniform(4, 32)); });
    CHECK(e.find("lm_head.weight") != std::string::npos);
    CHECK(e.find("row 1") != std::string::npos);
    bad[100] = 1e9f;  // |w|/7 beyond fp16 range
    e = error_of([&] { fake_quant_weight("big", bad, out, WeightLayout::uniform(4, 32)); });
    CHECK(e.find("big") != std::string::npos);
    Tensor wrong = Tensor::empty({3, 96});
    e = error_of([&] { fake_quant_weight("w", w, wrong, WeightLayout::uniform(4, 32)); });
    CHECK(e.find("expected [4, 96]") != std::string::npos);
  }

  TEST_CASE("fake quant in place and unquantized layout") {
    Tensor w = gaussian(8, 64, 5);
    Tensor ref;
    fake_quant_weight("w", w, ref, WeightLayout::mixed_rows(2, 32));
    Tensor inplace = w.clone();
    fake_quant_weight("w", inplace, inplace, WeightLayout::mixed_rows(2, 32));
    CHECK(std::memcmp(ref.data(), inplace.data(), sizeof(float) * 512) == 0);
    Tensor copy;
    fake_quant_weight("norm", w, copy, WeightLayout::none());
    CHECK(std::memcmp(copy.data(), w.data(), sizeof(float) * 512) == 0);
  }

  TEST_CASE("fake_quant_weights: one region for many tensors == per tensor; errors name the tensor") {
    const Tensor a = gaussian(40, 128, 1), b = gaussian(3, 64, 2), c = gaussian(1000, 32, 3), n = gaussian(1, 64, 4);
    Tensor oa, ob, oc, on;
    const WeightLayout la = WeightLayout::mixed_rows(8, 32), lb = WeightLayout::ternary(16),
                       lc = WeightLayout::uniform(4, 32), ln = WeightLayout::none();
    fake_quant_weights({{"a", &a, &oa, la}, {"b", &b, &ob, lb}, {"c", &c, &oc, lc}, {"n", &n, &on, ln}});
    const std::pair<const Tensor*, std::pair<const Tensor*, WeightLayout>> cases[] = {
        {&a, {&oa, la}}, {&b, {&ob, lb}}, {&c, {&oc, lc}}, {&n, {&on, ln}}};
    for (const auto& cs : cases) {
      Tensor ref;
      fake_quant_weight("x", *cs.first, ref, cs.second.second);
      REQUIRE(cs.second.first->numel() == ref.numel());
      CHECK(std::memcmp(cs.second.first->data(), ref.data(), sizeof(float) * size_t(ref.numel())) == 0);
    }
    Tensor big = c.clone();
    big[5 * 32] = 1e9f;
    CHECK(error_of([&] { fake_quant_weights({{"a", &a, &oa, la}, {"layers.9.big", &big, &oc, lc}}); })
              .find("layers.9.big: row 5") != std::string::npos);
    CHECK(error_of([&] { fake_quant_weights({{"a", &a, &oa, la}, {"odd", &b, &ob, WeightLayout::ternary(48)}}); })
              .find("odd") != std::string::npos);
  }

  // ------------------------------------------------------------ §2 plan and bits

  TEST_CASE("plan: periods and 4-bit rows for rho 1, 1/2, 1/8, 0") {
    CHECK(period_from_rho(1.0) == 1);
    CHECK(period_from_rho(0.5) == 2);
    CHECK(period_from_rho(0.125) == 8);
    CHECK(period_from_rho(0.0) == 0);
    CHECK(period_from_rho(1.0 / 3.0) == 3);
    CHECK(period_from_rho(0.3) == 3);
    CHECK(period_from_rho(0.6) == 1);
    auto rows4 = [](double rho) {
      PrecisionPlan p;
      p.rho = rho;
      const WeightLayout l = p.linear_layout();
      std::string s;
      for (int i = 0; i < 17; ++i) s += l.row_is_4bit(i) ? '4' : 't';
      return s;
    };
    CHECK(rows4(1.0) == "44444444444444444");
    CHECK(rows4(0.5) == "4t4t4t4t4t4t4t4t4");
    CHECK(rows4(0.125) == "4ttttttt4ttttttt4");
    CHECK(rows4(0.0) == "ttttttttttttttttt");
    PrecisionPlan p;
    p.rho = 1.0;
    CHECK(p.linear_layout().kind == LayoutKind::kInt4);
    p.rho = 0.0;
    CHECK(p.linear_layout().kind == LayoutKind::kTernary);
    CHECK(p.embedding_layout().kind == LayoutKind::kInt4);
    CHECK(p.embedding_layout().group == 64);
  }

  TEST_CASE("plan: parsing rho and --bits synonyms") {
    CHECK(parse_rho("1/8") == 0.125);
    CHECK(parse_rho("0.125") == 0.125);
    CHECK(parse_rho("0") == 0.0);
    CHECK(parse_rho("1") == 1.0);
    CHECK(parse_rho("1/2") == 0.5);
    CHECK(rho_from_bits("4") == 1.0);
    CHECK(rho_from_bits("2.79") == 0.5);
    CHECK(rho_from_bits("1.88") == 0.125);
    CHECK(rho_from_bits("1.58") == 0.0);
    CHECK(parse_precision("1.88") == 0.125);
    CHECK(parse_precision("1/8") == 0.125);
    CHECK(parse_precision("4") == 1.0);
    CHECK(parse_precision("4.0") == 1.0);
    CHECK(parse_precision("1.58") == 0.0);
    CHECK(parse_precision("2.79") == 0.5);
    CHECK(parse_precision("0.5") == 0.5);
    CHECK(parse_precision("1") == 1.0);
    for (const char* bad : {"", "abc", "3/2", "-0.1", "1.2", "1/0", "0.5x", "nan", " 1", "1/-8"})
      CHECK_MESSAGE(error_of([&] { parse_rho(bad); }).find("--rho") != std::string::npos, bad);
    for (const char* bad : {"3", "2", "8", "1.6", "x", ""})
      CHECK_MESSAGE(error_of([&] { rho_from_bits(bad); }).find("--bits") != std::string::npos, bad);
    for (const char* bad : {"2", "abc", "5/4", "-1"})
      CHECK_MESSAGE(error_of([&] { parse_precision(bad); }).find("--bits") != std::string::npos, bad);
  }

  TEST_CASE("bits: per-layout averages with and without 16/G") {
    const int64_t d = 256;  // multiple of every P below
    CHECK(WeightLayout::mixed_rows(1, 64).weight_bits_with_scales(d) == doctest::Approx(4.25).epsilon(1e-12));
    CHECK(WeightLayout::mixed_rows(1, 64).weight_bits(d) == 4.0);
    CHECK(WeightLayout::mixed_rows(2, 64).weight_bits(d) == doctest::Approx((4 + kLog2_3) / 2).epsilon(1e-12));
    CHECK(WeightLayout::mixed_rows(2, 64).weight_bits_with_scales(d) ==
          doctest::Approx((4 + kLog2_3) / 2 + 0.25).epsilon(1e-12));  // 3.0425
    CHECK(WeightLayout::mixed_rows(8, 64).weight_bits_with_scales(d) ==
          doctest::Approx((4 + 7 * kLog2_3) / 8 + 16.0 / 64).epsilon(1e-12));  // 2.1368
    CHECK(WeightLayout::mixed_rows(0, 64).weight_bits_with_scales(d) ==
          doctest::Approx(kLog2_3 + 0.25).epsilon(1e-12));
    CHECK(WeightLayout::mixed_rows(8, 128).weight_bits_with_scales(d) ==
          doctest::Approx((4 + 7 * kLog2_3) / 8 + 0.125).epsilon(1e-12));
    // The names of the --bits synonyms are these nominal figures, to two decimals.
    CHECK(nominal_bits(0.5) == doctest::Approx(2.7925).epsilon(1e-4));
    CHECK(nominal_bits(0.125) == doctest::Approx(1.8868).epsilon(1e-4));
    CHECK(nominal_bits(0.0) == doctest::Approx(1.585).epsilon(1e-3));
    CHECK(nominal_bits(1.0) == 4.0);
    // d_out not a multiple of P: rows 0 and 8 of 10 are 4-bit.
    CHECK(WeightLayout::mixed_rows(8, 64).weight_bits(10) == doctest::Approx((2 * 4 + 8 * kLog2_3) / 10).epsilon(1e-12));
  }

  TEST_CASE("bits: whole-model report, tied embedding once, norms excluded") {
    // Tiny model: V=4096, C=256, L=2, F=768, q 256x256, k/v 128x256, rho = 1/8, G = 64.
    PrecisionPlan plan;
    plan.rho = 0.125;
    plan.group = 64;
    std::vector<MatrixEntry> m;
    m.push_back(MatrixEntry::make("embed", 4096, 256, plan.embedding_layout()));
    for (int l = 0; l < 2; ++l) {
      m.push_back(MatrixEntry::make("q", 256, 256, plan.linear_layout()));
      m.push_back(MatrixEntry::make("k", 128, 256, plan.linear_layout()));
      m.push_back(MatrixEntry::make("v", 128, 256, plan.linear_layout()));
      m.push_back(MatrixEntry::make("o", 256, 256, plan.linear_layout()));
      m.push_back(MatrixEntry::make("gate", 768, 256, plan.linear_layout()));
      m.push_back(MatrixEntry::make("up", 768, 256, plan.linear_layout()));
      m.push_back(MatrixEntry::make("down", 256, 768, plan.linear_layout()));
      m.push_back(MatrixEntry::make("norm1", 1, 256, WeightLayout::none()));
      m.push_back(MatrixEntry::make("norm2", 1, 256, WeightLayout::none()));
    }
    m.push_back(MatrixEntry::make("norm", 1, 256, WeightLayout::none()));
    m.push_back(MatrixEntry::make("lm_head", 4096, 256, plan.embedding_layout(), /*shared=*/true));
    const BitReport r = bit_report(m);
    const double emb = 4096.0 * 256, lin = 2.0 * (65536 + 32768 + 32768 + 65536 + 3 * 196608), norms = 5 * 256;
    CHECK(r.quantized_params == int64_t(emb + lin));
    CHECK(r.total_params == int64_t(emb + lin + norms));
    const double b_lin = (4 + 7 * kLog2_3) / 8;  // every d_out here is a multiple of 8
    CHECK(r.avg_bits_no_scales == doctest::Approx((emb * 4 + lin * b_lin) / (emb + lin)).epsilon(1e-12));
    CHECK(r.avg_bits == doctest::Approx((emb * 4.25 + lin * (b_lin + 0.25)) / (emb + lin)).epsilon(1e-12));
    CHECK(r.quantized_share == doctest::Approx((emb + lin) / (emb + lin + norms)).epsilon(1e-12));
    CHECK(r.str().find("parameters quantized") != std::string::npos);
    m.push_back(MatrixEntry::make("odd", 8, 100, plan.linear_layout()));
    CHECK(error_of([&] { bit_report(m); }).find("odd") != std::string::npos);
  }

  // ------------------------------------------------------------ §4 A8 / KV8

  TEST_CASE("A8: per token, per group, fp32 scales (not fp16)") {
    // 2 tokens x 8 features, G = 4.
    const Tensor x = Tensor::from({2, 8}, {0.1f, -0.2f, 0.3f, 1.0f, 0, 0, 0, 0,  //
                                           -2.0f, 0.5f, 0.25f, 1.0f, 0.01f, -0.02f, 0.03f, 0.04f});
    std::vector<int8_t> c(16);
    std::vector<float> s(4);
    quantize_a8(x, 4, c.data(), s.data());
    CHECK(s[0] == 1.0f / 127.0f);
    CHECK(round_to_f16(s[0]) != s[0]);  // proves no fp16 rounding happened
    CHECK(s[1] == 1e-5f / 127.0f);      // all-zero group: eps / 127
    CHECK(s[2] == 2.0f / 127.0f);
    CHECK(s[3] == 0.04f / 127.0f);
    CHECK(c[3] == 127);
    CHECK(c[4] == 0);
    CHECK(c[8] == -127);
    CHECK(c[15] == 127);
    for (int k = 0; k < 16; ++k) {
      float ref = std::nearbyint(x[k] / s[size_t(k / 4)]);
      CHECK(int(c[size_t(k)]) == int(ref));
    }
    CHECK(int(c[0]) == int(std::nearbyint(0.1f / (1.0f / 127.0f))));  // 12.7 -> 13
    CHECK(c[0] == 13);
    Tensor fq;
    fake_quant_a8(x, fq, 4);
    for (int k = 0; k < 16; ++k) {
      const float ref = float(c[size_t(k)]) * s[size_t(k / 4)];
      CHECK(std::memcmp(&fq[k], &ref, sizeof(float)) == 0);  // bit for bit (no -0)
    }
    Tensor inplace = x.clone();
    fake_quant_a8(inplace, inplace, 4);
    CHECK(std::memcmp(inplace.data(), fq.data(), sizeof(float) * 16) == 0);
    Tensor out;
    CHECK(error_of([&] { fake_quant_a8(x, out, 3); }).find("not divisible") != std::string::npos);
  }

  TEST_CASE("A8: ties and clamping, large tensor threaded == row by row") {
    // s = 127/127 = 1: exact ties.
    const Tensor x = Tensor::from({1, 4}, {127.0f, 0.5f, -1.5f, 2.5f});
    std::vector<int8_t> c(4);
    float s = 0;
    quantize_a8(x, 4, c.data(), &s);
    CHECK(s == 1.0f);
    CHECK(std::vector<int>(c.begin(), c.end()) == std::vector<int>{127, 0, -2, 2});
    // Fake quantization propagates a NaN (codes clamp it); the others are as without it (s = 1).
    const Tensor xn = Tensor::from({1, 8}, {std::nanf(""), 0.5f, -1.5f, 127.0f, 2.5f, -127.0f, 0.0f, -0.2f});
    Tensor fn;
    fake_quant_a8(xn, fn, 8);
    CHECK(std::isnan(fn[0]));
    const float want[8] = {0.0f, 0.0f, -2.0f, 127.0f, 2.0f, -127.0f, 0.0f, 0.0f};
    for (int k = 1; k < 8; ++k) CHECK(std::memcmp(&fn[k], &want[k], sizeof(float)) == 0);  // +0, not -0
    const Tensor big = gaussian(256, 256, 9, 3.0f);
    Tensor fq;
    fake_quant_a8(big, fq, 64);
    std::vector<float> row(256);
    int diff = 0;
    for (int r = 0; r < 256; ++r) {
      fake_quant_a8_row(big.data() + r * 256, 256, 64, row.data());
      diff += std::memcmp(row.data(), fq.data() + r * 256, sizeof(float) * 256) != 0;
    }
    CHECK(diff == 0);
    // Relative error of 8-bit absmax is at most half a step: |x - x̂| <= s/2.
    double worst = 0;
    for (int64_t i = 0; i < big.numel(); ++i) worst = std::max(worst, double(std::fabs(big[i] - fq[i])));
    CHECK(worst > 0);
    CHECK(worst < 20.0 / 127.0);
  }

  TEST_CASE("KV8: one scale per (token, kv head) over head_dim") {
    // [B=1, T=2, K=2, D=4]
    const Tensor k = Tensor::from({1, 2, 2, 4}, {1, 2, 3, 4, -8, 1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, 0, 0, 0, 0});
    std::vector<int8_t> c(16);
    std::vector<float> s(4);
    quantize_kv8(k, c.data(), s.data());
    CHECK(s[0] == 4.0f / 127.0f);
    CHECK(s[1] == 8.0f / 127.0f);
    CHECK(s[2] == 0.5f / 127.0f);
    CHECK(s[3] == 1e-5f / 127.0f);
    CHECK(c[3] == 127);
    CHECK(c[4] == -127);
    CHECK(c[8] == 127);
    Tensor fq;
    fake_quant_kv8(k, fq);
    CHECK(fq.shape() == k.shape());
    for (int i = 0; i < 16; ++i) CHECK(fq[i] == float(c[size_t(i)]) * s[size_t(i / 4)]);
  }

  // ------------------------------------------------------------ §9 PTQ baselines

  TEST_CASE("RTN = the quantizers once; uniform 2/3/4-bit error ordering") {
    const Tensor w = gaussian(64, 256, 21);
    const QuantizedWeight q = rtn("w", w, WeightLayout::uniform(3, 64));
    CHECK(q.layout.kind == LayoutKind::kUniform);
    int beyond = 0;
    for (int8_t c : q.codes) beyond += c < -3 || c > 3;
    CHECK(beyond == 0);
    const double e2 = sum_squared_error(w, rtn("w", w, WeightLayout::uniform(2, 64)).dequantize());
    const double e3 = sum_squared_error(w, q.dequantize());
    const double e4 = sum_squared_error(w, rtn("w", w, WeightLayout::uniform(4, 64)).dequantize());
    const double e8 = sum_squared_error(w, rtn("w", w, WeightLayout::uniform(8, 64)).dequantize());
    CHECK(e2 > e3);
    CHECK(e3 > e4);
    CHECK(e4 > e8);
    CHECK(e8 > 0);
  }

  TEST_CASE("RTN + gamma preserves the second moment of every group") {
    Tensor w = gaussian(16, 128, 33);
    for (int k = 0; k < 32; ++k) w[5 * 128 + k] = 0.0f;  // an all-zero group stays zero
    for (const WeightLayout& l : {WeightLayout::ternary(32), WeightLayout::uniform(4, 32),
                                  WeightLayout::mixed_rows(8, 32), WeightLayout::uniform(2, 32)}) {
      CAPTURE(l.str());
      const Tensor g = rtn_gamma("w", w, l);
      const Tensor plain = rtn("w", w, l).dequantize();
      int bad = 0, changed = 0;
      for (int64_t start = 0; start < w.numel(); start += 32) {
        double ew = 0, eg = 0;
        for (int k = 0; k < 32; ++k) {
          ew += double(w[start + k]) * w[start + k];
          eg += double(g[start + k]) * g[start + k];
          changed += g[start + k] != plain[start + k];
        }
        bad += std::fabs(eg - ew) > 1e-5 * ew;
      }
      CHECK(bad == 0);
      CHECK(changed > 0);
      for (int k = 0; k < 32; ++k) CHECK(g[5 * 128 + k] == 0.0f);
    }
  }

  TEST_CASE("PTQTP: monotone error, beats RTN ternary on Gaussian weights") {
    const Tensor w = gaussian(32, 256, 44);
    const int G = 64;
    double e_rtn_total = 0, e_pt_total = 0;
    int increases = 0, above_rtn = 0, over_iters = 0;
    for (int64_t g0 = 0; g0 < w.numel(); g0 += G) {
      std::vector<float> rq(G), pq(G);
      fake_quant_group(w.data() + g0, QuantGroupFormat::ternary(G), rq.data());
      PtqtpTrace tr;
      ptqtp_group(w.data() + g0, G, pq.data(), {}, &tr);
      double er = 0, ep = 0;
      for (int k = 0; k < G; ++k) {
        er += std::pow(double(w[g0 + k]) - rq[size_t(k)], 2);
        ep += std::pow(double(w[g0 + k]) - pq[size_t(k)], 2);
      }
      e_rtn_total += er;
      e_pt_total += ep;
      for (size_t i = 1; i < tr.errors.size(); ++i) increases += tr.errors[i] > tr.errors[i - 1];
      above_rtn += tr.errors[0] > er * (1 + 1e-6);
      over_iters += tr.iterations > 50;
      CHECK(tr.errors.back() == doctest::Approx(ep).epsilon(1e-5));
      // Output really is a1*T1 + a2*T2 with trits.
      for (int k = 0; k < G; ++k) {
        CHECK(std::abs(int(tr.t1[size_t(k)])) <= 1);
        CHECK(pq[size_t(k)] == tr.a1 * float(tr.t1[size_t(k)]) + tr.a2 * float(tr.t2[size_t(k)]));
      }
    }
    CHECK(increases == 0);
    CHECK(above_rtn == 0);
    CHECK(over_iters == 0);
    MESSAGE("PTQTP SSE " << e_pt_total << " vs RTN ternary " << e_rtn_total);
    CHECK(e_pt_total < 0.7 * e_rtn_total);
    // Whole-matrix entry point agrees with the group routine and reports iterations.
    PtqtpStats st;
    const Tensor pt = ptqtp("w", w, WeightLayout::ternary(G), {}, &st);
    CHECK(sum_squared_error(w, pt) == doctest::Approx(e_pt_total).epsilon(1e-9));
    CHECK(st.groups == 32 * 256 / G);
    CHECK(st.mean_iterations >= 1);
    CHECK(st.max_iterations <= 50);
    // Mixed layout: 4-bit rows are RTN int4, ternary rows trit-planes.
    const Tensor mixed = ptqtp("w", w, WeightLayout::mixed_rows(8, G));
    Tensor int4;
    fake_quant_weight("w", w.rows(0, 1), int4, WeightLayout::uniform(4, G));
    CHECK(std::memcmp(mixed.data(), int4.data(), sizeof(float) * 256) == 0);
    CHECK(std::memcmp(mixed.data() + 256, pt.data() + 256, sizeof(float) * 256) == 0);
  }

  TEST_CASE("PTQTP: degenerate groups (zeros, one value, two levels)") {
    std::vector<float> out(8);
    std::vector<float> zeros(8, 0.0f);
    PtqtpTrace tr;
    ptqtp_group(zeros.data(), 8, out.data(), {}, &tr);
    for (float v : out) CHECK(v == 0.0f);
    // Values on a two-plane grid {±1 ± 0.25} are fitted (nearly) exactly.
    std::vector<float> w = {1.25f, 0.75f, -1.25f, -0.75f, 1.25f, 0.25f, -0.25f, 1.0f};
    ptqtp_group(w.data(), 8, out.data(), {}, &tr);
    double e = 0;
    for (int k = 0; k < 8; ++k) e += std::pow(double(w[size_t(k)]) - out[size_t(k)], 2);
    CHECK(e <= tr.errors[0]);
    for (size_t i = 1; i < tr.errors.size(); ++i) CHECK(tr.errors[i] <= tr.errors[i - 1]);
    const Tensor bad = Tensor::from({1, 4}, {1, NAN, 0, 0});
    CHECK(error_of([&] { ptqtp("x", bad, WeightLayout::ternary(4)); }).find("x") != std::string::npos);
  }

  // ------------------------------------------------------------ timing (not run by default)

  TEST_CASE("fake-quant timing, 6.8M parameters, 2 threads" * doctest::skip()) {
    // V=4096, C=256, L=6, F=768, H=4, K=2, D=64: untied embed + lm_head (4-bit), 7 linears
    // per layer (mixed rows, rho = 1/8), G = 64.
    struct M { int64_t r, c; bool emb; };
    std::vector<M> shapes = {{4096, 256, true}, {4096, 256, true}};
    for (int l = 0; l < 6; ++l)
      for (M m : {M{256, 256, false}, M{128, 256, false}, M{128, 256, false}, M{256, 256, false},
                  M{768, 256, false}, M{768, 256, false}, M{256, 768, false}})
        shapes.push_back(m);
    std::vector<Tensor> ws, outs;
    int64_t total = 0;
    for (size_t i = 0; i < shapes.size(); ++i) {
      ws.push_back(gaussian(shapes[i].r, shapes[i].c, 100 + i));
      outs.push_back(Tensor::empty({shapes[i].r, shapes[i].c}));
      total += shapes[i].r * shapes[i].c;
    }
    PrecisionPlan plan;
    const int saved = num_threads();
    auto run = [&] {
      for (size_t i = 0; i < ws.size(); ++i)
        fake_quant_weight("w", ws[i], outs[i], shapes[i].emb ? plan.embedding_layout() : plan.linear_layout());
    };
    std::vector<FakeQuantJob> jobs;
    for (size_t i = 0; i < ws.size(); ++i)
      jobs.push_back({"w", &ws[i], &outs[i], shapes[i].emb ? plan.embedding_layout() : plan.linear_layout()});
    auto run_batched = [&] { fake_quant_weights(jobs); };
    for (int batched = 0; batched < 2; ++batched)
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        const std::function<void()> f = batched ? std::function<void()>(run_batched) : std::function<void()>(run);
        f();  // warm-up: pages and caches
        std::vector<double> t, cpu;  // wall and process CPU time (all threads, spin-waits included)
        for (int r = 0; r < 21; ++r) {
          const double t0 = now_seconds();
          const std::clock_t c0 = std::clock();
          f();
          cpu.push_back(double(std::clock() - c0) / CLOCKS_PER_SEC);
          t.push_back(now_seconds() - t0);
        }
        std::sort(t.begin(), t.end());
        std::sort(cpu.begin(), cpu.end());
        MESSAGE(std::string(batched ? "fake_quant_weights (one region)" : "fake_quant_weight per matrix")
                << ": " << total << " params (" << ws.size() << " matrices, rho=1/8, G=64), " << threads
                << " thread(s): wall min " << t.front() * 1e3 << " ms, median " << t[t.size() / 2] * 1e3
                << " ms; CPU median " << cpu[cpu.size() / 2] * 1e3 << " ms; " << t.size() << " runs");
      }
    set_num_threads(saved);
    CHECK(total > 6800000);
  }
}
