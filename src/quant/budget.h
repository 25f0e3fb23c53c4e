// Bit budgets (issue 11): per-matrix precision allocation under an average-bits budget, and
// the plan file that carries the result to `razor quantize | eval | train | pack`.
//
// The problem: matrices l = 1..n with n_l weights each; candidate layouts c (rho in
// {0, 1/8, 1/4, 1/2, 1}: mixed rows of 4-bit and ternary, NUMERICS.md §2) with bits b_l(c)
// per weight (scales included unless the budget says otherwise) and a measured predicted loss
// increase D_l(c) (quantizing only that matrix). Choose one c per matrix to
//   minimise Σ_l D_l(c_l)   subject to   Σ_l n_l b_l(c_l) <= B · Σ_l n_l.
// Two solvers:
//   - knapsack_exact: multiple-choice knapsack by dynamic programming over an integer weight.
//     For the mixed-rows family with one G per matrix, Σ n_l b_l = const + (4 - log2 3) · N4
//     where N4 = Σ (4-bit rows)·d_in is an integer, so the DP over N4 (divided by the gcd of
//     all candidates' N4) is exact, not an approximation of the budget.
//   - closed_form_bits: reverse water-filling for the model D_l(b) = n_l α_l σ_l² 2^(-2b):
//     b_l = ½ log2(α_l σ_l² / λ) clamped to the candidates' bit range, λ by bisection so that
//     Σ n_l b_l = B Σ n_l. allocate_closed_form fits α_l from the measured D_l, snaps b_l to
//     the candidates and repairs feasibility greedily.
// Deliberately not here: measuring D_l on a model (train/sensitivity.h), the CLI (cmd_plan).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "quant/quantize.h"

namespace razor {

// The candidate shares of 4-bit rows the planner chooses from, in increasing bits.
const std::vector<double>& budget_candidate_rhos();
// rho -> layout: P = period_from_rho(rho); 0 -> ternary, 1 -> int4, else mixed rows.
WeightLayout layout_from_rho(double rho, int group, float beta);
// "0", "1/8", "1/4", "1/2", "1" for exact 1/P, else "%.6g".
std::string rho_label(double rho);

// ---- generic multiple-choice knapsack (exact over integer weights)
struct KnapsackItem {
  std::vector<int64_t> weight;  // per candidate, >= 0
  std::vector<double> cost;     // per candidate
};
struct KnapsackResult {
  bool feasible = false;
  std::vector<int> choice;  // per item
  double cost = 0;
  int64_t weight = 0;
};
// Minimises Σ cost subject to Σ weight <= capacity, one candidate per item. Exact: the DP runs
// over every reachable integer weight (after dividing by the gcd of all weights). Throws when
// the reduced capacity would need more than max_states states (then coarsen the weights).
// Ties between (numerically, 1e-12 relative) equal costs: the largest total weight.
KnapsackResult knapsack_exact(const std::vector<KnapsackItem>& items, int64_t capacity,
                              int64_t max_states = int64_t(1) << 26);
// Exhaustive enumeration (tests; at most ~10^6 combinations).
KnapsackResult knapsack_brute_force(const std::vector<KnapsackItem>& items, int64_t capacity);

// ---- closed form (reverse water-filling)
// a[l] = α_l σ_l² (> 0), n[l] weights, bits clamped to [lo[l], hi[l]]; returns continuous b_l
// with Σ n_l b_l = budget Σ n_l (or every b_l at its bound when the budget is outside the range).
std::vector<double> closed_form_bits(const std::vector<double>& a, const std::vector<double>& n,
                                     const std::vector<double>& lo, const std::vector<double>& hi, double budget);

// ---- the allocation problem of a model
struct BudgetMatrix {
  std::string name;
  int64_t d_out = 0, d_in = 0;
  double sigma2 = 0;                // weight variance (reported; the closed form's σ²)
  std::vector<WeightLayout> cand;   // candidate layouts (same G, ternary / int4 / mixed rows)
  std::vector<double> cost;         // measured predicted loss increase per candidate
  int64_t params() const { return d_out * d_in; }
};

struct BudgetOptions {
  double budget = 1.9;        // average bits per weight over the planned matrices
  bool with_scales = true;    // count 16/G per weight (NUMERICS.md §2)
  std::string method = "auto";  // auto | knapsack | closed-form
};

struct Allocation {
  std::vector<int> choice;     // per matrix, index into cand
  std::string method;          // what produced `choice`
  double predicted_bits = 0;   // Σ n b / Σ n over the planned matrices (with or without scales)
  double predicted_cost = 0;   // Σ cost of the choice
  double knapsack_cost = 0, closed_form_cost = 0;  // both solvers' costs (NaN when not run)
  double closed_form_bits = 0;  // the closed form's snapped average bits
};

// Bits per weight of candidate c of m (with or without scales).
double candidate_bits(const BudgetMatrix& m, int c, bool with_scales);
// Minimum / maximum achievable average bits.
std::pair<double, double> budget_range(const std::vector<BudgetMatrix>& ms, bool with_scales);
// Costs made non-increasing in bits: cost(c) = min over candidates with no more bits. A measured
// loss that rises with more bits is calibration noise; this keeps the allocation spending the budget.
std::vector<BudgetMatrix> monotone_costs(std::vector<BudgetMatrix> ms, bool with_scales);
// Solves the allocation (on monotone_costs; predicted_cost is in those costs). Throws when the budget is below the minimum achievable (naming it).
Allocation allocate_budget(const std::vector<BudgetMatrix>& ms, const BudgetOptions& opt);
// The closed-form allocation alone (α fitted from the costs, snapped, repaired).
Allocation allocate_closed_form(const std::vector<BudgetMatrix>& ms, const BudgetOptions& opt);

// ---- plan file (JSON)
// {"format": "razor-plan", "version": 1, "budget": 1.9, "with_scales": true, "method": ...,
//  "predicted_bits": ..., "predicted_cost": ..., "rhos": [0, 0.125, ...],
//  "tensors": {"<HF name>": {"rho": "1/8", "layout": "mixed-rows", "period": 8, "group": 64,
//              "beta": 2, "bits": 1.89, "d_out": .., "d_in": .., "sigma2": .., "cost": [..]}}}
// Readers need only rho (or layout + period / bits) and group per tensor.
struct PlanEntry {
  std::string name;
  WeightLayout layout;
  double rho = 0;
  int64_t d_out = 0, d_in = 0;
  double sigma2 = 0;
  std::vector<double> cost;
};
struct BudgetPlan {
  double budget = 0;
  bool with_scales = true;
  std::string method;
  double predicted_bits = 0, predicted_cost = 0;
  std::vector<double> rhos;
  std::vector<PlanEntry> entries;
};
void write_plan(const std::string& path, const BudgetPlan& plan);
// Strict reader: errors name the file and tensor at fault.
BudgetPlan read_plan(const std::string& path);
// What `razor quantize | eval | train | pack` need: HF tensor name -> layout (QuantSpec::overrides).
std::vector<std::pair<std::string, WeightLayout>> load_plan(const std::string& path);

}  // namespace razor
