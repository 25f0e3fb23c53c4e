// GGUF metadata -> razor: the model config (ModelConfig from llama.cpp's <arch>.* hparams; llama3
// rope scaling recovered from the `rope_freqs.weight` factors), the tokenizer (tokenizer.ggml.*
// gpt2 byte-level BPE -> a tokenizer.json razor's tokenizer loads) and a tokenizer_config.json
// (chat template, special token texts, add_bos/add_eos), plus GGUF -> Hugging Face tensor names.
// This is the inverse of the metadata half of gguf/export.
//
// What comes back exactly: every integer hparam, the token list, types, merges and special ids.
// rope.freq_base and the rms epsilon are f32 in GGUF; they come back as the shortest decimal that
// rounds to the same f32 (1e-6 stays 1e-6; the forward computes with the f32 value either way).
// Deliberately not here: tensor data (gguf/import), SentencePiece ("llama") tokenizers,
// rope scaling other than llama3 (linear, YaRN, LongRoPE: refused, naming the key).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "io/hf_config.h"
#include "nn/tensor_table.h"  // hf_tensor_name

namespace razor {

// The ModelConfig a GGUF describes (arch qwen3 or llama). rope_freqs: the f32 factors of
// `rope_freqs.weight` when the file has one (llama3 scaling), else empty. vocab: rows of
// token_embd. tied: whether the file lacks output.weight. Errors name the file and the key.
ModelConfig gguf_model_config(const GgufFile& f, int64_t vocab, bool tied, const std::vector<float>& rope_freqs);

// Tokenizer files rebuilt from tokenizer.ggml.*.
struct GgufTokenizer {
  std::string tokenizer_json;         // model BPE, vocab + merges, added tokens, pre-tokenizer
  std::string tokenizer_config_json;  // bos/eos/pad token texts, add_bos/add_eos, chat_template
  std::string pre;                    // tokenizer.ggml.pre as razor names it: qwen2, llama-bpe, gpt-2
  int64_t n_tokens = 0, n_vocab = 0, n_added = 0, n_unused = 0, n_merges = 0;
  bool chat_template = false;
  std::string summary() const;  // one line for reports
};
// Throws naming the file and key for a missing or non-gpt2 tokenizer, an unknown pre-tokenizer,
// a duplicate token, an unknown token type or special ids outside the token list.
GgufTokenizer gguf_tokenizer(const GgufFile& f);

// llama3 rope scaling parameters that reproduce the factors of rope_freqs.weight (each within
// a relative 1e-5 of rope_freq_factors of the result); throws naming `what` when none do.
RopeScaling llama3_scaling_from_factors(const std::vector<float>& factors, double rope_theta, int64_t head_dim,
                                        const std::string& what);

// The shortest decimal that rounds to the same f32 as v (1e-6f -> 1e-6).
double shortest_decimal(float v);

}  // namespace razor
