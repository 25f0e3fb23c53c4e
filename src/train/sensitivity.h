// Per-matrix sensitivity for bit budgets (issue 11): for each planned weight matrix and each
// candidate layout, the predicted loss increase when only that matrix is quantized (RTN):
//   - loss:   the increase of the model's next-token loss (nats/token) on calibration windows;
//   - proxy:  the output error Σ_j E[x_j²] Σ_i (w_ij - ŵ_ij)² with E[x_j²] the second moment of
//             the matrix's input features over the calibration windows (one forward);
//   - weight: Σ (w - ŵ)² (no data).
// Also each matrix's weight variance σ². The result feeds allocate_budget (quant/budget.h).
// Deliberately not here: the allocation itself, the CLI.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nn/model.h"
#include "quant/budget.h"
#include "train/shards.h"

namespace razor {

struct SensitivityOptions {
  std::vector<double> rhos = budget_candidate_rhos();
  int group = 64;
  float beta = 2.0f;
  bool include_embedding = false;  // plan the embedding / lm_head too (else they stay 4-bit)
  std::string mode = "loss";       // loss | proxy | weight
  int seq = 128;                   // calibration window length
  int64_t windows = 8;             // calibration windows
  // When set, replaces RTN: out = p's weight orig quantized under layout (GPTQ / AWQ, `--ptq`).
  std::function<void(const Param& p, const Tensor& orig, Tensor& out, const WeightLayout& layout)> quantizer;
};

// True for the matrices a plan covers: decoder linears, plus embedding / lm_head when asked.
bool is_planned(const Param& p, bool include_embedding);

// Measures every planned matrix of m (restored afterwards). calib may be null for mode
// "weight". progress(i, n) is called after each matrix.
std::vector<BudgetMatrix> measure_sensitivity(Model& m, const TokenShard* calib, const SensitivityOptions& opt,
                                              const std::function<void(int, int)>& progress = nullptr);

}  // namespace razor
