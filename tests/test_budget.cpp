// Tests for bit budgets (issue 11): the exact multiple-choice knapsack, the closed form,
// the plan file, the achieved bits of a planned model, and the asymmetric / log2 quantizers.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/json.h"
#include "model_test_util.h"
#include "nn/model.h"
#include "nn/ptq_model.h"
#include "nn/quant_hooks.h"
#include "quant/asym.h"
#include "quant/budget.h"
#include "quant/plan.h"
#include "train/sensitivity.h"
#include "test_util.h"

using namespace razor;

namespace {

std::string temp_path(const char* name) { return std::string("/tmp/razor_test_budget_") + name; }

}  // namespace

TEST_SUITE("budget") {
  TEST_CASE("knapsack_exact equals brute force on small random instances") {
    std::mt19937_64 gen(11);
    int feasible = 0;
    for (int inst = 0; inst < 300; ++inst) {
      int n = 1 + int(gen() % 6);
      std::vector<KnapsackItem> items(static_cast<size_t>(n));
      int64_t wsum = 0;
      const int64_t unit = 1 + int64_t(gen() % 4);  // exercises the gcd reduction
      for (auto& it : items) {
        int k = 1 + int(gen() % 5);
        int64_t wmax = 0;
        for (int c = 0; c < k; ++c) {
          it.weight.push_back(unit * int64_t(gen() % 25));
          it.cost.push_back(double(gen() % 1000) / 37.0);
          wmax = std::max(wmax, it.weight.back());
        }
        wsum += wmax;
      }
      int64_t cap = int64_t(gen() % uint64_t(wsum + 2)) - 1;
      KnapsackResult a = knapsack_exact(items, cap), b = knapsack_brute_force(items, cap);
      REQUIRE(a.feasible == b.feasible);
      if (!a.feasible) continue;
      ++feasible;
      CHECK(a.cost == doctest::Approx(b.cost).epsilon(1e-12));
      int64_t w = 0;
      double c = 0;
      for (int i = 0; i < n; ++i) {
        w += items[size_t(i)].weight[size_t(a.choice[size_t(i)])];
        c += items[size_t(i)].cost[size_t(a.choice[size_t(i)])];
      }
      CHECK(w == a.weight);
      CHECK(w <= cap);
      CHECK(c == doctest::Approx(a.cost).epsilon(1e-12));
    }
    CHECK(feasible > 150);
  }

  TEST_CASE("knapsack: infeasible capacity and equal costs spend the budget") {
    std::vector<KnapsackItem> items = {{{2, 4, 6}, {1.0, 1.0, 1.0}}, {{3, 5}, {0.5, 0.5}}};
    CHECK_FALSE(knapsack_exact(items, 4).feasible);
    KnapsackResult r = knapsack_exact(items, 10);
    REQUIRE(r.feasible);
    CHECK(r.weight == 9);  // 4 + 5 (6 + 5 = 11 does not fit): the largest weight among equal costs
  }

  TEST_CASE("closed form equals the knapsack on a convex toy") {
    // D_l(b) = a_l 2^(-2b) with a_l = 4^t_l, t = 1..5, one weight each, integer bits 0..7,
    // budget 3: water-filling gives b_l = t_l exactly (lambda = 1), and so must the knapsack.
    std::vector<double> t = {1, 2, 3, 4, 5}, a, n(5, 1.0), lo(5, 0.0), hi(5, 7.0);
    for (double v : t) a.push_back(std::pow(4.0, v));
    std::vector<double> b = closed_form_bits(a, n, lo, hi, 3.0);
    std::vector<KnapsackItem> items;
    for (size_t l = 0; l < 5; ++l) {
      CHECK(b[l] == doctest::Approx(t[l]).epsilon(1e-9));
      KnapsackItem it;
      for (int bits = 0; bits <= 7; ++bits) {
        it.weight.push_back(bits);
        it.cost.push_back(a[l] * std::exp2(-2.0 * bits));
      }
      items.push_back(it);
    }
    KnapsackResult k = knapsack_exact(items, 15);
    REQUIRE(k.feasible);
    for (size_t l = 0; l < 5; ++l) CHECK(k.choice[l] == int(t[l]));
    // Clamping: a budget above every upper bound puts every matrix at its bound.
    std::vector<double> top = closed_form_bits(a, n, lo, hi, 9.0);
    for (double v : top) CHECK(v == doctest::Approx(7.0));
  }

  TEST_CASE("allocate_budget: model-shaped toy, closed form vs knapsack") {
    // Matrices whose costs follow the closed form's model exactly; the knapsack is optimal, the
    // snapped closed form must be feasible and never better.
    std::vector<BudgetMatrix> ms;
    int64_t shapes[][2] = {{64, 64}, {32, 64}, {192, 64}, {64, 192}, {128, 128}, {16, 64}};
    double alpha[] = {3, 0.5, 1, 8, 2, 20};
    for (int l = 0; l < 6; ++l) {
      BudgetMatrix m;
      m.name = "m" + std::to_string(l);
      m.d_out = shapes[l][0];
      m.d_in = shapes[l][1];
      m.sigma2 = 1;
      for (double rho : budget_candidate_rhos()) {
        m.cand.push_back(layout_from_rho(rho, 64, 2.0f));
        double bits = m.cand.back().weight_bits_with_scales(m.d_out);
        m.cost.push_back(double(m.params()) * alpha[l] * std::exp2(-2 * bits));
      }
      ms.push_back(m);
    }
    for (double budget : {1.9, 2.2, 2.8, 3.5}) {
      BudgetOptions o;
      o.budget = budget;
      o.method = "knapsack";
      Allocation k = allocate_budget(ms, o);
      o.method = "closed-form";
      Allocation c = allocate_budget(ms, o);
      o.method = "auto";
      Allocation au = allocate_budget(ms, o);
      CHECK(k.predicted_bits <= budget + 1e-12);
      CHECK(c.predicted_bits <= budget + 1e-12);
      CHECK(c.predicted_cost >= k.predicted_cost * (1 - 1e-12));
      CHECK(au.predicted_cost == doctest::Approx(k.predicted_cost));
      // The closed form is a good approximation on its own model (within 10% of the optimum).
      CHECK(c.predicted_cost <= 1.1 * k.predicted_cost);
    }
    BudgetOptions low;
    low.budget = 1.7;
    CHECK(error_of([&] { allocate_budget(ms, low); }).find("below the minimum") != std::string::npos);
    low.with_scales = false;  // 1.7 > log2(3): feasible without scales
    CHECK(allocate_budget(ms, low).predicted_bits <= 1.7 + 1e-12);
  }

  TEST_CASE("plan file round trip and errors") {
    BudgetPlan p;
    p.budget = 2.2;
    p.method = "knapsack";
    p.predicted_bits = 2.19;
    p.rhos = budget_candidate_rhos();
    double rhos[] = {0, 0.125, 0.5, 1};
    for (int i = 0; i < 4; ++i) {
      PlanEntry e;
      e.name = "model.layers.0.t" + std::to_string(i);
      e.layout = layout_from_rho(rhos[i], 32, 1.5f);
      e.d_out = 16;
      e.d_in = 64;
      e.sigma2 = 0.25 * i;
      e.cost = {0.5, 0.25, 0.125, 0.0625, 0.01 * i};
      p.entries.push_back(e);
    }
    std::string path = temp_path("plan.json");
    write_plan(path, p);
    BudgetPlan q = read_plan(path);
    CHECK(q.budget == 2.2);
    CHECK(q.method == "knapsack");
    REQUIRE(q.entries.size() == 4);
    for (int i = 0; i < 4; ++i) {
      const WeightLayout &a = p.entries[size_t(i)].layout, &b = q.entries[size_t(i)].layout;
      CHECK(q.entries[size_t(i)].name == p.entries[size_t(i)].name);
      CHECK(a.str() == b.str());
      CHECK(b.beta == a.beta);
      CHECK(q.entries[size_t(i)].rho == rhos[i]);
      CHECK(q.entries[size_t(i)].cost == p.entries[size_t(i)].cost);
    }
    auto ov = load_plan(path);
    REQUIRE(ov.size() == 4);
    CHECK(ov[1].second.kind == LayoutKind::kMixedRows);
    CHECK(ov[1].second.period == 8);
    CHECK(ov[0].second.kind == LayoutKind::kTernary);
    CHECK(ov[3].second.kind == LayoutKind::kInt4);

    // A hand-written plan with only rho / group.
    write_file_atomic(path, R"({"format": "razor-plan", "version": 1, "tensors": {"a": {"rho": "1/4", "group": 16}}})");
    ov = load_plan(path);
    CHECK(ov[0].second.str() == "mixed-rows P=4 G=16");
    auto bad = [&](const char* text) {
      write_file_atomic(path, text);
      return error_of([&] { load_plan(path); });
    };
    CHECK(bad(R"({"format": "other", "version": 1, "tensors": {}})").find("not a razor plan") != std::string::npos);
    CHECK(bad(R"({"format": "razor-plan", "version": 1, "tensors": {"a": {"layout": "int5"}}})").find("unknown layout") !=
          std::string::npos);
    CHECK(bad(R"({"format": "razor-plan", "version": 1, "tensors": {"a": {"layout": "mixed-rows", "period": 1}}})")
              .find("period") != std::string::npos);
    CHECK(bad(R"({"format": "razor-plan", "version": 1, "tensors": {"a": {"rho": "2"}}})") != "");
    CHECK(bad(R"({"format": "razor-plan", "version": 1, "tensors": {"a": {}}})").find("rho") != std::string::npos);
    CHECK(bad(R"({"format": "razor-plan", "version": 2, "tensors": {}})").find("version") != std::string::npos);
    std::remove(path.c_str());
  }

  TEST_CASE("plan on a model: achieved bits within 0.01 of the budget, honoured by the spec") {
    ModelConfig cfg = shaped_config(tiny_config(true), 64, 64, 3, 2, 1, 32, 192);
    Model m(cfg, false);
    m.init_random(5);
    SensitivityOptions so;
    so.mode = "weight";
    so.group = 64;
    std::vector<BudgetMatrix> ms = measure_sensitivity(m, nullptr, so);
    REQUIRE(ms.size() == 21);  // 7 linears x 3 layers; the tied embedding stays 4-bit
    for (const BudgetMatrix& bm : ms) {
      CHECK(bm.sigma2 == doctest::Approx(0.0004).epsilon(0.2));  // N(0, 0.02^2)
      CHECK(bm.cost.front() > bm.cost.back());                      // ternary worse than int4
    }
    for (double budget : {1.9, 2.2, 2.8}) {
      BudgetOptions o;
      o.budget = budget;
      Allocation al = allocate_budget(ms, o);
      QuantSpec spec;
      std::vector<MatrixEntry> planned;
      for (size_t l = 0; l < ms.size(); ++l) {
        spec.overrides.push_back({ms[l].name, ms[l].cand[size_t(al.choice[l])]});
      }
      for (const MatrixEntry& e : model_matrices(m, spec)) {
        bool is_planned_entry = false;
        for (const BudgetMatrix& bm : ms) is_planned_entry |= bm.name == e.name;
        if (is_planned_entry) planned.push_back(e);
      }
      double achieved = bit_report(planned).avg_bits;
      CHECK(achieved == doctest::Approx(al.predicted_bits).epsilon(1e-12));
      CHECK(achieved <= budget + 1e-9);
      CHECK(achieved >= budget - 0.01);
      // The spec honours the plan: layout_for returns the planned layout.
      for (size_t l = 0; l < ms.size(); ++l) {
        const Param* p = m.find(ms[l].name);
        CHECK(spec.layout_for(p->name, p->kind).str() == ms[l].cand[size_t(al.choice[l])].str());
      }
    }
    // apply_plan_file rejects a tensor the model lacks.
    std::string path = temp_path("model_plan.json");
    write_file_atomic(path, R"({"format": "razor-plan", "version": 1, "tensors": {"model.layers.9.mlp.up_proj.weight": {"rho": "1/8"}}})");
    QuantSpec s;
    CHECK(error_of([&] { apply_plan_file(s, m, path); }).find("not in the model") != std::string::npos);
    std::remove(path.c_str());
  }

  TEST_CASE("asymmetric RTN: hand examples") {
    float out[8];
    uint8_t codes[8];
    {  // w = [-1, 0, 0.5, 2], 2 bits: s = 1, z = 1; 0.5 / 1 = 0.5 rounds to 0 (half to even)
      float w[] = {-1, 0, 0.5f, 2};
      AsymParams p = asym_group(w, 4, 2, codes, out);
      CHECK(p.scale == 1.0f);
      CHECK(p.zero_point == 1);
      int want[] = {0, 1, 1, 3};
      float deq[] = {-1, 0, 0, 2};
      for (int i = 0; i < 4; ++i) CHECK(codes[i] == want[i]);
      for (int i = 0; i < 4; ++i) CHECK(out[i] == deq[i]);
    }
    {  // zero point rounding, half to even: -lo / s = 0.5 -> z = 0
      float w[] = {-0.5f, 2.5f};
      AsymParams p = asym_group(w, 2, 2, codes, out);
      CHECK(p.zero_point == 0);
      CHECK(out[0] == 0.0f);  // rne(-0.5) = 0, clamped into the grid
      CHECK(out[1] == 2.0f);  // rne(2.5) = 2
    }
    {  // -lo / s = 1.5 -> z = 2: the grid is [-2, 1], so 1.5 clips to 1
      float w[] = {-1.5f, 1.5f};
      AsymParams p = asym_group(w, 2, 2, codes, out);
      CHECK(p.zero_point == 2);
      CHECK(out[0] == -2.0f);
      CHECK(out[1] == 1.0f);
    }
    {  // all-equal values: the range is extended to 0, so the value is a grid point
      float w[] = {0.5f, 0.5f, 0.5f, 0.5f};
      AsymParams p = asym_group(w, 4, 4, codes, out);
      CHECK(p.zero_point == 0);
      for (int i = 0; i < 4; ++i) CHECK(codes[i] == 15);
      for (int i = 0; i < 4; ++i) CHECK(out[i] == doctest::Approx(0.5).epsilon(1e-6));
      float n[] = {-0.3f, -0.3f};
      p = asym_group(n, 2, 2, codes, out);
      CHECK(p.zero_point == 3);
      CHECK(codes[0] == 0);
      CHECK(out[0] == doctest::Approx(-0.3).epsilon(1e-6));
      float z[] = {0, 0, 0};
      asym_group(z, 3, 8, codes, out);
      for (int i = 0; i < 3; ++i) CHECK(out[i] == 0.0f);
    }
    {  // a calibrated activation range [lo, hi]: lo > 0 is extended to 0
      AsymParams p = asym_params(0.5f, 2.0f, 2);
      CHECK(p.zero_point == 0);
      CHECK(p.scale == doctest::Approx(2.0 / 3.0));
      CHECK(asym_dequant(5.0f, p) == doctest::Approx(2.0));  // clipped to hi
      CHECK(asym_dequant(-1.0f, p) == 0.0f);                 // clipped to lo = 0
    }
  }

  TEST_CASE("log2 quantizer: hand examples, sign and zero") {
    float out[8];
    int8_t codes[8];
    {  // 3 bits: K = 3 levels s, s/2, s/4 and zero
      float w[] = {1, -0.5f, 0.25f, 0, 0.2f, -0.3f, 0.1f, -0.7f};
      float s = log2_group(w, 8, 3, codes, out);
      CHECK(s == 1.0f);
      int want[] = {1, -2, 3, 0, 3, -3, 0, -2};
      float deq[] = {1, -0.5f, 0.25f, 0, 0.25f, -0.25f, 0, -0.5f};
      for (int i = 0; i < 8; ++i) CHECK(codes[i] == want[i]);
      for (int i = 0; i < 8; ++i) CHECK(out[i] == deq[i]);
    }
    {  // 2 bits: only ±s and 0; a negative maximum keeps its sign; -0 and w = s/2 give 0
      float w[] = {-2, 1.5f, 1.0f, -0.0f};
      float s = log2_group(w, 4, 2, codes, out);
      CHECK(s == 2.0f);
      int want[] = {-1, 1, 0, 0};
      float deq[] = {-2, 2, 0, 0};  // -log2(0.75) = 0.415 -> level 0; -log2(0.5) = 1 >= K = 1 -> 0
      for (int i = 0; i < 4; ++i) CHECK(codes[i] == want[i]);
      for (int i = 0; i < 4; ++i) CHECK(out[i] == deq[i]);
      float z[] = {0, 0};
      log2_group(z, 2, 4, codes, out);
      CHECK(codes[0] == 0);
      CHECK(out[1] == 0.0f);
    }
  }

  TEST_CASE("calibrated weight quantization on a tensor and a model") {
    Tensor w = Tensor::empty({4, 16});
    std::mt19937_64 gen(3);
    for (int64_t i = 0; i < w.numel(); ++i) w[i] = float(int64_t(gen() % 2001) - 1000) / 1000.0f;
    double prev = 1e30;
    for (int bits = 2; bits <= 8; ++bits) {
      Tensor q = calibrated_quant_weight("w", w, CalibratedKind::Asym, bits, 8);
      double e = 0;
      for (int64_t i = 0; i < w.numel(); ++i) e += double(w[i] - q[i]) * (w[i] - q[i]);
      CHECK(e < prev);  // more bits, less error
      prev = e;
    }
    CHECK(error_of([&] { calibrated_quant_weight("w", w, CalibratedKind::Log2, 9, 8); }).find("2..8") !=
          std::string::npos);
    CHECK(error_of([&] { calibrated_quant_weight("w", w, CalibratedKind::Asym, 4, 5); }).find("divisible") !=
          std::string::npos);
    CHECK(calibrated_bits(CalibratedKind::Asym, 4, 64) == doctest::Approx(4 + 20.0 / 64));
    CHECK(calibrated_bits(CalibratedKind::Log2, 4, 64) == doctest::Approx(4.25));

    ModelConfig cfg = shaped_config(tiny_config(true), 37, 16, 2, 2, 1, 8, 32);
    Model m(cfg, false);
    m.init_random(7);
    Tensor orig = m.params.clone();
    QuantSpec spec = make_quant_spec("3", "", 8, 2.0, PtqMethod::Log2);
    CHECK(spec.uniform_bits == 3);
    PtqReport r = apply_ptq(m, spec, PtqMethod::Log2);
    CHECK(r.tensors > 0);
    CHECK(r.rel_error > 0);
    CHECK(r.rel_error < 1);
    m.params.copy_from(orig);
    PtqReport r8 = apply_ptq(m, make_quant_spec("8", "", 8, 2.0, PtqMethod::Asym), PtqMethod::Asym);
    CHECK(r8.rel_error < 0.05);  // the 4-bit embedding dominates
    CHECK(error_of([] { make_quant_spec("1.88", "", 8, 2.0, PtqMethod::Asym); }).find("2..8") != std::string::npos);
  }
}
