// GGUF -> packed model: a llama.cpp file (arch qwen3 / llama) imported into razor's PackedModel,
// exactly wherever the GGUF blocks already hold razor integers, re-quantized (and reported)
// where they do not.
//
// Exact: a block type (TQ2_0, TQ1_0, Q4_0, Q8_0) whose blocks, in every group of G weights of a
// row, share one scale |d| and whose codes lie in -7..7 (a block with d < 0 has its codes negated;
// a block with no non-zero code takes any scale). The group scale is that d and the codes are the
// block's, so no arithmetic touches the weights: q * s equals llama.cpp's d * q bit for bit, and
// the import checks this for every weight. G is the largest of 256, 128, 64 for which every
// exact-capable tensor qualifies (one G per model: the engine quantizes activations in groups of
// G), or 64 once anything needs re-quantizing, or --group. This is what razor's exporter writes
// (gguf/blocks.h), so razor -> GGUF -> razor gives back the same PackedModel.
// Layout of an exact tensor: codes all in -1..1 -> ternary (2 bits, or 5 trits for TQ1_0 sources
// or when asked); rows with wider codes exactly at multiples of some P >= 2 -> mixed rows P
// (razor's super-groups, exported as Q4_0); otherwise int4. The embedding and lm_head are always
// int4 (the engine's embedding lookup reads int4 rows).
// Re-quantized: F32 / F16 / BF16 matrices, and block tensors that fail the test above (Q4_0 with
// the code -8, which llama.cpp's own quantizer uses for the largest weight of every block, or
// scales that differ inside a group; Q8_0 codes beyond 7): dequantized as llama.cpp does (d * q)
// and quantized with razor's quantizer (NUMERICS.md §1) to int4, or ternary when asked, with the
// model's G. Each such tensor reports the max absolute and the relative RMS error against the
// dequantized GGUF values.
// Refused, naming the tensor: every other ggml type (K-quants, IQ*, Q4_1, Q5_*), tensors a
// qwen3 / llama model does not have, shapes that disagree with the metadata, non-finite scales,
// TQ2_0 fields that are not trits.
// Deliberately not here: the metadata / tokenizer rebuild (gguf/import_meta), the .razor file
// (infer/pack), the CLI (cli/cmd_import).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "infer/pack.h"
#include "gguf/gguf.h"

namespace razor {

struct ImportOptions {
  int group = 0;               // G: 64, 128 or 256; 0 = automatic (see above)
  bool requant_ternary = false;  // linears that need re-quantizing: ternary instead of int4
  float beta = 2.0f;           // ternary re-quantization: s = beta * mean|w|
  enum class Ternary { kAuto, k2bit, k5trit };
  Ternary ternary = Ternary::kAuto;  // storage of ternary tensors (auto: 5 trits for TQ1_0 sources)
};

struct ImportTensorReport {
  std::string gguf_name, hf_name;
  uint32_t gguf_type = 0;
  std::string layout;       // razor layout: "ternary2 G=256", "int4 G=64", "mixed8 G=64", "f32"
  bool exact = true;        // razor's q * s reproduces every dequantized GGUF value bit for bit
  std::string note;         // why re-quantized
  double max_abs_error = 0; // max |razor q * s - GGUF value|
  double rel_rms_error = 0; // sqrt(sum (q * s - w)^2 / sum w^2)
  int64_t params = 0;
};

struct ImportReport {
  std::string source, arch;
  int group = 0;
  std::vector<ImportTensorReport> tensors;
  std::vector<std::string> notes;
  int n_requantized() const;
  std::string text() const;  // the per-tensor table, notes and a summary line
};

// Builds the PackedModel a GGUF file holds (config, tokenizer.json, tokenizer_config.json, norms
// and every matrix). Throws razor::Error naming the file and the tensor or key at fault.
PackedModel import_gguf(const GgufFile& f, const ImportOptions& opt, ImportReport* rep);

}  // namespace razor
