// Post-training quantization of a whole model (NUMERICS.md §9): every quantizable weight is
// replaced by its dequantized RTN / RTN+gamma / PTQTP value under a QuantSpec's layouts, so
// the plain forward computes the quantized model and any tool can read the checkpoint.
// Also parses the precision names the CLI accepts ("4", "2.79", "1.88", "1.58", rho "1/8",
// and the uniform baselines "3", "2").
#pragma once
#include <string>

#include "nn/calib_ptq.h"
#include "nn/model.h"
#include "nn/quant_hooks.h"

namespace razor {

// Asym / Log2 (quant/asym.h) read the bits of each tensor's layout (uniform n-bit, int4, int8)
// and need a spec with uniform_bits (make_quant_spec with bits "2".."8").
// Gptq / Awq need calibration sequences (nn/calib_ptq.h) and take the same specs as Rtn.
enum class PtqMethod { Rtn, RtnGamma, Ptqtp, Asym, Log2, Gptq, Awq };
inline bool ptq_needs_calibration(PtqMethod m) { return m == PtqMethod::Gptq || m == PtqMethod::Awq; }
PtqMethod parse_ptq_method(const std::string& s, const char* option = "--ptq");
const char* ptq_method_name(PtqMethod m);

// --bits / --rho / --group / --beta -> spec. bits "2" or "3" select uniform n-bit absmax
// linears (PTQ baselines); otherwise the EdgeRazor super-group plan. With method Asym / Log2,
// bits must be an integer 2..8 (every linear n-bit; embedding / lm_head 4-bit).
QuantSpec make_quant_spec(const std::string& bits, const std::string& rho, int group, double beta,
                          PtqMethod method = PtqMethod::Rtn);
// Loads a `razor plan` file into spec.overrides, checked against the model's tensors.
void apply_plan_file(QuantSpec& spec, const Model& m, const std::string& path);

// bit_report of the model under spec; for Asym also the n-bit zero point of every group; for
// PTQTP the second ternary plane and its scale on every ternary row (2 log2 3 + 32/G bits).
BitReport ptq_bit_report(const Model& m, const QuantSpec& spec, PtqMethod method);

struct PtqReport {
  int tensors = 0;
  double rel_error = 0;  // sqrt(Σ(w-ŵ)²/Σw²) over every quantized tensor
  CalibPtqReport calib;  // Gptq / Awq only
};
// Gptq / Awq need calib and copt (an error otherwise); the other methods ignore them.
// qweights (Gptq / Awq): each quantized matrix's codes and scales.
PtqReport apply_ptq(Model& m, const QuantSpec& spec, PtqMethod method, const CalibSet* calib = nullptr,
                    const CalibPtqOptions* copt = nullptr,
                    std::vector<std::pair<std::string, QuantizedWeight>>* qweights = nullptr);
// The latent weights `razor quantize --latent` writes: each matrix named in qweights (apply_ptq's
// Gptq / Awq output) set to the preimage whose RTN gives back its codes and scales.
void set_rtn_preimages(Model& m, const std::vector<std::pair<std::string, QuantizedWeight>>& qweights);

}  // namespace razor
