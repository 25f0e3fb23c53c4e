// ModelConfig: the architecture of a Llama / Qwen3 style decoder, read from and written to a
// Hugging Face config.json. Unknown fields of a loaded config are kept and written back
// unchanged; fields razor cannot honour (biases, non-SiLU activations, rope scaling other than
// Llama 3's) are refused with an error naming the field.
// Deliberately not here: tensors (nn/model), tokenizer settings (io/tokenizer).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/json.h"

namespace razor {

// `rope_scaling` (or transformers' newer `rope_parameters`): "default" (none) or "llama3"
// (Llama 3.1 / 3.2: long wavelengths divided by `factor`, short ones kept, a smooth blend
// between, exactly as transformers' _compute_llama3_parameters).
struct RopeScaling {
  std::string type = "default";
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type = "qwen3";  // "llama" or "qwen3" (qwen3 adds per-head q/k RMSNorm)
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;           // C
  int64_t num_hidden_layers = 0;     // L
  int64_t num_attention_heads = 0;   // H
  int64_t num_key_value_heads = 0;   // K
  int64_t head_dim = 0;              // D (HF default: hidden_size / num_attention_heads)
  int64_t intermediate_size = 0;     // F
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  // q/k/v biases (Qwen2 style). config.json's attention_bias: true is still refused at load;
  // set in code, the tensor table (nn/tensor_table) lists the biases and its readers refuse them.
  bool attention_bias = false;
  int64_t max_position_embeddings = 2048;
  int64_t bos_token_id = -1;          // -1: none
  std::vector<int64_t> eos_token_ids;  // config.json may hold an int or a list

  // The config.json this came from (unknown fields are written back); null for a fresh one.
  Json source;

  bool qk_norm() const { return model_type == "qwen3"; }
  // RoPE inverse frequencies [head_dim / 2]: theta^(-2i/D), then the rope scaling.
  std::vector<double> rope_inv_freq() const;
  // Throws razor::Error naming the field (prefixed by `what`, e.g. the file) on any
  // inconsistency: non-positive or implausibly large sizes (bounded so that no product of
  // sizes overflows int64), heads not dividing hidden_size (when head_dim is implied), kv
  // heads not dividing heads, odd head_dim, ids outside the vocabulary.
  void validate(const std::string& what = "config") const;

  static ModelConfig from_json(const Json& j, const std::string& what = "config.json");
  // path: a config.json file or a directory holding one.
  static ModelConfig load(const std::string& path);
  Json to_json() const;
  // Writes config.json (atomically) to path (a file path).
  void save(const std::string& path) const;
};

}  // namespace razor
