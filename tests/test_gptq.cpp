// Tests for GPTQ (quant/gptq.h) and AWQ / whole-model GPTQ (nn/gptq_model.h): calibration error
// against RTN, closed forms, singular Hessians, the RTN preimage, AWQ's exact fold, options.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "autograd/tape.h"
#include "model_test_util.h"
#include "nn/calib_ptq.h"
#include "nn/model.h"
#include "nn/ptq_model.h"
#include "quant/gptq.h"
#include "quant/ptq.h"
#include "quant/quantize.h"
#include "test_util.h"

using namespace razor;

namespace {

// X [n, d] with correlated features (x = z·A, A random) so H has real off-diagonal mass, as
// a linear's inputs do.
Tensor correlated_inputs(int64_t n, int64_t d, uint64_t seed) {
  Rng rng(seed);
  Tensor z = Tensor::empty({n, d}), a = Tensor::empty({d, d});
  fill_normal(z, rng, 1.0f);
  fill_normal(a, rng, 1.0f / std::sqrt(float(d)));
  for (int64_t i = 0; i < d; ++i) a[i * d + i] += 1.0f;
  Tensor x = Tensor::zeros({n, d});
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < d; ++k) {
      const float zk = z[t * d + k];
      for (int64_t j = 0; j < d; ++j) x[t * d + j] += zk * a[k * d + j];
    }
  return x;
}

std::vector<double> hessian_of(const Tensor& x) {
  const int64_t n = x.size(0), d = x.size(1);
  std::vector<float> h(size_t(d * d), 0.0f);
  hessian_accumulate(h, x.data(), n, d, 2.0f / float(n));
  return std::vector<double>(h.begin(), h.end());
}

// A random model with norms not all 1 (so folding into them is exercised).
std::unique_ptr<Model> random_model(const ModelConfig& c, uint64_t seed, float std) {
  auto m = std::make_unique<Model>(c, false);
  m->init_random(seed, std);
  Rng rng(seed + 1);
  for (Param& p : m->entries)
    if (p.kind == ParamKind::Norm)
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value[i] = 0.5f + rng.uniform();
  return m;
}

CalibSet random_calib(const ModelConfig& c, int64_t S, int64_t T, uint64_t seed) {
  Rng r(seed);
  CalibSet cs;
  cs.S = S;
  cs.T = T;
  for (int64_t i = 0; i < S * T; ++i) cs.ids.push_back(int32_t(r.next_u64() % uint64_t(c.vocab_size)));
  return cs;
}

std::vector<float> logits_of(const Model& m, const CalibSet& cs) {
  NoGradGuard ng;
  ForwardResult r = m.forward(cs.ids, cs.S, cs.T);
  return r.logits.value().to_vector();
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  return d;
}

double sq_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += double(a[i] - b[i]) * double(a[i] - b[i]);
  return d;
}

// A small model whose linear widths (32, 64, 96) all divide by G = 32.
ModelConfig small_config(const std::string& type, bool tied) {
  return shaped_config(tiny_config(tied, type), 64, 32, 2, 4, 2, 16, 96);
}

}  // namespace

TEST_SUITE("gptq") {
  TEST_CASE("gptq: Cholesky and triangular inverse of a random SPD matrix") {
    const int64_t n = 150;  // crosses the 64-wide blocks and the 32-wide inverse blocks
    const Tensor x = correlated_inputs(400, n, 3);
    const std::vector<double> h = hessian_of(x);
    std::vector<double> l = h;
    REQUIRE(cholesky_lower(l, n));
    double worst = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t k = 0; k <= j; ++k) s += l[size_t(i * n + k)] * l[size_t(j * n + k)];
        worst = std::max(worst, std::fabs(s - h[size_t(i * n + j)]));
      }
    CHECK(worst < 1e-9);
    std::vector<double> li = l;
    invert_lower(li, n);
    worst = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t k = 0; k < n; ++k) s += l[size_t(i * n + k)] * li[size_t(k * n + j)];
        worst = std::max(worst, std::fabs(s - (i == j ? 1.0 : 0.0)));
      }
    CHECK(worst < 1e-9);
    std::vector<double> bad = h;
    bad[0] = -1;
    CHECK_FALSE(cholesky_lower(bad, n));
  }

  TEST_CASE("gptq: calibration output error below RTN's, int4 / ternary / mixed rows at each G") {
    const int64_t d_out = 48, d_in = 256, n = 1024;
    const Tensor x = correlated_inputs(n, d_in, 7);
    const std::vector<double> h = hessian_of(x);
    Rng rng(8);
    Tensor w = Tensor::empty({d_out, d_in});
    fill_normal(w, rng, 0.05f);
    for (int G : {64, 128, 256}) {
      for (const WeightLayout& l :
           {WeightLayout::uniform(4, G), WeightLayout::ternary(G, 2.0f), WeightLayout::mixed_rows(8, G, 2.0f)}) {
        for (bool act_order : {false, true}) {
          CAPTURE(l.str());
          CAPTURE(act_order);
          GptqOptions o;
          o.act_order = act_order;
          const GptqFactor f = gptq_factor(h, d_in, o, "w");
          GptqStats st;
          const QuantizedWeight q = gptq_quantize("w", w, f, l, o, &st);
          const double e_gptq = hessian_error(w, q.dequantize(), h);
          const double e_rtn = hessian_error(w, rtn("w", w, l).dequantize(), h);
          std::ostringstream os;
          os << l.str() << (act_order ? " act-order" : "") << ": GPTQ " << e_gptq << " vs RTN " << e_rtn << " ("
             << e_gptq / e_rtn << "), forced " << st.forced;
          MESSAGE(os.str());
          CHECK(e_gptq < 0.9 * e_rtn);
          // The codes are on the layout's grid and the output is packable: RTN of its
          // preimage gives the same integers and scales.
          const Tensor pre = rtn_preimage("w", q);
          const QuantizedWeight back = quantize_weight("w", pre, l);
          CHECK(back.codes == q.codes);
          CHECK(back.scales == q.scales);
          if (l.kind == LayoutKind::kInt4) {
            const Tensor dq = q.dequantize();
            CHECK(std::equal(pre.data(), pre.data() + pre.numel(), dq.data()));  // int4: its own preimage
          }
        }
      }
    }
  }

  TEST_CASE("gptq: a 3-column case equals the closed form (int4 and ternary, one group)") {
    // H from 3 correlated inputs; damping 0 so the closed form is exact.
    const double H[3][3] = {{2.0, 1.2, -0.4}, {1.2, 1.5, 0.3}, {-0.4, 0.3, 1.0}};
    std::vector<double> h(9);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) h[size_t(i * 3 + j)] = H[i][j];
    // H⁻¹ by cofactors (independent of the library).
    const double det = H[0][0] * (H[1][1] * H[2][2] - H[1][2] * H[2][1]) -
                       H[0][1] * (H[1][0] * H[2][2] - H[1][2] * H[2][0]) +
                       H[0][2] * (H[1][0] * H[2][1] - H[1][1] * H[2][0]);
    const double i00 = (H[1][1] * H[2][2] - H[1][2] * H[2][1]) / det;
    const double i01 = -(H[0][1] * H[2][2] - H[0][2] * H[2][1]) / det;
    const double i02 = (H[0][1] * H[1][2] - H[0][2] * H[1][1]) / det;
    GptqOptions o;
    o.damp = 0;
    const GptqFactor f = gptq_factor(h, 3, o, "w");
    for (bool ternary : {false, true}) {
      CAPTURE(ternary);
      // Chosen so the update changes a code: RTN gives [3, 7, -2] / [0, 1, 0].
      const float w0[3] = {ternary ? 0.33f : 0.25f, 0.7f, ternary ? -0.26f : -0.16f};
      Tensor w = Tensor::empty({1, 3});
      for (int k = 0; k < 3; ++k) w[k] = w0[k];
      const WeightLayout l = ternary ? WeightLayout::ternary(3, 2.0f) : WeightLayout::uniform(4, 3);
      const QuantGroupFormat fmt = l.row_format(0);
      const float m = float(fmt.qmax());
      auto grid = [&](double v, float s) { return std::max(-m, std::min(m, std::nearbyint(float(v) / s))); };
      // Closed form: scale from the group at entry; column 0 rounded; the optimal update of
      // columns 1, 2 given column 0 is -(e0 / H⁻¹_00)·H⁻¹_0j; then column 1 rounded and column 2
      // updated with H_12 / H_22 (the remaining 2x2 problem's own inverse).
      const float s = group_scale(w0, fmt);  // the quantizer's own rule (pinned in test_quant)
      CHECK(s == (ternary ? round_to_f16(2.0f * (0.33f + 0.7f + 0.26f) / 3.0f) : round_to_f16(0.7f / 7.0f)));
      const float q0 = grid(w0[0], s);
      const double e0 = double(w0[0]) - double(q0) * s;
      const double w1 = w0[1] - e0 * i01 / i00, w2 = w0[2] - e0 * i02 / i00;
      const float q1 = grid(w1, s);
      const double e1 = w1 - double(q1) * s;
      const double w2b = w2 + e1 * H[1][2] / H[2][2];
      const float q2 = grid(w2b, s);
      const QuantizedWeight q = gptq_quantize("w", w, f, l, o);
      std::ostringstream os;
      os << (ternary ? "ternary" : "int4") << ": s " << s << " codes " << int(q.codes[0]) << " " << int(q.codes[1])
         << " " << int(q.codes[2]) << " (closed form " << q0 << " " << q1 << " " << q2 << "; w2 after updates " << w2b
         << ")";
      MESSAGE(os.str());
      CHECK(q.scales[0] == s);
      CHECK(q.codes[0] == int(q0));
      CHECK(q.codes[1] == int(q1));
      CHECK(q.codes[2] == int(q2));
      // The case is not trivial: GPTQ differs from RTN in at least one code.
      const QuantizedWeight r = rtn("w", w, l);
      CHECK(r.codes != q.codes);
    }
  }

  TEST_CASE("gptq: singular and zero Hessians") {
    const int64_t d_out = 16, d_in = 64;
    Rng rng(9);
    Tensor w = Tensor::empty({d_out, d_in});
    fill_normal(w, rng, 0.05f);
    const WeightLayout l = WeightLayout::mixed_rows(2, 32, 2.0f);
    // Fewer tokens than columns, a duplicated column and a dead one: rank-deficient H. With
    // damping 0 the factorisation fails and the damping is raised (a warning), not an error.
    Tensor x = correlated_inputs(20, d_in, 10);
    for (int64_t t = 0; t < 20; ++t) {
      x[t * d_in + 5] = x[t * d_in + 4];
      x[t * d_in + 9] = 0;
    }
    const std::vector<double> h = hessian_of(x);
    GptqOptions o;
    o.damp = 0;
    const GptqFactor f = gptq_factor(h, d_in, o, "w");
    CHECK(f.raises > 0);
    CHECK(f.damp > 0);
    CHECK(f.dead == 1);
    const QuantizedWeight q = gptq_quantize("w", w, f, l, o);
    const Tensor dq = q.dequantize();
    for (int64_t i = 0; i < dq.numel(); ++i) REQUIRE(std::isfinite(dq[i]));
    CHECK(hessian_error(w, dq, h) < hessian_error(w, rtn("w", w, l).dequantize(), h));
    // H = 0 (inputs always zero): nothing to correct, GPTQ is RTN.
    const std::vector<double> zero(size_t(d_in * d_in), 0.0);
    const GptqFactor fz = gptq_factor(zero, d_in, GptqOptions{}, "w");
    CHECK(fz.dead == d_in);
    const QuantizedWeight qz = gptq_quantize("w", w, fz, l);
    const QuantizedWeight rz = rtn("w", w, l);
    CHECK(qz.codes == rz.codes);
    CHECK(qz.scales == rz.scales);
    // Non-finite Hessian and shape mismatches are errors naming the matrix.
    std::vector<double> nan_h = h;
    nan_h[0] = NAN;
    CHECK(error_of([&] { gptq_factor(nan_h, d_in, GptqOptions{}, "layer.q"); }).find("layer.q") != std::string::npos);
    Tensor w2 = Tensor::empty({4, 32});
    CHECK(error_of([&] { gptq_quantize("layer.k", w2, f, l); }).find("layer.k") != std::string::npos);
  }

  TEST_CASE("awq: folding the scales leaves the unquantized model's logits unchanged (GQA, q/k-norm)") {
    for (const char* type : {"qwen3", "llama"})
      for (bool tied : {true, false}) {
        CAPTURE(type);
        CAPTURE(tied);
        const ModelConfig c = small_config(type, tied);
        auto m = random_model(c, 5, 0.2f);
        const CalibSet calib = random_calib(c, 4, 16, 6);
        const CalibSet probe = random_calib(c, 2, 24, 7);
        const std::vector<float> before = logits_of(*m, probe);
        std::vector<float> w_before = m->params.to_vector();
        QuantSpec spec;
        spec.plan.rho = 0.5;
        spec.plan.group = 32;
        CalibPtqOptions o;
        o.awq_alpha = 0.5;  // a fixed α: the scales are surely not all 1
        awq_fold(*m, spec, calib, o);
        const double d = max_abs_diff(logits_of(*m, probe), before);
        double moved = 0, max_logit = 0;
        for (size_t i = 0; i < w_before.size(); ++i) moved = std::max(moved, double(std::fabs(m->params[int64_t(i)] - w_before[i])));
        for (float z : before) max_logit = std::max(max_logit, double(std::fabs(z)));
        std::ostringstream os;
        os << type << (tied ? " tied" : " untied") << ": max |dlogit| " << d << " (max |logit| " << max_logit
           << "), largest weight change " << moved;
        MESSAGE(os.str());
        CHECK(d <= 1e-4);
        CHECK(moved > 0.05);  // the fold really changed the weights
        // With the search: the chosen α per group is on the grid, and the fold is exact too.
        o.awq_alpha = -1;
        o.awq_grid = 5;
        const auto alphas = awq_fold(*m, spec, calib, o);
        CHECK(alphas.size() == 4 * size_t(c.num_hidden_layers));
        CHECK(max_abs_diff(logits_of(*m, probe), before) <= 1e-4);
      }
  }

  TEST_CASE("gptq / awq over a model: calibration logit error below RTN's; A8 / KV8 calibration runs") {
    const ModelConfig c = small_config("qwen3", false);
    auto base = random_model(c, 11, 0.1f);
    const CalibSet calib = random_calib(c, 8, 32, 12);
    const std::vector<float> ref = logits_of(*base, calib);
    for (double rho : {1.0, 0.125, 0.0}) {
      CAPTURE(rho);
      QuantSpec spec;
      spec.plan.rho = rho;
      spec.plan.group = 32;
      double err[3];
      int k = 0;
      for (PtqMethod meth : {PtqMethod::Rtn, PtqMethod::Gptq, PtqMethod::Awq}) {
        auto m = random_model(c, 11, 0.1f);
        CalibPtqOptions o;
        o.awq_grid = 10;
        apply_ptq(*m, spec, meth, &calib, &o);
        err[k++] = sq_diff(logits_of(*m, calib), ref);
      }
      MESSAGE("rho " << rho << ": calibration logit SSE RTN " << err[0] << ", GPTQ " << err[1] << ", AWQ " << err[2]);
      CHECK(err[1] < err[0]);
      CHECK(err[2] <= err[0] * 1.0001);
    }
    // A8 + KV8 change what GPTQ calibrates on; the result stays on the grid (pack parity:
    // test_infer) and finite.
    QuantSpec spec;
    spec.plan.rho = 0.125;
    spec.plan.group = 32;
    spec.a8 = spec.kv8 = true;
    auto m = random_model(c, 11, 0.1f);
    CalibPtqOptions o;
    std::vector<std::pair<std::string, QuantizedWeight>> qw;
    const PtqReport r = apply_ptq(*m, spec, PtqMethod::Gptq, &calib, &o, &qw);
    CHECK(r.tensors == int(qw.size()));
    CHECK(r.tensors == 2 + 7 * int(c.num_hidden_layers));  // embedding, lm_head, 7 linears per layer
    for (float z : logits_of(*m, calib)) REQUIRE(std::isfinite(z));
    // Without calibration data the calibrated methods refuse.
    CHECK(error_of([&] { apply_ptq(*m, spec, PtqMethod::Gptq); }).find("calibration") != std::string::npos);
    CalibSet bad = calib;
    bad.ids[3] = int32_t(c.vocab_size);
    CHECK(error_of([&] { apply_ptq(*m, spec, PtqMethod::Awq, &bad, &o); }).find("vocabulary") != std::string::npos);
  }

  // A measurement, not a check: `./build/razor_tests -tc="gptq timing*" --no-skip` with
  // RAZOR_GPTQ_SEQS (default 8) calibration sequences of 256 tokens; run it under /usr/bin/time -v
  // for the peak memory.
  TEST_CASE("gptq timing: Qwen3-0.6B shape, random weights, rho 1/8" * doctest::skip()) {
    ModelConfig c = tiny_config(true, "qwen3");
    c.vocab_size = 151936;
    c.hidden_size = 1024;
    const char* layers = std::getenv("RAZOR_GPTQ_LAYERS");  // fewer layers: a per-layer figure
    c.num_hidden_layers = layers ? std::atoll(layers) : 28;
    c.num_attention_heads = 16;
    c.num_key_value_heads = 8;
    c.head_dim = 128;
    c.intermediate_size = 3072;
    c.max_position_embeddings = 4096;
    const char* env = std::getenv("RAZOR_GPTQ_SEQS");
    const int64_t S = env ? std::atoll(env) : 8;
    auto t0 = std::chrono::steady_clock::now();
    Model m(c, false);
    m.init_random(1, 0.02f);
    const CalibSet calib = random_calib(c, S, 256, 2);
    QuantSpec spec;
    spec.plan.rho = 0.125;
    spec.plan.group = 64;
    CalibPtqOptions o;
    o.verbose = true;
    auto t1 = std::chrono::steady_clock::now();
    const CalibPtqReport r = gptq_model(m, spec, calib, o);
    auto t2 = std::chrono::steady_clock::now();
    std::printf("qwen3-0.6b shape, %lld layers, %lld x 256 calibration tokens: init %.1f s, GPTQ %.1f s (Hessians %.1f, "
                "factors %.1f, sweeps %.1f, rest forwards), %d tensors, rel. error %.4f, process CPU %.1f s\n",
                (long long)c.num_hidden_layers, (long long)S, std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count(),
                r.seconds_hessian, r.seconds_factor, r.seconds_sweep, r.tensors, r.rel_error,
                double(std::clock()) / CLOCKS_PER_SEC);
  }

  // `./build/razor_tests -tc="gptq timing: factor*" --no-skip`: the down_proj shape of Qwen3-0.6B.
  TEST_CASE("gptq timing: factor and sweep, 1024 x 3072" * doctest::skip()) {
    const int64_t d_out = 1024, n = 3072;
    Tensor x = Tensor::empty({4096, n});
    Rng rx(3);
    fill_normal(x, rx, 1.0f);
    for (int64_t t = 0; t < 4096; ++t)  // neighbouring features correlated
      for (int64_t j = 1; j < n; ++j) x[t * n + j] += 0.5f * x[t * n + j - 1];
    auto t0 = std::chrono::steady_clock::now();
    const std::vector<double> h = hessian_of(x);
    auto t1 = std::chrono::steady_clock::now();
    const GptqFactor f = gptq_factor(h, n, GptqOptions{}, "down");
    auto t2 = std::chrono::steady_clock::now();
    Rng rng(4);
    Tensor w = Tensor::empty({d_out, n});
    fill_normal(w, rng, 0.02f);
    const QuantizedWeight q = gptq_quantize("down", w, f, WeightLayout::mixed_rows(8, 64, 2.0f));
    auto t3 = std::chrono::steady_clock::now();
    auto sec = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    std::printf("n %lld: Hessian (4096 tokens) %.2f s, factor %.2f s, sweep of %lld rows %.2f s\n", (long long)n,
                sec(t0, t1), sec(t1, t2), (long long)d_out, sec(t2, t3));
  }
}
