#include "train/sensitivity.h"

#include <cmath>
#include <map>

#include "core/error.h"
#include "quant/ptq.h"
#include "train/evaluate.h"

namespace razor {

bool is_planned(const Param& p, bool include_embedding) {
  if (p.kind == ParamKind::Norm) return false;
  if (p.kind == ParamKind::Embedding || p.name == "lm_head.weight") return include_embedding;
  return true;
}

namespace {

double variance(const Tensor& w) {
  double s = 0, s2 = 0;
  const int64_t n = w.numel();
  for (int64_t i = 0; i < n; ++i) {
    s += w[i];
    s2 += double(w[i]) * w[i];
  }
  double mean = s / double(n);
  return std::max(0.0, s2 / double(n) - mean * mean);
}

// E[x_j²] of every linear's input, keyed by the weight's name, over the calibration windows.
std::map<std::string, std::vector<double>> input_moments(Model& m, const TokenShard& calib, int T, int64_t windows) {
  auto acc = std::make_shared<std::map<std::string, std::pair<std::vector<double>, int64_t>>>();
  ModelHooks saved = m.hooks;
  m.hooks.input_transform_shared = false;  // recorded per site
  m.hooks.input_transform = [acc](const Var& x, const HookSite& site) -> Var {
    const Tensor& v = x.value();
    const int64_t d = v.size(v.dim() - 1), rows = v.numel() / d;
    auto& e = (*acc)[*site.name];
    if (e.first.empty()) e.first.assign(size_t(d), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < d; ++j) {
        double xv = v[r * d + j];
        e.first[size_t(j)] += xv * xv;
      }
    e.second += rows;
    return x;
  };
  eval_perplexity(m, calib, T, windows);
  m.hooks = saved;
  std::map<std::string, std::vector<double>> out;
  for (auto& kv : *acc) {
    std::vector<double> v = kv.second.first;
    for (double& x : v) x /= double(std::max<int64_t>(kv.second.second, 1));
    out[kv.first] = std::move(v);
  }
  return out;
}

}  // namespace

std::vector<BudgetMatrix> measure_sensitivity(Model& m, const TokenShard* calib, const SensitivityOptions& opt,
                                              const std::function<void(int, int)>& progress) {
  RZ_CHECK(opt.mode == "loss" || opt.mode == "proxy" || opt.mode == "weight",
           "--sensitivity: expected loss, proxy or weight, got '%s'", opt.mode.c_str());
  RZ_CHECK(opt.mode == "weight" || calib != nullptr, "--sensitivity %s: needs calibration data", opt.mode.c_str());
  RZ_CHECK(!opt.rhos.empty(), "bit budget: no candidate rho");
  std::vector<Param*> planned;
  for (Param& p : m.entries)
    if (is_planned(p, opt.include_embedding)) planned.push_back(&p);
  double base = 0;
  if (opt.mode == "loss") base = eval_perplexity(m, *calib, opt.seq, opt.windows).mean_nll;
  std::map<std::string, std::vector<double>> moments;
  if (opt.mode == "proxy") moments = input_moments(m, *calib, opt.seq, opt.windows);

  std::vector<BudgetMatrix> out;
  int done = 0;
  for (Param* p : planned) {
    BudgetMatrix bm;
    bm.name = p->name;
    bm.d_out = p->value.size(0);
    bm.d_in = p->value.size(1);
    bm.sigma2 = variance(p->value);
    Tensor orig = p->value.clone();
    for (double rho : opt.rhos) {
      WeightLayout l = layout_from_rho(rho, opt.group, opt.beta);
      check_quantizable(p->name, orig, l);
      bm.cand.push_back(l);
      if (opt.quantizer)
        opt.quantizer(*p, orig, p->value, l);
      else
        fake_quant_weight(p->name, orig, p->value, l);
      double cost = 0;
      if (opt.mode == "loss") {
        cost = eval_perplexity(m, *calib, opt.seq, opt.windows).mean_nll - base;
      } else if (opt.mode == "weight") {
        cost = sum_squared_error(orig, p->value);
      } else {
        // The embedding lookup has no input moments: weigh its rows by 1 (each row is one token).
        auto it = moments.find(p->name);
        const int64_t d_in = bm.d_in;
        for (int64_t i = 0; i < bm.d_out; ++i)
          for (int64_t j = 0; j < d_in; ++j) {
            double e = double(orig[i * d_in + j]) - p->value[i * d_in + j];
            cost += e * e * (it != moments.end() ? it->second[size_t(j)] : 1.0);
          }
      }
      bm.cost.push_back(cost);
      p->value.copy_from(orig);
    }
    out.push_back(std::move(bm));
    if (progress) progress(++done, int(planned.size()));
  }
  return out;
}

}  // namespace razor
