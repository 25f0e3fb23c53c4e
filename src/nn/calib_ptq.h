// Calibrated post-training quantization of a whole model: GPTQ (Frantar et al., 2022) and AWQ
// (Lin et al., 2023) on razor's grids (NUMERICS.md §1-2), driven by the model's own inputs to
// each linear on calibration sequences.
//
// Both walk the decoder block by block over all calibration sequences at once, keeping the
// residual stream [S·T, C] in memory and computing each block in stages (attention input ->
// q/k/v -> attention output -> o -> MLP input -> gate/up -> down input -> down), so one pass
// over the model costs one forward:
//   - GPTQ quantizes each group of linears that shares an input (q/k/v; o; gate/up; down; then
//     an untied lm_head) from the Hessian of that input *as computed through the layers already
//     quantized* (A8 applied to the inputs when the spec has A8, KV8 to K and V with KV8), then
//     writes the dequantized weights into the model.
//   - AWQ searches, per group, per-input-channel scales s = mean|x|^α (α on a grid, s clamped to
//     >= 1e-4 and normalised by sqrt(max·min)) minimising the group's output error on the
//     calibration data (q/k/v: the attention sub-block's output through o_proj; gate/up: the MLP
//     output; o, down: their own output), folds them exactly into the preceding op (RMSNorm
//     weight; up_proj's rows for down; v_proj's rows for o, one scale per (kv head, channel)
//     shared by the query heads of that kv head, so GQA stays exact; q/k-norm sits after q/k_proj
//     and is untouched), then quantizes every weight by RTN. The fold alone leaves the
//     unquantized model's function unchanged (up to fp32 rounding).
// The embedding (and a tied lm_head, which is the same matrix) keeps RTN: GPTQ's Hessian would
// only describe its lm_head role.
// Deliberately not here: choosing the calibration windows (train/calib.h), the CLI.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/model.h"
#include "nn/quant_hooks.h"
#include "quant/gptq.h"

namespace razor {

// h += scale · XᵀX for x [n, d] (fp32 sgemm; h is [d, d]; scale = 2/n_total gives H).
void hessian_accumulate(std::vector<float>& h, const float* x, int64_t n, int64_t d, float scale);

struct CalibSet {
  std::vector<int32_t> ids;  // S sequences of T tokens, row-major [S, T]
  int64_t S = 0, T = 0;
};

struct CalibPtqOptions {
  GptqOptions gptq;
  int awq_grid = 20;            // α in {0, 1/grid, ..., (grid-1)/grid}; α = 0 is plain RTN
  double awq_alpha = -1;        // >= 0: use this α for every group instead of searching (tests)
  int64_t awq_search_seqs = 8;   // sequences the α search evaluates (the mean|x| uses all)
  int64_t chunk_seqs = 8;        // sequences per attention / MLP chunk (memory bound)
  bool verbose = false;          // one line per block on stderr
};

struct CalibPtqReport {
  int tensors = 0;
  double rel_error = 0;     // sqrt(Σ(w-ŵ)²/Σw²) over every quantized weight (vs the input model)
  double damp_max = 0;      // GPTQ: the largest damping ratio used
  int damp_raises = 0;      // GPTQ: Cholesky failures that raised the damping
  int64_t forced = 0;       // GPTQ: absmax groups whose scale-setting element was moved to ±M
  std::vector<std::pair<std::string, double>> awq_alpha;  // AWQ: group name -> chosen α
  double seconds_hessian = 0, seconds_factor = 0, seconds_sweep = 0;  // GPTQ: wall time per phase
};

// Quantizes m in place (dequantized weights) with GPTQ / AWQ under spec's layouts (A8 / KV8
// change the calibration inputs as described above; the hooks themselves are not installed).
// qweights, when given, receives each quantized matrix's codes and scales by HF name.
CalibPtqReport gptq_model(Model& m, const QuantSpec& spec, const CalibSet& calib, const CalibPtqOptions& opt,
                          std::vector<std::pair<std::string, QuantizedWeight>>* qweights = nullptr);

// Searches and folds the AWQ scales into m (m's unquantized function is unchanged), without
// quantizing. Returns the α chosen per group.
std::vector<std::pair<std::string, double>> awq_fold(Model& m, const QuantSpec& spec, const CalibSet& calib,
                                                     const CalibPtqOptions& opt);
// awq_fold, then RTN of every weight under spec (in place, dequantized).
CalibPtqReport awq_model(Model& m, const QuantSpec& spec, const CalibSet& calib, const CalibPtqOptions& opt,
                         std::vector<std::pair<std::string, QuantizedWeight>>* qweights = nullptr);

// The input statistics of one linear of the unquantized model: H = 2·XᵀX/n and mean|x| per
// input channel (q/k/v and gate/up share theirs).
struct LinearInputStats {
  std::string name;  // HF weight name
  std::shared_ptr<std::vector<double>> hessian;   // [d_in, d_in]
  std::shared_ptr<std::vector<double>> mean_abs;  // [d_in]
};
// Every decoder linear's (and an untied lm_head's), for per-matrix sensitivities
// (`razor plan --ptq gptq | awq`).
std::vector<LinearInputStats> input_stats(const Model& m, const QuantSpec& spec, const CalibSet& calib,
                                          const CalibPtqOptions& opt);

// AWQ of one matrix alone, judged by its output error through H: the α on the grid minimising
// tr(E H Eᵀ), E = W - Q(W·diag(s))·diag(1/s); returns that dequantized, scale-divided weight
// (what the folded model computes, without A8). For sensitivities only.
Tensor awq_single(const std::string& name, const Tensor& w, const LinearInputStats& st, const WeightLayout& layout,
                  int grid);

}  // namespace razor
