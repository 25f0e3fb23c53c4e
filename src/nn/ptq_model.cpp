#include "nn/ptq_model.h"

#include <cmath>

#include "core/error.h"
#include "quant/ptq.h"

namespace razor {

PtqMethod parse_ptq_method(const std::string& s, const char* option) {
  if (s == "rtn") return PtqMethod::Rtn;
  if (s == "rtn-gamma") return PtqMethod::RtnGamma;
  if (s == "ptqtp") return PtqMethod::Ptqtp;
  fail("%s: expected rtn, rtn-gamma or ptqtp, got '%s'", option, s.c_str());
}

const char* ptq_method_name(PtqMethod m) {
  switch (m) {
    case PtqMethod::Rtn: return "rtn";
    case PtqMethod::RtnGamma: return "rtn-gamma";
    case PtqMethod::Ptqtp: return "ptqtp";
  }
  return "?";
}

QuantSpec make_quant_spec(const std::string& bits, const std::string& rho, int group, double beta) {
  QuantSpec s;
  s.plan.group = group;
  s.plan.beta = float(beta);
  if (!rho.empty()) {
    s.plan.rho = parse_rho(rho, "--rho");
  } else if (bits == "2" || bits == "3") {
    s.plan.rho = 1.0;
    int n = bits == "2" ? 2 : 3;
    s.uniform_bits = n;
  } else {
    s.plan.rho = parse_precision(bits, "--bits");
  }
  return s;
}

PtqReport apply_ptq(Model& m, const QuantSpec& spec, PtqMethod method) {
  PtqReport r;
  double num = 0, den = 0;
  for (Param& p : m.entries) {
    WeightLayout l = spec.layout_for(p.name, p.kind);
    if (!l.quantized()) continue;
    Tensor q;
    switch (method) {
      case PtqMethod::Rtn:
        q = Tensor::empty(p.value.shape());
        fake_quant_weight(p.name, p.value, q, l);
        break;
      case PtqMethod::RtnGamma: q = rtn_gamma(p.name, p.value, l); break;
      case PtqMethod::Ptqtp: q = ptqtp(p.name, p.value, l); break;
    }
    num += sum_squared_error(p.value, q);
    for (int64_t i = 0; i < p.value.numel(); ++i) den += double(p.value[i]) * p.value[i];
    p.value.copy_from(q);
    ++r.tensors;
  }
  r.rel_error = den > 0 ? std::sqrt(num / den) : 0.0;
  return r;
}

}  // namespace razor
