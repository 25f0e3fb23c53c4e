// Helpers shared by model tests: a temporary directory and tiny configurations.
#pragma once
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "io/hf_config.h"

namespace razor {

// A fresh directory under /tmp, removed (with its files) at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/razor_test_XXXXXX";
    char* p = mkdtemp(tmpl);
    path = p ? p : "/tmp";
  }
  ~TempDir() {
    if (path.rfind("/tmp/razor_test_", 0) == 0) {
      std::string cmd = "rm -rf '" + path + "'";
      if (std::system(cmd.c_str()) != 0) {
      }
    }
  }
};

// A tiny qwen3 (q/k norm, GQA 4:2, head_dim != hidden/heads) or llama config.
inline ModelConfig tiny_config(bool tied, const std::string& type = "qwen3") {
  ModelConfig c;
  c.model_type = type;
  c.vocab_size = 37;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = type == "qwen3" ? 6 : 4;
  c.intermediate_size = 24;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = tied;
  c.max_position_embeddings = 64;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

// A config with these sizes (V vocab, C hidden, L layers, H heads, K kv heads, D head dim,
// F FFN); the rest (RoPE, norms, tokens, context) as `base`.
inline ModelConfig shaped_config(ModelConfig base, int64_t V, int64_t C, int64_t L, int64_t H, int64_t K, int64_t D,
                                 int64_t F) {
  base.vocab_size = V;
  base.hidden_size = C;
  base.num_hidden_layers = L;
  base.num_attention_heads = H;
  base.num_key_value_heads = K;
  base.head_dim = D;
  base.intermediate_size = F;
  return base;
}

}  // namespace razor
