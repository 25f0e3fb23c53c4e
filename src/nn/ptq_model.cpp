#include "nn/ptq_model.h"

#include <cmath>

#include "core/error.h"
#include "quant/asym.h"
#include "quant/budget.h"
#include "quant/gptq.h"
#include "quant/ptq.h"

namespace razor {

PtqMethod parse_ptq_method(const std::string& s, const char* option) {
  if (s == "rtn") return PtqMethod::Rtn;
  if (s == "rtn-gamma") return PtqMethod::RtnGamma;
  if (s == "ptqtp") return PtqMethod::Ptqtp;
  if (s == "asym") return PtqMethod::Asym;
  if (s == "log2") return PtqMethod::Log2;
  if (s == "gptq") return PtqMethod::Gptq;
  if (s == "awq") return PtqMethod::Awq;
  fail("%s: expected rtn, rtn-gamma, ptqtp, asym, log2, gptq or awq, got '%s'", option, s.c_str());
}

const char* ptq_method_name(PtqMethod m) {
  switch (m) {
    case PtqMethod::Rtn: return "rtn";
    case PtqMethod::RtnGamma: return "rtn-gamma";
    case PtqMethod::Ptqtp: return "ptqtp";
    case PtqMethod::Asym: return "asym";
    case PtqMethod::Log2: return "log2";
    case PtqMethod::Gptq: return "gptq";
    case PtqMethod::Awq: return "awq";
  }
  return "?";
}

QuantSpec make_quant_spec(const std::string& bits, const std::string& rho, int group, double beta,
                          PtqMethod method) {
  QuantSpec s;
  s.plan.group = group;
  s.plan.beta = float(beta);
  if (method == PtqMethod::Asym || method == PtqMethod::Log2) {
    RZ_CHECK(rho.empty(), "--ptq %s: takes --bits 2..8, not --rho", ptq_method_name(method));
    RZ_CHECK(bits.size() == 1 && bits[0] >= '2' && bits[0] <= '8', "--ptq %s: --bits must be an integer 2..8, got '%s'",
             ptq_method_name(method), bits.c_str());
    s.plan.rho = 1.0;
    s.uniform_bits = bits[0] - '0';
    return s;
  }
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

void apply_plan_file(QuantSpec& spec, const Model& m, const std::string& path) {
  for (auto& o : load_plan(path)) {
    const Param* p = m.find(o.first);
    RZ_CHECK(p != nullptr, "%s: tensor '%s' is not in the model", path.c_str(), o.first.c_str());
    if (o.second.quantized()) check_quantizable(o.first, p->value, o.second);
    spec.overrides.push_back(std::move(o));
  }
}

BitReport ptq_bit_report(const Model& m, const QuantSpec& spec, PtqMethod method) {
  std::vector<MatrixEntry> ms = model_matrices(m, spec);
  BitReport br = bit_report(ms);
  if (method == PtqMethod::Ptqtp && br.quantized_params > 0) {
    // The second plane (log2 3 bits) and its scale (16/G) for every ternary weight.
    double extra = 0, extra_ns = 0;
    for (const MatrixEntry& e : ms) {
      const WeightLayout& l = e.layout;
      if (e.shared || (l.kind != LayoutKind::kTernary && l.kind != LayoutKind::kMixedRows)) continue;
      double ternary = double(e.d_out - (l.kind == LayoutKind::kMixedRows ? l.rows_4bit(e.d_out) : 0)) * double(e.d_in);
      extra += ternary * (std::log2(3.0) + 16.0 / l.group);
      extra_ns += ternary * std::log2(3.0);
    }
    br.avg_bits += extra / double(br.quantized_params);
    br.avg_bits_no_scales += extra_ns / double(br.quantized_params);
    return br;
  }
  if (method != PtqMethod::Asym || br.quantized_params == 0) return br;
  double extra = 0;
  for (const MatrixEntry& e : ms)
    if (e.layout.quantized() && !e.shared) extra += double(e.d_out * e.d_in) * e.layout.bits / e.layout.group;
  br.avg_bits += extra / double(br.quantized_params);
  return br;
}

PtqReport apply_ptq(Model& m, const QuantSpec& spec, PtqMethod method, const CalibSet* calib,
                    const CalibPtqOptions* copt, std::vector<std::pair<std::string, QuantizedWeight>>* qweights) {
  PtqReport r;
  if (ptq_needs_calibration(method)) {
    RZ_CHECK(calib && copt, "--ptq %s: needs calibration sequences", ptq_method_name(method));
    r.calib = method == PtqMethod::Gptq ? gptq_model(m, spec, *calib, *copt, qweights)
                                        : awq_model(m, spec, *calib, *copt, qweights);
    r.tensors = r.calib.tensors;
    r.rel_error = r.calib.rel_error;
    return r;
  }
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
      case PtqMethod::Gptq:
      case PtqMethod::Awq: RZ_ASSERT(false); break;
      case PtqMethod::Asym:
      case PtqMethod::Log2:
        RZ_CHECK(l.kind == LayoutKind::kUniform || l.kind == LayoutKind::kInt4 || l.kind == LayoutKind::kInt8,
                 "%s: --ptq %s needs an n-bit layout (got %s)", p.name.c_str(), ptq_method_name(method),
                 l.str().c_str());
        q = calibrated_quant_weight(p.name, p.value,
                                    method == PtqMethod::Asym ? CalibratedKind::Asym : CalibratedKind::Log2, l.bits,
                                    l.group);
        break;
    }
    num += sum_squared_error(p.value, q);
    for (int64_t i = 0; i < p.value.numel(); ++i) den += double(p.value[i]) * p.value[i];
    p.value.copy_from(q);
    ++r.tensors;
  }
  r.rel_error = den > 0 ? std::sqrt(num / den) : 0.0;
  return r;
}

void set_rtn_preimages(Model& m, const std::vector<std::pair<std::string, QuantizedWeight>>& qweights) {
  for (const auto& q : qweights) m.find(q.first)->value.copy_from(rtn_preimage(q.first, q.second));
}

}  // namespace razor
