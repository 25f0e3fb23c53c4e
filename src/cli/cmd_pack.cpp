// `razor pack -m CKPT_DIR`: quantizes a latent-weight checkpoint (HF layout) with the precision
// plan and writes the packed .razor model (infer/pack.h); --stats prints the bit accounting.
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "infer/pack.h"
#include "nn/ptq_model.h"
#include "nn/quant_hooks.h"
#include "quant/budget.h"
#include "quant/plan.h"
#include "quant/quantize.h"
#include "io/json.h"
#include "io/tokenizer.h"
#include "nn/model.h"

namespace razor {

namespace {

void print_stats(const PackedModel& pm, uint64_t file_bytes) {
  std::printf("%-48s %-9s %14s %10s %10s %12s\n", "tensor", "layout", "shape", "bits/w", "+scales", "bytes");
  double wsum = 0, csum = 0, tsum = 0;
  for (const auto& e : pm.matrices()) {
    const PackedDesc& d = e.second->desc;
    const double n = double(d.d_out) * double(d.d_in);
    const double cb = double(e.second->codes.size()), sb = double(e.second->scales.size());
    std::string ln = layout_name(d.layout);
    if (d.layout == PackedLayout::Mixed) ln += std::to_string(d.P);
    const std::string shape = std::to_string(d.d_out) + "x" + std::to_string(d.d_in);
    std::printf("%-48s %-9s %14s %10.4f %10.4f %12.0f\n", e.first.c_str(), ln.c_str(), shape.c_str(), 8 * cb / n,
                8 * (cb + sb) / n, cb + sb);
    wsum += n, csum += cb, tsum += cb + sb;
  }
  std::printf("total: %.0f weights, %.4f bits/weight in codes, %.4f with fp16 scales (%.2f MiB packed)\n", wsum,
              8 * csum / wsum, 8 * tsum / wsum, tsum / 1048576.0);
  std::printf("bytes per decoded token (every linear, lm_head, one embedding row): %.2f MiB\n",
              double(pm.decode_bytes_per_token()) / 1048576.0);
  std::printf("file: %llu bytes (%.2f MiB)\n", (unsigned long long)file_bytes, double(file_bytes) / 1048576.0);
}

}  // namespace

int cmd_pack(int argc, char** argv) {
  ArgParser ap("razor pack",
               "Quantize a checkpoint's latent weights (Hugging Face layout) with the precision plan and write a "
               "packed .razor model: linears by super-groups of rows (rho), embedding and lm_head 4-bit, norms f32, "
               "plus config, tokenizer.json and tokenizer_config.json.");
  ap.option("-m,--model", "", "checkpoint directory (config.json, model.safetensors, tokenizer.json)");
  ap.option("--bits", "", "precision: 4, 2.79, 1.88 or 1.58 (or a rho); default 1.88");
  ap.option("--rho", "", "share of 4-bit rows: 1, 1/2, 1/8, 0, ... (alternative to --bits)");
  ap.option("--group", "64", "group size G: 64, 128 or 256 (default with --plan: the plan's)");
  ap.option("--plan", "", "bit-budget plan from `razor plan`: per-tensor layouts (other tensors follow --bits)");
  ap.option("--ternary", "2bit", "storage of all-ternary tensors: 2bit (fast) or 5trit (1.6 bits)");
  ap.option("-o,--output", "student.razor", "output file");
  ap.flag("--a8", "record that the student was trained with 8-bit activations");
  ap.flag("--kv8", "record that the student was trained with an 8-bit KV cache");
  ap.flag("--stats", "print per-tensor and total bits per weight, bytes per decoded token, file size");
  if (!ap.parse(argc, argv)) return 0;
  RZ_CHECK(ap.given("--model"), "--model: give the checkpoint directory (-m DIR)");
  RZ_CHECK(!(ap.given("--bits") && ap.given("--rho")), "--bits and --rho: give one of them");
  PackOptions opt;
  opt.plan.rho = ap.given("--rho") ? parse_rho(ap.str("--rho"), "--rho")
                                   : parse_precision(ap.given("--bits") ? ap.str("--bits") : "1.88", "--bits");
  opt.plan.group = int(ap.i64("--group"));
  const std::string dir = ap.str("--model");
  auto m = Model::load(dir, false);
  const std::string plan_path = ap.str("--plan");
  if (!plan_path.empty()) {
    QuantSpec spec;
    apply_plan_file(spec, *m, plan_path);  // names and shapes checked against the model
    RZ_CHECK(!spec.overrides.empty(), "%s: the plan lists no tensors", plan_path.c_str());
    if (!ap.given("--group")) opt.plan.group = spec.overrides.front().second.group;
    opt.overrides = spec.overrides;
  }
  RZ_CHECK(opt.plan.group == 64 || opt.plan.group == 128 || opt.plan.group == 256,
           "--group: %d not supported by the packed kernels (64, 128 or 256)", opt.plan.group);
  const std::string tern = ap.str("--ternary");
  RZ_CHECK(tern == "2bit" || tern == "5trit", "--ternary: \"%s\" is not 2bit or 5trit", tern.c_str());
  opt.ternary5 = tern == "5trit";
  opt.a8 = ap.on("--a8");
  opt.kv8 = ap.on("--kv8");

  PackedModel pm = pack_model(*m, opt);
  const std::string tj = dir + "/tokenizer.json";
  struct stat st;
  if (stat(tj.c_str(), &st) == 0) {
    pm.tokenizer_json = read_file(tj);
    Tokenizer::from_json(pm.tokenizer_json, tj);  // refuse to pack a tokenizer generate cannot load
  }
  const std::string tc = dir + "/tokenizer_config.json";  // chat template, for GGUF export
  if (stat(tc.c_str(), &st) == 0) {
    pm.tokenizer_config_json = read_file(tc);
    Json::parse(pm.tokenizer_config_json, tc);
  }
  const std::string out = ap.str("--output");
  pm.save(out);
  struct stat fs;
  const uint64_t fbytes = stat(out.c_str(), &fs) == 0 ? uint64_t(fs.st_size) : 0;
  std::printf("razor pack: %s -> %s (%s%s%s, %.2f MiB)\n", dir.c_str(), out.c_str(),
              plan_path.empty() ? "" : ("plan " + plan_path + " + ").c_str(), opt.plan.str().c_str(),
              pm.tokenizer_json.empty() ? ", no tokenizer.json" : "", double(fbytes) / 1048576.0);
  if (!plan_path.empty()) {
    // The plan's own measure: the average over the planned tensors (NUMERICS.md §2 accounting,
    // ternary at log2 3 bits), next to the bits the packed blocks actually take.
    std::vector<MatrixEntry> planned;
    double stored_bits = 0, n = 0;
    for (const auto& e : pm.matrices())
      for (const auto& o : opt.overrides)
        if (o.first == e.first) {
          planned.push_back(MatrixEntry::make(e.first, e.second->desc.d_out, e.second->desc.d_in, o.second));
          stored_bits += 8.0 * double(e.second->stream_bytes());
          n += double(e.second->desc.d_out) * double(e.second->desc.d_in);
        }
    const BitReport br = bit_report(planned);
    const BudgetPlan bp = read_plan(plan_path);
    std::printf("plan: %zu tensors at %.4f bits/weight with scales (plan predicted %.4f, budget %.4f); "
                "stored in %.4f bits/weight\n",
                planned.size(), br.avg_bits, bp.predicted_bits, bp.budget, n > 0 ? stored_bits / n : 0.0);
  }
  if (ap.on("--stats")) print_stats(pm, fbytes);
  return 0;
}

}  // namespace razor
