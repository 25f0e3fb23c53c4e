// GPTQ (Frantar et al., 2022) for one weight matrix on razor's exact grids (NUMERICS.md §1-2),
// plus the dense linear algebra it needs and the RTN preimage that makes any (codes, scales)
// packable by `razor pack`.
//
// Given W [d_out, d_in] and the Hessian H = 2·XᵀX/n of the matrix's calibration inputs
// X [n, d_in], GPTQ quantizes the input columns one at a time and spreads each column's
// rounding error over the columns not yet quantized so that the output error
// tr((W - Ŵ) H (W - Ŵ)ᵀ) = (2/n)·‖XWᵀ - XŴᵀ‖² stays small:
//   U = upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU), computed as J·L⁻¹·J from the lower Cholesky
//       factor L of the index-reversed H (J = reversal): one factorisation and one triangular
//       inverse instead of factor + inverse + factor;
//   for each column i: q_i = grid(w_i); e = (w_i - q_i) / U_ii; w_j -= e·U_ij for j > i,
//   with the updates inside a block of `block` columns applied eagerly and the rest of the row
//   updated once per block (lazy batch updates).
// razor's grids: each row uses its layout's format (int4 / n-bit absmax, ternary, the
// super-group mixed rows); a group's scale is computed with the quantizer's own rule (absmax or
// beta·mean|w|, rounded to fp16) from the row's *current* values of the group's G columns when
// the sweep first reaches one of them, and stays fixed; each column is then rounded on it
// (round half to even, clamped). With activation order the columns are visited by decreasing
// H_ii, and a group is entered at the first of its columns visited.
// Packable absmax groups: RTN of a dequantized absmax group reproduces its scale and codes only
// when some code reaches ±M; the element that set the scale at group entry therefore takes ±M
// (the sign of its current value) if rounding would give less, and GPTQ corrects the extra
// error on the later columns like any other. Ternary groups cannot be made RTN fixed points
// this way; rtn_preimage() gives weights whose RTN equals them instead.
//
// Deliberately not here: collecting X and accumulating H (nn/calib_ptq.h), the CLI.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/quantize.h"

namespace razor {

// In-place lower Cholesky factor of the symmetric a [n, n] (row-major, lower triangle read,
// upper triangle zeroed). Returns false when a pivot is not positive (not positive definite).
// Blocked, OpenMP over the trailing update.
bool cholesky_lower(std::vector<double>& a, int64_t n);
// In-place inverse of the lower-triangular l [n, n]. OpenMP over column blocks.
void invert_lower(std::vector<double>& l, int64_t n);

struct GptqOptions {
  double damp = 0.01;      // λ = damp · mean(diag H) added to the diagonal; ×10 while Cholesky fails
  bool act_order = false;  // visit columns by decreasing H_ii
  int block = 128;         // lazy-update block width (columns)
  bool packable = true;    // absmax groups: the scale-setting element takes ±M (see above)
};

// The factor a GPTQ sweep needs, computed once per Hessian (q/k/v share one, gate/up another).
struct GptqFactor {
  int64_t n = 0;
  std::vector<int64_t> perm;  // visiting order: perm[i] = original column of position i
  std::vector<float> u;       // [n, n] upper factor of (H + λI)⁻¹ in visiting order
  double damp = 0;            // the damping ratio finally used
  int raises = 0;             // how often it was raised because Cholesky failed
  int64_t dead = 0;           // columns whose H_ii was 0 (input always zero): H_ii set to 1
};

// h: [n, n] symmetric positive semi-definite (double). what names the matrix in messages; a
// raised damping is reported on stderr as "razor: warning: ...". Throws when the Hessian is
// not finite or stays indefinite up to damp = 1e3.
GptqFactor gptq_factor(const std::vector<double>& h, int64_t n, const GptqOptions& opt, const std::string& what);

struct GptqStats {
  int64_t forced = 0;  // absmax groups whose scale-setting element was moved to ±M
};

// w [d_out, d_in] -> codes and scales on layout's grids (d_in == f.n). OpenMP over row tiles.
QuantizedWeight gptq_quantize(const std::string& name, const Tensor& w, const GptqFactor& f,
                              const WeightLayout& layout, const GptqOptions& opt = {}, GptqStats* stats = nullptr);

// Weights whose quantize_weight under layout gives exactly q's codes and scales, so `razor pack`
// and any RTN re-quantization reproduce q. An absmax group with a ±M code is its own dequantized
// value; other groups get the nearest construction: ternary groups keep the sign pattern with
// non-zeros at a and zeros at b (a > s/2 ≥ b ≥ 0) chosen so that beta·mean|w| = s; absmax groups
// without a ±M code (not produced by packable GPTQ) and all-non-zero ternary groups with
// beta·mean ≠ s cannot be represented and throw naming the tensor and row. Checked exactly
// (quantize_weight of the result is compared with q) before returning.
Tensor rtn_preimage(const std::string& name, const QuantizedWeight& q);

// tr((W - Ŵ) H (W - Ŵ)ᵀ) for w, wq [d_out, d_in], h [d_in, d_in]: the calibration output error
// (2/n)·‖XWᵀ - XŴᵀ‖² when h = 2XᵀX/n.
double hessian_error(const Tensor& w, const Tensor& wq, const std::vector<double>& h);

}  // namespace razor
