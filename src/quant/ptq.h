// Post-training quantization baselines (NUMERICS.md §9), on one weight matrix W [d_out, d_in]
// with no calibration data:
//   - RTN: the quantizers of quantize.h applied once (any WeightLayout: ternary, int4, int8,
//     mixed rows, uniform n-bit absmax for n = 2, 3, ...); returns the integers and scales.
//   - RTN + gamma: each group's dequantized values times gamma = sqrt(E[w^2] / E[ŵ^2])
//     (second moment preserved; gamma = 1 for a group quantized to all zeros).
//   - PTQTP trit-planes: each group ≈ a1·T1 + a2·T2 with T1, T2 ∈ {-1,0,1}^G, see ptqtp_group.
// The results are fp32 dequantized matrices; gamma and the trit-plane coefficients are fp32
// (not rounded to fp16): these are accuracy baselines, not packable formats.
//
// Deliberately not here: the `razor quantize` command and model traversal (src/cli, src/nn).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/quantize.h"

namespace razor {

// RTN = quantize_weight; named for the baseline tables.
QuantizedWeight rtn(const std::string& name, const Tensor& w, const WeightLayout& layout);
// RTN + gamma -> [d_out, d_in] dequantized and rescaled.
Tensor rtn_gamma(const std::string& name, const Tensor& w, const WeightLayout& layout);

struct PtqtpOptions {
  int max_iters = 50;        // alternations of (assignment, least squares)
  double rel_tol = 1e-4;     // stop when |e_prev - e| / e_prev < rel_tol
  double lambda0 = 1e-8;     // first ridge lambda; x10 until the 2x2 system is well conditioned
  double max_cond = 1e6;     // "well conditioned": condition number (eigenvalue ratio) <= max_cond
};

struct PtqtpTrace {
  std::vector<double> errors;  // squared error Σ(w - ŵ)^2: [0] after init, then after each iteration
  int iterations = 0;
  float a1 = 0, a2 = 0;
  std::vector<int8_t> t1, t2;  // [G]
};

// One group w [G] -> out [G] = a1·T1 + a2·T2.
// Deterministic init: T1 = RTN ternary codes of w with its (fp16) scale a1 = s1, T2 = RTN
// ternary codes of the residual w - s1·T1 with a2 = its scale. So the error starts at or below
// RTN ternary's (each non-zero residual code strictly reduces that element's error).
// Iteration: (a) per element, the best of the 9 (t1, t2) pairs for the current (a1, a2)
// (ties: the first in the order (0,0), (±1,0), (0,±1), (±1,±1)); (b) ridge least squares
// for (a1, a2), lambda from lambda0 upward x10 until cond <= max_cond; a (b) step that would
// raise the error (possible only through the ridge term) is not taken. The error never
// increases; stop at relative change < rel_tol or max_iters.
void ptqtp_group(const float* w, int group, float* out, const PtqtpOptions& opt = {}, PtqtpTrace* trace = nullptr);

struct PtqtpStats {
  int64_t groups = 0;
  double mean_iterations = 0;
  int max_iterations = 0;
};

// Whole matrix: rows whose layout format is ternary get trit-planes; 4-bit rows (int4 or the
// 4-bit rows of a mixed layout) and other absmax rows get RTN. OpenMP over rows.
Tensor ptqtp(const std::string& name, const Tensor& w, const WeightLayout& layout, const PtqtpOptions& opt = {},
             PtqtpStats* stats = nullptr);

// Σ(a - b)^2 with double accumulation (for baseline tables and tests).
double sum_squared_error(const Tensor& a, const Tensor& b);

}  // namespace razor
