// razor export --gguf: writes a model as GGUF for llama.cpp (gguf/export does the work).
// Sources: a packed .razor student (-m; razor's integers and scales, never re-quantized, read
// back and compared after writing: gguf/export_packed) or a Hugging Face directory (--hf,
// exported in float).
#include <cstdio>
#include <memory>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "infer/generate.h"
#include "gguf/export_packed.h"
#include "gguf/export.h"
#include "io/json.h"
#include "nn/model.h"

namespace razor {

static bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

int cmd_export(int argc, char** argv) {
  ArgParser ap(argv[0],
               "Exports a model as a GGUF file for llama.cpp (architectures qwen3 and llama; tokenizer as gpt2 "
               "byte-level BPE). Every tensor is written in the GGUF type that holds razor's integers and scales "
               "exactly; a table reports the type of each tensor and what had to be widened.");
  ap.option("--gguf", "", "output GGUF file (written atomically)");
  ap.option("--hf", "", "Hugging Face model directory (config.json, model.safetensors, tokenizer.json)");
  ap.option("-m,--model", "", "packed .razor model (default when neither -m nor --hf: newest runs/*/student.razor)");
  ap.option("--ternary", "auto",
            "GGUF type of all-ternary tensors with G = 256: tq2_0, tq1_0, or auto (tq1_0 when the .razor stores them "
            "in 5 trits, else tq2_0)");
  ap.option("--tokenizer", "", "tokenizer.json to write (default: the one inside the .razor / the --hf directory)");
  ap.option("--tokenizer-config", "", "tokenizer_config.json (chat template, special tokens; default: the one inside the .razor / --hf DIR's)");
  ap.option("--float-type", "f32", "GGUF type for unquantized matrices: f32 (exact), f16 or bf16");
  ap.option("--tokenizer-pre", "", "llama.cpp tokenizer.ggml.pre name (default: detected: qwen2, llama-bpe, gpt-2)");
  ap.option("--name", "razor", "general.name");
  ap.flag("--quiet", "do not print the per-tensor table");
  ap.flag("--no-verify", "-m: do not read the written file back to compare it with razor's integers and scales");
  if (!ap.parse(argc, argv)) return 0;
  if (!ap.given("gguf")) fail("--gguf: required (the output file)");
  if (ap.given("model") && ap.given("hf")) fail("--model and --hf: give one of them");
  ExportOptions opt;
  const std::string ft = ap.str("float-type");
  if (ft == "f32") opt.float_matrix_type = GgmlType::kF32;
  else if (ft == "f16") opt.float_matrix_type = GgmlType::kF16;
  else if (ft == "bf16") opt.float_matrix_type = GgmlType::kBF16;
  else fail("--float-type: '%s' is not f32, f16 or bf16", ft.c_str());
  opt.tokenizer_pre = ap.str("tokenizer-pre");
  opt.model_name = ap.str("name");
  Json tok_cfg;
  if (ap.given("tokenizer-config")) {
    tok_cfg = Json::parse(read_file(ap.str("tokenizer-config")), ap.str("tokenizer-config"));
    opt.tokenizer_config = &tok_cfg;
  }
  const std::string tok_override = ap.given("tokenizer") ? read_file(ap.str("tokenizer")) : std::string();

  if (!ap.given("hf")) {
    std::string path = ap.str("model");
    if (path.empty()) path = latest_student();
    if (path.empty()) fail("--model: none given and no runs/*/student.razor found; pass -m FILE or --hf DIR");
    const PackedModel pm = PackedModel::load(path);
    const std::string tern = ap.str("ternary");
    if (tern == "auto") opt.ternary_type = default_ternary_type(pm);
    else if (tern == "tq2_0") opt.ternary_type = GgmlType::kTQ2_0;
    else if (tern == "tq1_0") opt.ternary_type = GgmlType::kTQ1_0;
    else fail("--ternary: '%s' is not tq2_0, tq1_0 or auto", tern.c_str());
    GgufVerify check;
    ExportReport rep =
        export_packed_gguf(ap.str("gguf"), pm, tok_override, opt, ap.on("no-verify") ? nullptr : &check);
    std::string text = rep.text();
    if (ap.on("quiet")) text = text.substr(text.rfind('\n', text.size() - 2) + 1);
    std::printf("razor export: %s (%s%s%s) -> %s\n", path.c_str(), pm.opt.plan.str().c_str(), pm.opt.a8 ? ", A8" : "",
                pm.opt.kv8 ? ", KV8" : "", ap.str("gguf").c_str());
    std::fputs(text.c_str(), stdout);
    if (rep.n_widened())
      std::printf("widened: %d tensors are stored in a wider GGUF type than their razor layout needs (reasons above); "
                  "the values are unchanged\n",
                  rep.n_widened());
    if (!ap.on("no-verify")) {
      std::printf("%s\n", check.text().c_str());
      RZ_CHECK(check.exact(), "%s: the written file does not reproduce razor's integers and scales", ap.str("gguf").c_str());
    }
    return 0;
  }
  if (ap.str("ternary") != "auto") fail("--ternary: only for -m (an --hf export has no ternary tensors)");

  const std::string dir = ap.str("hf");
  const std::string tok_path = dir + "/tokenizer.json";
  if (tok_override.empty() && !file_exists(tok_path)) fail("%s: missing (GGUF needs the tokenizer)", tok_path.c_str());
  std::string tokenizer = tok_override.empty() ? read_file(tok_path) : tok_override;
  const std::string tc_path = dir + "/tokenizer_config.json";
  if (!opt.tokenizer_config && file_exists(tc_path)) {
    tok_cfg = Json::parse(read_file(tc_path), tc_path);
    opt.tokenizer_config = &tok_cfg;
  }
  Json config = Json::parse(read_file(dir + "/config.json"), dir + "/config.json");
  std::unique_ptr<Model> m = Model::load(dir, /*trainable=*/false);

  std::vector<ExportTensor> tensors;
  for (const Param& p : m->entries) {
    ExportTensor t;
    t.name = p.name;
    for (int i = 0; i < p.value.shape().nd; ++i) t.shape.push_back(p.value.shape()[i]);
    t.data = p.value.data();
    tensors.push_back(std::move(t));
  }
  ExportReport rep = export_gguf(ap.str("gguf"), config, tokenizer, tensors, opt);
  std::string text = rep.text();
  if (ap.on("quiet")) text = text.substr(text.rfind('\n', text.size() - 2) + 1);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace razor
