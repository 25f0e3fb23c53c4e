// `razor quantize`: post-training quantization baselines written as an HF checkpoint whose
// weights are the dequantized values (any tool can evaluate it).
#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/ptq_calib.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/json.h"
#include "nn/ptq_model.h"
#include "io/file_util.h"

namespace razor {

int cmd_quantize(int argc, char** argv) {
  ArgParser a(argv[0],
              "Post-training quantization (RTN, RTN with second-moment rescale, PTQTP trit-planes, GPTQ, AWQ) of an HF "
              "checkpoint. Writes an HF checkpoint of dequantized weights; `razor pack` re-derives the integers "
              "from latent weights with the same quantizer (for gptq / awq, --latent writes weights it re-derives "
              "exactly).");
  a.option("-m,--model", "data/teacher", "HF checkpoint directory");
  a.option("-o,--out", "", "output directory (required)");
  a.option("--bits", "1.88", "4 | 2.79 | 1.88 | 1.58 (super-group plan) or 3 | 2 (uniform)");
  a.option("--rho", "", "rho instead of --bits");
  a.option("--group", "64", "group size G");
  a.option("--beta", "2.0", "ternary scale factor");
  a.option("--ptq", "rtn", "rtn | rtn-gamma | ptqtp | asym (calibrated range + zero point) | log2 (power of two "
           "with sign) | gptq | awq (calibrated on --calib); asym / log2 take --bits 2..8");
  a.option("--plan", "", "bit-budget plan from `razor plan` (per-tensor layouts; other tensors follow --bits)");
  add_calib_ptq_options(a);
  a.flag("--latent", "gptq / awq: write weights whose RTN re-quantization (razor pack, eval --bits) gives exactly "
         "the quantized integers and scales, instead of the dequantized values");
  a.option("--threads", "0", "threads (0: all cores)");
  if (!a.parse(argc, argv)) return 0;
  if (a.str("out").empty()) fail("razor quantize: -o/--out is required");
  apply_threads_option(a, 0, 4096);
  PtqMethod method = parse_ptq_method(a.str("ptq"));
  const CalibPtqOptions copt = calib_ptq_options(a, method);
  RZ_CHECK(!a.on("latent") || ptq_needs_calibration(method), "--latent: only with --ptq gptq or awq (got --ptq %s)",
           ptq_method_name(method));
  std::unique_ptr<Model> m = Model::load(a.str("model"), false);
  QuantSpec spec = quant_spec_option(a, a.str("bits"), method, *m);
  CalibSet calib;
  if (ptq_needs_calibration(method)) calib = load_calib_set(a, a.str("model") + "/tokenizer.json", *m);
  std::vector<std::pair<std::string, QuantizedWeight>> qw;
  const auto t0 = std::chrono::steady_clock::now();
  PtqReport rep = apply_ptq(*m, spec, method, &calib, &copt, a.on("latent") ? &qw : nullptr);
  if (ptq_needs_calibration(method))
    print_calib_report(rep.calib, method, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  set_rtn_preimages(*m, qw);
  BitReport br = ptq_bit_report(*m, spec, method);
  m->save(a.str("out"));
  std::string tok = a.str("model") + "/tokenizer.json";
  if (path_exists(tok)) write_file_atomic(a.str("out") + "/tokenizer.json", read_file(tok));
  std::printf("%s %s: %d tensors, weight rel. error %.4f, %.4f bits/weight (%.4f without scales), %.2f%% of "
              "parameters quantized -> %s\n",
              ((a.str("plan").empty() ? "" : "plan " + a.str("plan") + " + ") + spec.str()).c_str(), ptq_method_name(method), rep.tensors, rep.rel_error, br.avg_bits,
              br.avg_bits_no_scales, 100 * br.quantized_share, a.str("out").c_str());
  return 0;
}

}  // namespace razor
