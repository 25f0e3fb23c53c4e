// GGUF export of a razor model for llama.cpp (architectures `qwen3` and `llama`).
//
// Input is plain data so any source can call it: the HF config.json (as Json), the
// tokenizer.json text, optionally tokenizer_config.json (chat template, special tokens), and
// the tensors under their Hugging Face names, each either razor's integer form (int8 codes
// [d_out, d_in] + scales [d_out, d_in / G]) or floats (norms, unquantized matrices).
//
// What it writes:
//  - metadata as llama.cpp's loader reads it: general.architecture, <arch>.block_count,
//    .context_length, .embedding_length, .feed_forward_length, .attention.head_count(_kv),
//    .attention.key_length / value_length, .rope.freq_base, .rope.dimension_count,
//    .attention.layer_norm_rms_epsilon, .vocab_size; tokenizer.ggml.* for a gpt2-style byte-
//    level BPE (tokens in id order, token types, merges, special ids, chat template);
//  - tensors renamed to llama.cpp's names (token_embd, blk.N.attn_q, ..., output), each in
//    the GGUF type that holds razor's integers and scales exactly (gguf/blocks.h), and a
//    report of every tensor that had to be widened;
//  - for `llama` with llama3 rope scaling (Llama 3.1 / 3.2), the F32 tensor `rope_freqs.weight`
//    [head_dim / 2] of per-frequency divisors, as llama.cpp's converter writes it;
//  - for `llama` only, the q/k rows permuted the way llama.cpp's HF converter does (its rope
//    kernel pairs adjacent elements, HF's rotate-half pairs i with i + D/2; Qwen3 in llama.cpp
//    uses the HF "neox" layout, so nothing is permuted). A row permutation moves whole rows
//    with their scales, so it stays exact.
// Deliberately not here: reading .razor files or checkpoints (callers), rope scaling other than
// llama3 (linear, YaRN, LongRoPE: refused).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "io/hf_config.h"
#include "io/json.h"
#include "nn/tensor_table.h"  // gguf_tensor_name

namespace razor {

struct ExportTensor {
  std::string name;            // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // [d_out, d_in] (matrices) or [n] (norms)
  // razor integer form (codes != nullptr): codes [d_out, d_in], scales [d_out, d_in / group]
  const int8_t* codes = nullptr;
  const float* scales = nullptr;
  int group = 0;
  // Optional declared row kinds, one per row: 2 = ternary (|q| <= 1), 4 = int4 (|q| <= 7),
  // 8 = int8 (|q| <= 127). Codes are checked against them; they name the layout in the report.
  std::vector<uint8_t> row_bits;
  // floats (codes == nullptr): [numel]
  const float* data = nullptr;
};

struct ExportOptions {
  std::string arch;                              // "" = from config.json model_type
  GgmlType ternary_type = GgmlType::kTQ2_0;      // or kTQ1_0
  GgmlType float_matrix_type = GgmlType::kF32;   // unquantized matrices: kF32, kF16 or kBF16
  uint32_t alignment = 32;
  std::string model_name = "razor";              // general.name
  std::string tokenizer_pre;                     // "" = detect from tokenizer.json's pre_tokenizer
  const Json* tokenizer_config = nullptr;        // tokenizer_config.json (optional)
};

struct ExportTensorReport {
  std::string hf_name, gguf_name;
  std::string layout;  // "ternary G=256", "mixed rows (16 of 128 rows 4-bit) G=64", "float", ...
  GgmlType type = GgmlType::kF32;
  bool exact = true;    // every value the model computes with is reproduced bit for bit
  bool widened = false;
  std::string note;     // why widened / rounded / permuted
  int64_t params = 0;
  uint64_t bytes = 0;
};

struct ExportReport {
  std::string arch, path;
  std::vector<ExportTensorReport> tensors;
  std::vector<std::string> notes;  // file-level remarks (tied output, tokenizer pre, padding)
  uint64_t tensor_bytes = 0;
  int64_t params = 0;
  int n_widened() const;
  int n_inexact() const;
  std::string text() const;  // human-readable table + summary
};

// Builds the GGUF image (metadata + tensors) without writing it.
GgufWriter build_gguf(const Json& config, const std::string& tokenizer_json, const std::vector<ExportTensor>& tensors,
                      const ExportOptions& opt, ExportReport* report);
// build_gguf + atomic write to `path`.
ExportReport export_gguf(const std::string& path, const Json& config, const std::string& tokenizer_json,
                         const std::vector<ExportTensor>& tensors, const ExportOptions& opt = {});

// llama.cpp's llama_ftype for a file whose matrices are mostly of type t (general.file_type).
uint32_t llama_ftype_of(GgmlType t);
// For arch `llama`: the source row of each destination row when q/k rows are permuted from HF's
// rotate-half order to llama.cpp's interleaved order; rows = n_head * head_dim.
std::vector<int64_t> rope_interleave_rows(int64_t n_head, int64_t head_dim);
// llama.cpp's rope_freqs factors of a config: frequency i is divided by factor i ([head_dim / 2];
// all 1 without rope scaling). The ratio of plain to scaled inverse frequencies of rope_inv_freq().
std::vector<float> rope_freq_factors(const ModelConfig& c);
// tokenizer.ggml.pre name for a tokenizer.json pre_tokenizer: "qwen2", "llama-bpe", "gpt-2";
// "" when unknown.
std::string detect_tokenizer_pre(const Json& tokenizer);

}  // namespace razor
