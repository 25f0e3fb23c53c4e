// `razor quantize`: post-training quantization baselines written as an HF checkpoint whose
// weights are the dequantized values (any tool can evaluate it).
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/json.h"
#include "nn/ptq_model.h"
#include "io/file_util.h"

namespace razor {

int cmd_quantize(int argc, char** argv) {
  ArgParser a(argv[0],
              "Post-training quantization (RTN, RTN with second-moment rescale, PTQTP trit-planes) of an HF "
              "checkpoint. Writes an HF checkpoint of dequantized weights; `razor pack` re-derives the integers "
              "from latent weights with the same quantizer.");
  a.option("-m,--model", "data/teacher", "HF checkpoint directory");
  a.option("-o,--out", "", "output directory (required)");
  a.option("--bits", "1.88", "4 | 2.79 | 1.88 | 1.58 (super-group plan) or 3 | 2 (uniform)");
  a.option("--rho", "", "rho instead of --bits");
  a.option("--group", "64", "group size G");
  a.option("--beta", "2.0", "ternary scale factor");
  a.option("--ptq", "rtn", "rtn | rtn-gamma | ptqtp | asym (calibrated range + zero point) | log2 (power of two "
           "with sign); asym / log2 take --bits 2..8");
  a.option("--plan", "", "bit-budget plan from `razor plan` (per-tensor layouts; other tensors follow --bits)");
  a.option("--threads", "0", "threads (0: all cores)");
  if (!a.parse(argc, argv)) return 0;
  if (a.str("out").empty()) fail("razor quantize: -o/--out is required");
  int th = int(a.i64_in("threads", 0, 4096));
  apply_threads(th);
  std::unique_ptr<Model> m = Model::load(a.str("model"), false);
  PtqMethod method = parse_ptq_method(a.str("ptq"));
  QuantSpec spec = make_quant_spec(a.str("bits"), a.str("rho"), int(a.i64_in("group", 1, 1 << 16)),
                                   a.f64_in("beta", 0.01, 100.0), method);
  if (!a.str("plan").empty()) apply_plan_file(spec, *m, a.str("plan"));
  PtqReport rep = apply_ptq(*m, spec, method);
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
