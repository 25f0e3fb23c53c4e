// `razor plan`: per-matrix precision allocation under an average-bits budget (issue 11).
// Measures each planned matrix's sensitivity at every candidate rho (train/sensitivity.h),
// allocates (quant/budget.h: closed form where it is optimal, exact knapsack otherwise) and
// writes a plan file that `razor quantize | eval | train --plan FILE` (and `razor pack`) read.
#include <cmath>
#include <cstdio>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/ptq_calib.h"
#include "nn/calib_ptq.h"
#include "core/error.h"
#include "core/threads.h"
#include "nn/quant_hooks.h"
#include "quant/budget.h"
#include "quant/plan.h"
#include "train/data.h"
#include "train/sensitivity.h"

namespace razor {

namespace {

std::vector<double> parse_rho_list(const std::string& s) {
  std::vector<double> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    out.push_back(parse_rho(s.substr(i, j - i), "--rhos"));
    i = j + 1;
  }
  for (size_t k = 1; k < out.size(); ++k)
    RZ_CHECK(period_from_rho(out[k]) != period_from_rho(out[k - 1]) && out[k] > out[k - 1],
             "--rhos: give distinct rhos in increasing order");
  return out;
}

// Average bits over the planned matrices when every one takes `layout`.
double uniform_bits(const std::vector<BudgetMatrix>& ms, const WeightLayout& layout, bool with_scales) {
  double tb = 0, n = 0;
  for (const BudgetMatrix& m : ms) {
    double b = with_scales ? layout.weight_bits_with_scales(m.d_out) : layout.weight_bits(m.d_out);
    tb += b * double(m.params());
    n += double(m.params());
  }
  return tb / n;
}

}  // namespace

int cmd_plan(int argc, char** argv) {
  ArgParser a(argv[0],
              "Bit budget: measures each quantizable matrix's sensitivity (loss increase when only that matrix is "
              "quantized at each candidate rho) and chooses a per-matrix rho minimising the predicted loss increase "
              "under an average-bits budget. Writes a plan file for `razor quantize | eval | train --plan FILE`.");
  a.option("--budget", "1.9", "average bits per weight over the planned matrices");
  a.option("--teacher", "data/teacher", "HF checkpoint directory");
  a.option("--data", "default", "calibration data: default | FILE.txt | FILE.ids | FILE.tok (training split)");
  a.option("--cache", "data/cache", "where token shards built from text are cached");
  a.option("-o,--out", "plan.json", "plan file to write");
  a.option("--from", "", "reuse the measured costs of an earlier plan file (no model forwards)");
  a.option("--sensitivity", "loss", "loss (teacher loss increase) | proxy (output error) | weight (weight error)");
  a.option("--rhos", "0,1/8,1/4,1/2,1", "candidate rhos");
  a.option("--group", "64", "group size G");
  a.option("--beta", "2.0", "ternary scale factor");
  a.option("--seq", "128", "calibration window length");
  a.option("--windows", "8", "calibration windows");
  a.option("--method", "auto", "auto (closed form where optimal, else knapsack) | knapsack | closed-form");
  a.flag("--no-scales", "budget counts weight bits only (without 16/G)");
  a.flag("--include-embedding", "plan the embedding / lm_head too (default: they stay 4-bit, NUMERICS.md §2)");
  a.option("--ptq", "rtn", "how each matrix is quantized when its sensitivity is measured: rtn | gptq | awq "
           "(gptq / awq: calibrated on --calib, the matrix alone with the unquantized model's inputs)");
  add_calib_ptq_options(a);
  a.option("--threads", "0", "threads (0: all cores)");
  if (!a.parse(argc, argv)) return 0;
  apply_threads_option(a, 0, 4096);
  BudgetOptions bo;
  bo.budget = a.f64_in("budget", 0.5, 32);
  bo.with_scales = !a.on("no-scales");
  bo.method = a.str("method");
  // Checked again where they are used; here so a typo fails before minutes of measurement.
  if (bo.method != "auto" && bo.method != "knapsack" && bo.method != "closed-form")
    fail("--method: expected auto, knapsack or closed-form, got '%s'", bo.method.c_str());
  const std::string mode = a.str("sensitivity");
  if (mode != "loss" && mode != "proxy" && mode != "weight")
    fail("--sensitivity: expected loss, proxy or weight, got '%s'", mode.c_str());
  const PtqMethod method = parse_ptq_method(a.str("ptq"));
  RZ_CHECK(method == PtqMethod::Rtn || ptq_needs_calibration(method), "--ptq: plan takes rtn, gptq or awq, got '%s'",
           a.str("ptq").c_str());
  const CalibPtqOptions copt = calib_ptq_options(a, method);
  RZ_CHECK(method == PtqMethod::Rtn || a.str("from").empty(), "--ptq %s: not with --from (the costs are already measured)",
           a.str("ptq").c_str());
  const int group = int(a.i64_in("group", 1, 1 << 16));
  const float beta = float(a.f64_in("beta", 0.01, 100.0));

  std::vector<BudgetMatrix> ms;
  std::vector<double> rhos;
  std::unique_ptr<Model> m = Model::load(a.str("teacher"), /*trainable=*/false);
  if (!a.str("from").empty()) {
    BudgetPlan old = read_plan(a.str("from"));
    rhos = old.rhos;
    RZ_CHECK(!rhos.empty(), "%s: has no candidate rhos", a.str("from").c_str());
    for (const PlanEntry& e : old.entries) {
      RZ_CHECK(e.cost.size() == rhos.size(), "%s: %s: %zu costs for %zu rhos", a.str("from").c_str(), e.name.c_str(),
               e.cost.size(), rhos.size());
      const Param* p = m->find(e.name);
      RZ_CHECK(p && p->value.dim() == 2, "%s: tensor '%s' is not a matrix of %s", a.str("from").c_str(),
               e.name.c_str(), a.str("teacher").c_str());
      BudgetMatrix bm;
      bm.name = e.name;
      bm.d_out = p->value.size(0);
      bm.d_in = p->value.size(1);
      bm.sigma2 = e.sigma2;
      bm.cost = e.cost;
      for (double r : rhos) bm.cand.push_back(layout_from_rho(r, e.layout.group, e.layout.beta));
      ms.push_back(std::move(bm));
    }
    std::printf("costs from %s (%zu matrices)\n", a.str("from").c_str(), ms.size());
  } else {
    SensitivityOptions so;
    so.rhos = rhos = parse_rho_list(a.str("rhos"));
    so.group = group;
    so.beta = beta;
    so.include_embedding = a.on("include-embedding");
    so.mode = a.str("sensitivity");
    so.seq = int(a.i64_in("seq", 2, m->cfg.max_position_embeddings - 1));
    so.windows = a.i64_in("windows", 1, 1 << 20);
    std::unique_ptr<TokenShard> calib;
    if (so.mode != "weight") {
      PreparedData d = prepare_data(a.str("data"), a.str("teacher") + "/tokenizer.json", a.str("cache"));
      calib = std::make_unique<TokenShard>(d.train_shard);
    }
    // GPTQ / AWQ: each matrix's input statistics from the unquantized model, once; the factor
    // of each Hessian once per Hessian (q/k/v and gate/up share theirs).
    std::vector<LinearInputStats> stats;
    std::map<const void*, GptqFactor> factors;
    if (ptq_needs_calibration(method)) {
      QuantSpec none;
      stats = input_stats(*m, none, load_calib_set(a, a.str("teacher") + "/tokenizer.json", *m), copt);
      so.quantizer = [&](const Param& p, const Tensor& orig, Tensor& out, const WeightLayout& l) {
        const LinearInputStats* st = nullptr;
        for (const LinearInputStats& s : stats)
          if (s.name == p.name) st = &s;
        if (!st) {  // the embedding (--include-embedding): no input Hessian, RTN
          fake_quant_weight(p.name, orig, out, l);
          return;
        }
        if (method == PtqMethod::Awq) {
          out.copy_from(awq_single(p.name, orig, *st, l, copt.awq_grid));
          return;
        }
        auto it = factors.find(st->hessian.get());
        if (it == factors.end())
          it = factors.emplace(st->hessian.get(), gptq_factor(*st->hessian, orig.size(1), copt.gptq, p.name)).first;
        out.copy_from(gptq_quantize(p.name, orig, it->second, l, copt.gptq).dequantize());
      };
    }
    ms = measure_sensitivity(*m, calib.get(), so, [](int i, int n) {
      std::fprintf(stderr, "\rsensitivity: %d/%d matrices", i, n);
      if (i == n) std::fprintf(stderr, "\n");
    });
  }

  auto range = budget_range(ms, bo.with_scales);
  Allocation al = allocate_budget(ms, bo);

  // Achieved: the bit accounting of the model with the plan's layouts (bit_report), over the
  // planned matrices and over the whole model.
  QuantSpec spec;
  spec.plan = PrecisionPlan{0.125, group, beta};
  std::vector<MatrixEntry> planned_entries;
  for (size_t l = 0; l < ms.size(); ++l) {
    spec.overrides.push_back({ms[l].name, ms[l].cand[size_t(al.choice[l])]});
    planned_entries.push_back(MatrixEntry::make(ms[l].name, ms[l].d_out, ms[l].d_in, ms[l].cand[size_t(al.choice[l])]));
  }
  BitReport planned = bit_report(planned_entries);
  BitReport whole = bit_report(model_matrices(*m, spec));
  double achieved = bo.with_scales ? planned.avg_bits : planned.avg_bits_no_scales;

  BudgetPlan plan;
  plan.budget = bo.budget;
  plan.with_scales = bo.with_scales;
  plan.method = al.method;
  plan.predicted_bits = al.predicted_bits;
  plan.predicted_cost = al.predicted_cost;
  plan.rhos = rhos;
  std::printf("%-44s %5s %10s %9s  cost per rho (%s)\n", "tensor", "rho", "bits", "sigma2", a.str("rhos").c_str());
  for (size_t l = 0; l < ms.size(); ++l) {
    const BudgetMatrix& bm = ms[l];
    PlanEntry e;
    e.name = bm.name;
    e.layout = bm.cand[size_t(al.choice[l])];
    e.rho = rhos[size_t(al.choice[l])];
    e.d_out = bm.d_out;
    e.d_in = bm.d_in;
    e.sigma2 = bm.sigma2;
    e.cost = bm.cost;
    std::printf("%-44s %5s %10.4f %9.3g ", bm.name.c_str(), rho_label(e.rho).c_str(),
                candidate_bits(bm, al.choice[l], bo.with_scales), bm.sigma2);
    for (double c : bm.cost) std::printf(" %.4g", c);
    std::printf("\n");
    plan.entries.push_back(std::move(e));
  }
  write_plan(a.str("out"), plan);

  const char* sc = bo.with_scales ? "with scales" : "without scales";
  std::printf("\nbudget          %.4f bits/weight (%s), achievable %.4f .. %.4f\n", bo.budget, sc, range.first,
              range.second);
  std::printf("method          %s\n", al.method.c_str());
  std::printf("predicted bits  %.4f   achieved (bit_report) %.4f   difference %+.5f\n", al.predicted_bits, achieved,
              achieved - al.predicted_bits);
  std::printf("predicted cost  %.5g (knapsack %.5g, closed form %.5g at %.4f bits)\n", al.predicted_cost,
              al.knapsack_cost, al.closed_form_cost, al.closed_form_bits);
  std::printf("whole model     %s\n", whole.str().c_str());
  // The uniform baseline for the same budget: the largest rho = 1/P (any P) that fits.
  WeightLayout best = WeightLayout::ternary(group, beta);
  for (int64_t p = 1; p <= 4096; ++p) {
    WeightLayout l = p == 1 ? WeightLayout::uniform(4, group) : WeightLayout::mixed_rows(p, group, beta);
    if (uniform_bits(ms, l, bo.with_scales) <= bo.budget + 1e-9) {
      best = l;
      break;
    }
  }
  std::string urho = best.kind == LayoutKind::kTernary ? "0" : best.kind == LayoutKind::kInt4
                                                                  ? "1"
                                                                  : strfmt("1/%lld", (long long)best.period);
  std::printf("uniform         --rho %s fits: %.4f bits/weight (%s)\n", urho.c_str(),
              uniform_bits(ms, best, bo.with_scales), best.str().c_str());
  std::printf("plan            %s\n", a.str("out").c_str());
  return 0;
}

}  // namespace razor
