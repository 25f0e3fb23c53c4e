#include "quant/budget.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "io/json.h"
#include "quant/plan.h"

namespace razor {

namespace {
const double kLog2_3 = std::log2(3.0);
const double kInf = std::numeric_limits<double>::infinity();
}  // namespace

const std::vector<double>& budget_candidate_rhos() {
  static const std::vector<double> r = {0.0, 0.125, 0.25, 0.5, 1.0};
  return r;
}

WeightLayout layout_from_rho(double rho, int group, float beta) {
  int64_t p = period_from_rho(rho);
  if (p == 0) return WeightLayout::ternary(group, beta);
  return WeightLayout::mixed_rows(p, group, beta);
}

std::string rho_label(double rho) {
  if (rho == 0) return "0";
  if (rho == 1) return "1";
  double p = 1.0 / rho;
  if (std::fabs(p - std::round(p)) < 1e-9) return strfmt("1/%lld", (long long)std::llround(p));
  return strfmt("%.6g", rho);
}

// ---------------------------------------------------------------- knapsack

KnapsackResult knapsack_exact(const std::vector<KnapsackItem>& items, int64_t capacity, int64_t max_states) {
  KnapsackResult r;
  if (capacity < 0) return r;
  int64_t g = 0;
  for (const KnapsackItem& it : items) {
    RZ_ASSERT(!it.weight.empty() && it.weight.size() == it.cost.size());
    for (int64_t w : it.weight) {
      RZ_ASSERT(w >= 0);
      g = std::gcd(g, w);
    }
  }
  if (g == 0) g = 1;
  // Every reachable total is a multiple of g, so flooring the capacity loses nothing.
  int64_t cap = capacity / g;
  int64_t max_total = 0;
  for (const KnapsackItem& it : items) max_total += *std::max_element(it.weight.begin(), it.weight.end()) / g;
  cap = std::min(cap, max_total);
  const int64_t S = cap + 1;
  if (S * int64_t(std::max<size_t>(items.size(), 1)) > max_states)
    fail("bit budget: the exact knapsack needs %lld x %lld states (over %lld)", (long long)items.size(),
         (long long)S, (long long)max_states);
  std::vector<double> dp(static_cast<size_t>(S), kInf);
  std::vector<double> nd(static_cast<size_t>(S), kInf);
  dp[0] = 0;
  // choice[i][w]: the candidate of item i on the best path reaching total w after item i.
  std::vector<std::vector<int8_t>> choice(items.size(), std::vector<int8_t>(size_t(S), -1));
  for (size_t i = 0; i < items.size(); ++i) {
    const KnapsackItem& it = items[i];
    RZ_ASSERT(it.weight.size() < 128);
    std::fill(nd.begin(), nd.end(), kInf);
    for (int64_t w = 0; w < S; ++w) {
      if (dp[size_t(w)] == kInf) continue;
      for (size_t c = 0; c < it.weight.size(); ++c) {
        int64_t w2 = w + it.weight[c] / g;
        if (w2 >= S) continue;
        double v = dp[size_t(w)] + it.cost[c];
        if (v < nd[size_t(w2)]) {
          nd[size_t(w2)] = v;
          choice[i][size_t(w2)] = int8_t(c);
        }
      }
    }
    dp.swap(nd);
  }
  double best_cost = kInf;
  for (int64_t w = 0; w < S; ++w) best_cost = std::min(best_cost, dp[size_t(w)]);
  if (best_cost == kInf) return r;
  // Among (numerically) equal costs, spend the budget: the largest total weight.
  const double tol = 1e-12 * std::fabs(best_cost) + 1e-300;
  int64_t best = -1;
  for (int64_t w = 0; w < S; ++w)
    if (dp[size_t(w)] <= best_cost + tol) best = w;
  r.feasible = true;
  r.cost = dp[size_t(best)];
  r.weight = best * g;
  r.choice.assign(items.size(), 0);
  int64_t w = best;
  for (size_t i = items.size(); i-- > 0;) {
    int c = choice[i][size_t(w)];
    RZ_ASSERT(c >= 0);
    r.choice[i] = c;
    w -= items[i].weight[size_t(c)] / g;
  }
  RZ_ASSERT(w == 0);
  return r;
}

KnapsackResult knapsack_brute_force(const std::vector<KnapsackItem>& items, int64_t capacity) {
  KnapsackResult r;
  std::vector<int> c(items.size(), 0);
  for (;;) {
    int64_t w = 0;
    double cost = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      w += items[i].weight[size_t(c[i])];
      cost += items[i].cost[size_t(c[i])];
    }
    if (w <= capacity && (!r.feasible || cost < r.cost)) {
      r.feasible = true;
      r.cost = cost;
      r.weight = w;
      r.choice = c;
    }
    size_t i = 0;
    while (i < items.size() && ++c[i] == int(items[i].weight.size())) c[i++] = 0;
    if (i == items.size()) break;
  }
  return r;
}

// ---------------------------------------------------------------- closed form

std::vector<double> closed_form_bits(const std::vector<double>& a, const std::vector<double>& n,
                                     const std::vector<double>& lo, const std::vector<double>& hi, double budget) {
  const size_t L = a.size();
  RZ_ASSERT(n.size() == L && lo.size() == L && hi.size() == L);
  double N = 0;
  for (double v : n) N += v;
  auto bits_at = [&](double log2_lambda, std::vector<double>* out) {
    double tot = 0;
    for (size_t l = 0; l < L; ++l) {
      double b = 0.5 * (std::log2(std::max(a[l], 1e-300)) - log2_lambda);
      b = std::min(std::max(b, lo[l]), hi[l]);
      if (out) (*out)[l] = b;
      tot += n[l] * b;
    }
    return tot / N;
  };
  // b_l decreases in lambda; bracket generously around every matrix's [lo, hi].
  double t_lo = kInf, t_hi = -kInf;
  for (size_t l = 0; l < L; ++l) {
    double la = std::log2(std::max(a[l], 1e-300));
    t_lo = std::min(t_lo, la - 2 * hi[l] - 1);
    t_hi = std::max(t_hi, la - 2 * lo[l] + 1);
  }
  for (int it = 0; it < 200; ++it) {
    double mid = 0.5 * (t_lo + t_hi);
    if (bits_at(mid, nullptr) > budget)
      t_lo = mid;
    else
      t_hi = mid;
  }
  std::vector<double> b(L);
  bits_at(t_hi, &b);  // the feasible side
  return b;
}

// ---------------------------------------------------------------- model allocation

double candidate_bits(const BudgetMatrix& m, int c, bool with_scales) {
  const WeightLayout& l = m.cand[size_t(c)];
  return with_scales ? l.weight_bits_with_scales(m.d_out) : l.weight_bits(m.d_out);
}

namespace {

// The exact integer form of the budget constraint: Σ n_l b_l = base + (4 - log2 3) N4.
struct IntegerBudget {
  std::vector<KnapsackItem> items;
  int64_t capacity = 0;  // in 4-bit weights
};

IntegerBudget integer_budget(const std::vector<BudgetMatrix>& ms, const BudgetOptions& opt) {
  IntegerBudget ib;
  double N = 0, base = 0;
  for (const BudgetMatrix& m : ms) {
    RZ_CHECK(!m.cand.empty() && m.cand.size() == m.cost.size(), "%s: candidates and costs differ in count",
             m.name.c_str());
    KnapsackItem it;
    const double n = double(m.params());
    const int G = m.cand[0].group;
    const double b0 = kLog2_3 + (opt.with_scales ? 16.0 / G : 0.0);
    for (size_t c = 0; c < m.cand.size(); ++c) {
      const WeightLayout& l = m.cand[c];
      RZ_CHECK(l.group == G && (l.kind == LayoutKind::kTernary || l.kind == LayoutKind::kInt4 ||
                                l.kind == LayoutKind::kMixedRows),
               "%s: budget candidates must be ternary / int4 / mixed rows with one G", m.name.c_str());
      int64_t n4 = l.rows_4bit(m.d_out) * m.d_in;
      double exact = candidate_bits(m, int(c), opt.with_scales) * n;
      RZ_ASSERT(std::fabs(exact - (b0 * n + (4 - kLog2_3) * double(n4))) <= 1e-6 * std::max(1.0, exact));
      it.weight.push_back(n4);
      it.cost.push_back(m.cost[c]);
    }
    ib.items.push_back(std::move(it));
    N += n;
    base += b0 * n;
  }
  double room = (opt.budget * N - base) / (4 - kLog2_3);
  // A budget equal to a layout's own average bits must admit that layout despite rounding.
  ib.capacity = room < 0 ? -1 : int64_t(std::floor(room * (1 + 1e-12) + 1e-6));
  return ib;
}

double total_bits(const std::vector<BudgetMatrix>& ms, const std::vector<int>& choice, bool with_scales) {
  double tb = 0, N = 0;
  for (size_t l = 0; l < ms.size(); ++l) {
    tb += candidate_bits(ms[l], choice[l], with_scales) * double(ms[l].params());
    N += double(ms[l].params());
  }
  return N > 0 ? tb / N : 0.0;
}

double total_cost(const std::vector<BudgetMatrix>& ms, const std::vector<int>& choice) {
  double c = 0;
  for (size_t l = 0; l < ms.size(); ++l) c += ms[l].cost[size_t(choice[l])];
  return c;
}

}  // namespace

std::vector<BudgetMatrix> monotone_costs(std::vector<BudgetMatrix> ms, bool with_scales) {
  for (BudgetMatrix& m : ms) {
    std::vector<double> c = m.cost;
    for (size_t i = 0; i < c.size(); ++i)
      for (size_t j = 0; j < c.size(); ++j)
        if (candidate_bits(m, int(j), with_scales) <= candidate_bits(m, int(i), with_scales))
          c[i] = std::min(c[i], m.cost[j]);
    m.cost = c;
  }
  return ms;
}

std::pair<double, double> budget_range(const std::vector<BudgetMatrix>& ms, bool with_scales) {
  double lo = 0, hi = 0, N = 0;
  for (const BudgetMatrix& m : ms) {
    double mn = kInf, mx = -kInf;
    for (size_t c = 0; c < m.cand.size(); ++c) {
      double b = candidate_bits(m, int(c), with_scales);
      mn = std::min(mn, b);
      mx = std::max(mx, b);
    }
    lo += mn * double(m.params());
    hi += mx * double(m.params());
    N += double(m.params());
  }
  return {N > 0 ? lo / N : 0, N > 0 ? hi / N : 0};
}

Allocation allocate_closed_form(const std::vector<BudgetMatrix>& ms, const BudgetOptions& opt) {
  IntegerBudget ib = integer_budget(ms, opt);
  const size_t L = ms.size();
  std::vector<double> a(L), n(L), lo(L), hi(L);
  for (size_t l = 0; l < L; ++l) {
    const BudgetMatrix& m = ms[l];
    // Least-squares fit of D(b) = A 2^(-2b) through the measured costs (negative ones are noise: 0).
    double su = 0, sd = 0;
    lo[l] = kInf;
    hi[l] = -kInf;
    for (size_t c = 0; c < m.cand.size(); ++c) {
      double b = candidate_bits(m, int(c), opt.with_scales);
      double u = std::exp2(-2 * b);
      su += u * u;
      sd += u * std::max(m.cost[c], 0.0);
      lo[l] = std::min(lo[l], b);
      hi[l] = std::max(hi[l], b);
    }
    n[l] = double(m.params());
    double A = su > 0 ? sd / su : 0;
    a[l] = std::max(A / n[l], 1e-300);  // α_l σ_l² per weight
  }
  std::vector<double> b = closed_form_bits(a, n, lo, hi, opt.budget);
  // Snap each b_l to the candidate with the nearest bits.
  Allocation r;
  r.method = "closed-form";
  r.choice.assign(L, 0);
  int64_t used = 0;
  for (size_t l = 0; l < L; ++l) {
    double best = kInf;
    for (size_t c = 0; c < ms[l].cand.size(); ++c) {
      double d = std::fabs(candidate_bits(ms[l], int(c), opt.with_scales) - b[l]);
      if (d < best - 1e-12) {
        best = d;
        r.choice[l] = int(c);
      }
    }
    used += ib.items[l].weight[size_t(r.choice[l])];
  }
  // Repair: while over the budget, take the cheapest (measured cost per 4-bit weight saved)
  // step down; then spend what is left on the best positive step up that fits.
  while (used > ib.capacity) {
    int bl = -1, bc = -1;
    double br = kInf;
    for (size_t l = 0; l < L; ++l) {
      const KnapsackItem& it = ib.items[l];
      int c0 = r.choice[l];
      for (size_t c = 0; c < it.weight.size(); ++c) {
        int64_t saved = it.weight[size_t(c0)] - it.weight[c];
        if (saved <= 0) continue;
        double ratio = (it.cost[c] - it.cost[size_t(c0)]) / double(saved);
        if (ratio < br) br = ratio, bl = int(l), bc = int(c);
      }
    }
    if (bl < 0) break;
    used -= ib.items[size_t(bl)].weight[size_t(r.choice[size_t(bl)])] - ib.items[size_t(bl)].weight[size_t(bc)];
    r.choice[size_t(bl)] = bc;
  }
  for (;;) {
    int bl = -1, bc = -1;
    double br = 0;
    for (size_t l = 0; l < L; ++l) {
      const KnapsackItem& it = ib.items[l];
      int c0 = r.choice[l];
      for (size_t c = 0; c < it.weight.size(); ++c) {
        int64_t extra = it.weight[c] - it.weight[size_t(c0)];
        if (extra <= 0 || used + extra > ib.capacity) continue;
        double ratio = (it.cost[size_t(c0)] - it.cost[c]) / double(extra);
        if (ratio > br) br = ratio, bl = int(l), bc = int(c);
      }
    }
    if (bl < 0) break;
    used += ib.items[size_t(bl)].weight[size_t(bc)] - ib.items[size_t(bl)].weight[size_t(r.choice[size_t(bl)])];
    r.choice[size_t(bl)] = bc;
  }
  r.predicted_bits = total_bits(ms, r.choice, opt.with_scales);
  r.predicted_cost = total_cost(ms, r.choice);
  r.closed_form_cost = r.predicted_cost;
  r.closed_form_bits = r.predicted_bits;
  r.knapsack_cost = NAN;
  return r;
}

Allocation allocate_budget(const std::vector<BudgetMatrix>& ms, const BudgetOptions& opt) {
  RZ_CHECK(!ms.empty(), "bit budget: no matrices to plan");
  RZ_CHECK(opt.method == "auto" || opt.method == "knapsack" || opt.method == "closed-form",
           "--method: expected auto, knapsack or closed-form, got '%s'", opt.method.c_str());
  auto range = budget_range(ms, opt.with_scales);
  IntegerBudget ib = integer_budget(monotone_costs(ms, opt.with_scales), opt);
  if (ib.capacity < 0)
    fail("--budget %.4g: below the minimum of %.4f bits per weight (every planned matrix ternary%s)", opt.budget,
         range.first, opt.with_scales ? ", scales included; try --no-scales or a larger --group" : "");
  Allocation cf = allocate_closed_form(monotone_costs(ms, opt.with_scales), opt);
  if (opt.method == "closed-form") return cf;
  KnapsackResult k = knapsack_exact(ib.items, ib.capacity);
  RZ_ASSERT(k.feasible);
  Allocation r;
  r.choice = k.choice;
  r.predicted_bits = total_bits(ms, r.choice, opt.with_scales);
  r.predicted_cost = k.cost;
  r.knapsack_cost = k.cost;
  r.closed_form_cost = cf.predicted_cost;
  r.closed_form_bits = cf.predicted_bits;
  r.method = "knapsack";
  // "The closed form where it applies": when its snapped solution is already optimal, use it.
  if (opt.method == "auto" && cf.predicted_cost <= k.cost + 1e-12 * std::fabs(k.cost)) {
    r.choice = cf.choice;
    r.predicted_bits = cf.predicted_bits;
    r.predicted_cost = cf.predicted_cost;
    r.method = "closed-form (optimal: equals the knapsack)";
  }
  return r;
}

// ---------------------------------------------------------------- plan file

namespace {

const char* layout_kind_name(LayoutKind k) {
  switch (k) {
    case LayoutKind::kNone: return "none";
    case LayoutKind::kTernary: return "ternary";
    case LayoutKind::kInt4: return "int4";
    case LayoutKind::kInt8: return "int8";
    case LayoutKind::kMixedRows: return "mixed-rows";
    case LayoutKind::kUniform: return "uniform";
  }
  return "?";
}

double layout_rho(const WeightLayout& l) {
  switch (l.kind) {
    case LayoutKind::kTernary: return 0;
    case LayoutKind::kInt4: return 1;
    case LayoutKind::kMixedRows: return 1.0 / double(l.period);
    default: return NAN;
  }
}

}  // namespace

void write_plan(const std::string& path, const BudgetPlan& plan) {
  Json j = Json::object();
  j.set("format", "razor-plan");
  j.set("version", 1);
  j.set("budget", Json(plan.budget));
  j.set("with_scales", Json(plan.with_scales));
  j.set("method", plan.method);
  j.set("predicted_bits", Json(plan.predicted_bits));
  j.set("predicted_cost", Json(plan.predicted_cost));
  Json rh = Json::array();
  for (double r : plan.rhos) rh.push_back(Json(r));
  j.set("rhos", rh);
  Json t = Json::object();
  for (const PlanEntry& e : plan.entries) {
    Json o = Json::object();
    double rho = layout_rho(e.layout);
    if (!std::isnan(rho)) o.set("rho", rho_label(rho));
    o.set("layout", layout_kind_name(e.layout.kind));
    if (e.layout.kind == LayoutKind::kMixedRows) o.set("period", Json(e.layout.period));
    if (e.layout.kind == LayoutKind::kUniform || e.layout.kind == LayoutKind::kInt8) o.set("bits", e.layout.bits);
    o.set("group", e.layout.group);
    o.set("beta", Json(double(e.layout.beta)));
    if (e.d_out > 0) {
      o.set("d_out", Json(e.d_out));
      o.set("d_in", Json(e.d_in));
      o.set("avg_bits", Json(e.layout.weight_bits_with_scales(e.d_out)));
    }
    o.set("sigma2", Json(e.sigma2));
    Json c = Json::array();
    for (double v : e.cost) c.push_back(Json(v));
    o.set("cost", c);
    t.set(e.name, o);
  }
  j.set("tensors", t);
  write_file_atomic(path, j.dump(1) + "\n");
}

BudgetPlan read_plan(const std::string& path) {
  Json j = Json::parse(read_file(path), path);
  RZ_CHECK(j.is_object() && j.get_string("format", "") == "razor-plan",
           "%s: not a razor plan file (format must be \"razor-plan\")", path.c_str());
  RZ_CHECK(j.get_int("version", 0) == 1, "%s: unsupported plan version %lld", path.c_str(),
           (long long)j.get_int("version", 0));
  BudgetPlan p;
  p.budget = j.get_double("budget", 0);
  p.with_scales = j.get_bool("with_scales", true);
  p.method = j.get_string("method", "");
  p.predicted_bits = j.get_double("predicted_bits", 0);
  p.predicted_cost = j.get_double("predicted_cost", 0);
  if (const Json* r = j.find("rhos"))
    for (const Json& v : r->items()) p.rhos.push_back(v.as_double("rhos"));
  const Json& t = j.at("tensors", path.c_str());
  RZ_CHECK(t.is_object(), "%s: tensors must be an object", path.c_str());
  for (const auto& kv : t.members()) {
    const std::string& name = kv.first;
    const Json& o = kv.second;
    std::string what = path + ": " + name;
    RZ_CHECK(o.is_object(), "%s: expected an object", what.c_str());
    for (const PlanEntry& e : p.entries) RZ_CHECK(e.name != name, "%s: listed twice", what.c_str());
    PlanEntry e;
    e.name = name;
    int64_t g = o.get_int("group", 64);
    RZ_CHECK(g >= 1 && g <= (1 << 16), "%s: group %lld out of range", what.c_str(), (long long)g);
    double beta = o.get_double("beta", 2.0);
    std::string kind = o.get_string("layout", "");
    if (kind.empty()) {
      RZ_CHECK(o.has("rho"), "%s: needs \"rho\" or \"layout\"", what.c_str());
      e.rho = parse_rho(o.at("rho").as_string(what.c_str()), what.c_str());
      e.layout = layout_from_rho(e.rho, int(g), float(beta));
    } else if (kind == "none") {
      e.layout = WeightLayout::none();
    } else if (kind == "ternary") {
      e.layout = WeightLayout::ternary(int(g), float(beta));
    } else if (kind == "int4") {
      e.layout = WeightLayout::uniform(4, int(g));
    } else if (kind == "int8") {
      e.layout = WeightLayout::uniform(8, int(g));
    } else if (kind == "mixed-rows") {
      int64_t per = o.get_int("period", 0);
      RZ_CHECK(per >= 2, "%s: mixed-rows needs \"period\" >= 2", what.c_str());
      e.layout = WeightLayout::mixed_rows(per, int(g), float(beta));
    } else if (kind == "uniform") {
      int64_t b = o.get_int("bits", 0);
      RZ_CHECK(b >= 2 && b <= 8, "%s: uniform needs \"bits\" in 2..8", what.c_str());
      e.layout = WeightLayout::uniform(int(b), int(g));
    } else {
      fail("%s: unknown layout '%s' (none, ternary, int4, int8, mixed-rows, uniform)", what.c_str(), kind.c_str());
    }
    if (e.layout.quantized()) e.layout.validate(what.c_str());
    e.rho = std::isnan(layout_rho(e.layout)) ? 0 : layout_rho(e.layout);
    e.d_out = o.get_int("d_out", 0);
    e.d_in = o.get_int("d_in", 0);
    e.sigma2 = o.get_double("sigma2", 0);
    if (const Json* c = o.find("cost"))
      for (const Json& v : c->items()) e.cost.push_back(v.as_double(what.c_str()));
    p.entries.push_back(std::move(e));
  }
  return p;
}

std::vector<std::pair<std::string, WeightLayout>> load_plan(const std::string& path) {
  std::vector<std::pair<std::string, WeightLayout>> out;
  for (const PlanEntry& e : read_plan(path).entries) out.push_back({e.name, e.layout});
  return out;
}

}  // namespace razor
