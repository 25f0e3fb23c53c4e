#include "cli/ptq_calib.h"

#include <cstdio>

#include "core/error.h"
#include "train/calib.h"

namespace razor {

void add_calib_ptq_options(ArgParser& a) {
  a.option("--calib", "default", "gptq / awq calibration text: default | FILE.txt | FILE.ids | FILE.tok (training split)");
  a.option("--calib-sequences", "128", "gptq / awq: calibration sequences");
  a.option("--calib-seq", "256", "gptq / awq: tokens per calibration sequence");
  a.flag("--act-order", "gptq: quantize columns by decreasing Hessian diagonal");
  a.option("--damp", "0.01", "gptq: dampening, a fraction of the mean Hessian diagonal (raised when Cholesky fails)");
  a.option("--gptq-block", "128", "gptq: lazy-update block width in columns");
  a.option("--awq-grid", "20", "awq: alphas searched, 0, 1/N, ..., (N-1)/N");
  a.option("--awq-search-sequences", "8", "awq: calibration sequences the alpha search evaluates");
}

CalibPtqOptions calib_ptq_options(const ArgParser& a, PtqMethod method) {
  const char* name = ptq_method_name(method);
  for (const char* o : {"calib", "calib-sequences", "calib-seq"})
    RZ_CHECK(!a.given(o) || ptq_needs_calibration(method), "--%s: only with --ptq gptq or awq (got --ptq %s)", o, name);
  for (const char* o : {"act-order", "damp", "gptq-block"})
    RZ_CHECK(!a.given(o) || method == PtqMethod::Gptq, "--%s: only with --ptq gptq (got --ptq %s)", o, name);
  for (const char* o : {"awq-grid", "awq-search-sequences"})
    RZ_CHECK(!a.given(o) || method == PtqMethod::Awq, "--%s: only with --ptq awq (got --ptq %s)", o, name);
  CalibPtqOptions o;
  o.gptq.act_order = a.on("act-order");
  o.gptq.damp = a.f64_in("damp", 0.0, 10.0);
  o.gptq.block = int(a.i64_in("gptq-block", 1, 1 << 16));
  o.awq_grid = int(a.i64_in("awq-grid", 1, 1000));
  o.awq_search_seqs = a.i64_in("awq-search-sequences", 1, 1 << 20);
  a.i64_in("calib-sequences", 1, 1 << 20);
  a.i64_in("calib-seq", 1, 1 << 20);
  o.verbose = true;
  return o;
}

CalibSet load_calib_set(const ArgParser& a, const std::string& tokenizer_path, const Model& m) {
  const int64_t T = a.i64_in("calib-seq", 1, 1 << 20);
  RZ_CHECK(T <= m.cfg.max_position_embeddings, "--calib-seq: %lld tokens exceed the model's max_position_embeddings %lld",
           (long long)T, (long long)m.cfg.max_position_embeddings);
  return calibration_set(a.str("calib"), tokenizer_path, a.i64_in("calib-sequences", 1, 1 << 20),
                         a.i64_in("calib-seq", 1, 1 << 20));
}

QuantSpec quant_spec_option(const ArgParser& a, const std::string& bits, PtqMethod method, const Model& m) {
  QuantSpec spec =
      make_quant_spec(bits, a.str("rho"), int(a.i64_in("group", 1, 1 << 16)), a.f64_in("beta", 0.01, 100.0), method);
  if (!a.str("plan").empty()) apply_plan_file(spec, m, a.str("plan"));
  return spec;
}

void print_calib_report(const CalibPtqReport& r, PtqMethod method, double seconds) {
  if (method == PtqMethod::Gptq) {
    std::fprintf(stderr, "gptq: %d tensors in %.1f s (Hessians %.1f s, factors %.1f s, sweeps %.1f s, the rest "
                 "forwards); damping up to %g of the mean diagonal (%d raises); %lld absmax groups had their "
                 "scale-setting element moved to +-M\n",
                 r.tensors, seconds, r.seconds_hessian, r.seconds_factor, r.seconds_sweep, r.damp_max, r.damp_raises,
                 (long long)r.forced);
  } else if (method == PtqMethod::Awq) {
    std::fprintf(stderr, "awq: %d tensors in %.1f s; alpha per group:", r.tensors, seconds);
    for (const auto& g : r.awq_alpha) std::fprintf(stderr, " %s=%.2f", g.first.c_str(), g.second);
    std::fprintf(stderr, "\n");
  }
}

}  // namespace razor
