// Post-training quantization of a whole model (NUMERICS.md §9): every quantizable weight is
// replaced by its dequantized RTN / RTN+gamma / PTQTP value under a QuantSpec's layouts, so
// the plain forward computes the quantized model and any tool can read the checkpoint.
// Also parses the precision names the CLI accepts ("4", "2.79", "1.88", "1.58", rho "1/8",
// and the uniform baselines "3", "2").
#pragma once
#include <string>

#include "nn/model.h"
#include "nn/quant_hooks.h"

namespace razor {

enum class PtqMethod { Rtn, RtnGamma, Ptqtp };
PtqMethod parse_ptq_method(const std::string& s, const char* option = "--ptq");
const char* ptq_method_name(PtqMethod m);

// --bits / --rho / --group / --beta -> spec. bits "2" or "3" select uniform n-bit absmax
// linears (PTQ baselines); otherwise the EdgeRazor super-group plan.
QuantSpec make_quant_spec(const std::string& bits, const std::string& rho, int group, double beta);

struct PtqReport {
  int tensors = 0;
  double rel_error = 0;  // sqrt(Σ(w-ŵ)²/Σw²) over every quantized tensor
};
PtqReport apply_ptq(Model& m, const QuantSpec& spec, PtqMethod method);

}  // namespace razor
