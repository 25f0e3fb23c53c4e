// razor export --gguf: writes a model as GGUF for llama.cpp (io/gguf_export does the work).
// Source today: a Hugging Face directory (--hf), exported in float (the quantized path from a
// packed .razor model calls export_gguf with razor's integers; see docs/gguf.md).
#include <cstdio>
#include <memory>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "io/gguf_export.h"
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
  ap.option("-m,--model", "", "packed .razor model (not wired yet: use --hf)");
  ap.option("--float-type", "f32", "GGUF type for unquantized matrices: f32 (exact), f16 or bf16");
  ap.option("--tokenizer-pre", "", "llama.cpp tokenizer.ggml.pre name (default: detected: qwen2, llama-bpe, gpt-2)");
  ap.option("--name", "razor", "general.name");
  ap.flag("--quiet", "do not print the per-tensor table");
  if (!ap.parse(argc, argv)) return 0;
  if (!ap.given("gguf")) fail("--gguf: required (the output file)");
  if (ap.given("model"))
    fail("--model: exporting a packed .razor model is not wired into this build yet; export the Hugging Face "
         "checkpoint with --hf DIR");
  if (!ap.given("hf")) fail("--hf: required (a Hugging Face model directory)");
  ExportOptions opt;
  const std::string ft = ap.str("float-type");
  if (ft == "f32") opt.float_matrix_type = GgmlType::kF32;
  else if (ft == "f16") opt.float_matrix_type = GgmlType::kF16;
  else if (ft == "bf16") opt.float_matrix_type = GgmlType::kBF16;
  else fail("--float-type: '%s' is not f32, f16 or bf16", ft.c_str());
  opt.tokenizer_pre = ap.str("tokenizer-pre");
  opt.model_name = ap.str("name");

  const std::string dir = ap.str("hf");
  const std::string tok_path = dir + "/tokenizer.json";
  if (!file_exists(tok_path)) fail("%s: missing (GGUF needs the tokenizer)", tok_path.c_str());
  std::string tokenizer = read_file(tok_path);
  Json tok_cfg;
  const std::string tc_path = dir + "/tokenizer_config.json";
  if (file_exists(tc_path)) {
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
