// razor import --gguf IN.gguf -o OUT.razor: a llama.cpp GGUF (qwen3 / llama) into razor's packed
// format; gguf/import does the work (exact where the blocks hold razor integers,
// re-quantized with a per-tensor error report elsewhere). The written file is loaded back with
// razor's own .razor checks before the command reports success.
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "gguf/import.h"
#include "infer/pack.h"
#include "gguf/gguf.h"

namespace razor {

int cmd_import(int argc, char** argv) {
  ArgParser ap("razor import",
               "Imports a llama.cpp GGUF model (architectures qwen3 and llama, byte-level BPE tokenizer) into a "
               "packed .razor file: config, tokenizer.json and chat template, norms and every matrix. TQ2_0 / TQ1_0 "
               "become ternary and Q4_0 becomes int4 exactly when their blocks hold razor's integers (what razor "
               "export writes); F16 / BF16 / F32 / Q8_0 and other Q4_0 are re-quantized with razor's quantizer, "
               "and a table reports every tensor's layout and error. K-quants and other types are refused.");
  ap.option("--gguf", "", "input GGUF file");
  ap.option("-o,--output", "", "output .razor file (written atomically)");
  ap.option("--group", "auto",
            "group size G: auto (the largest of 256, 128, 64 at which every block tensor stays exact; 64 once "
            "anything is re-quantized), 64, 128 or 256");
  ap.option("--bits", "4",
            "precision of the linears that must be re-quantized: 4 (int4) or 1.58 (ternary); the embedding and "
            "lm_head are always int4");
  ap.option("--ternary", "auto", "storage of ternary tensors: auto (5 trits per byte for TQ1_0, else 2 bits), 2bit or 5trit");
  ap.flag("--quiet", "print only the summary, not the per-tensor table");
  if (!ap.parse(argc, argv)) return 0;
  RZ_CHECK(ap.given("gguf"), "--gguf: required (the input GGUF file)");
  RZ_CHECK(ap.given("output"), "--output: required (-o OUT.razor)");
  const std::string in = ap.str("gguf"), out = ap.str("output");
  ImportOptions opt;
  const std::string g = ap.str("group");
  if (g != "auto") {
    opt.group = int(ap.i64("group"));
    RZ_CHECK(opt.group == 64 || opt.group == 128 || opt.group == 256,
             "--group: %d not supported by the packed kernels (auto, 64, 128 or 256)", opt.group);
  }
  const std::string bits = ap.str("bits");
  RZ_CHECK(bits == "4" || bits == "1.58", "--bits: '%s' is not 4 or 1.58", bits.c_str());
  opt.requant_ternary = bits == "1.58";
  const std::string tern = ap.str("ternary");
  if (tern == "auto") opt.ternary = ImportOptions::Ternary::kAuto;
  else if (tern == "2bit") opt.ternary = ImportOptions::Ternary::k2bit;
  else if (tern == "5trit") opt.ternary = ImportOptions::Ternary::k5trit;
  else fail("--ternary: '%s' is not auto, 2bit or 5trit", tern.c_str());
  struct stat si, so;
  RZ_CHECK(!(::stat(in.c_str(), &si) == 0 && ::stat(out.c_str(), &so) == 0 && si.st_dev == so.st_dev &&
             si.st_ino == so.st_ino),
           "--output: %s is the input file", out.c_str());

  const GgufFile f = GgufFile::open(in);
  ImportReport rep;
  const PackedModel pm = import_gguf(f, opt, &rep);
  pm.save(out);
  const PackedModel back = PackedModel::load(out);  // the file as every razor command will read it
  std::string text = rep.text();
  if (ap.on("quiet")) text = text.substr(text.rfind('\n', text.size() - 2) + 1);
  std::printf("razor import: %s -> %s\n", in.c_str(), out.c_str());
  std::fputs(text.c_str(), stdout);
  if (rep.n_requantized())
    std::printf("re-quantized: %d matrices are not razor integers in the GGUF (reasons above); their errors are "
                "against llama.cpp's dequantized values\n",
                rep.n_requantized());
  std::printf("wrote %s: %.2f MiB, %s%s\n", out.c_str(), double(back.file_bytes) / 1048576.0,
              pm.opt.plan.str().c_str(), pm.tokenizer_config_json.empty() ? "" : ", with tokenizer_config.json");
  return 0;
}

}  // namespace razor
