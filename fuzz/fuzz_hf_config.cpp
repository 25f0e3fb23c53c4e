// Fuzz target: ModelConfig::from_json on arbitrary JSON text. An accepted config must
// survive to_json -> from_json unchanged in every field razor uses.
#include "fuzz/fuzz_common.h"
#include "io/hf_config.h"
#include "tests/model_test_util.h"

using namespace razor;
using razor_fuzz::seed;

static void make_seeds(const std::string& dir) {
  ModelConfig qwen3;
  qwen3.model_type = "qwen3";
  ModelConfig c = shaped_config(qwen3, 512, 64, 2, 4, 2, 16, 128);
  c.tie_word_embeddings = true;
  c.bos_token_id = 1;
  c.eos_token_ids = {2, 3};
  c.validate();
  seed(dir, "qwen3.json", c.to_json().dump(2));
  c.model_type = "llama";
  c.head_dim = 0;
  c.eos_token_ids = {2};
  c.tie_word_embeddings = false;
  seed(dir, "llama.json", c.to_json().dump(2));
  seed(dir, "hf_style.json",
       "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":32000,\"hidden_size\":4096,"
       "\"num_hidden_layers\":32,\"num_attention_heads\":32,\"num_key_value_heads\":8,\"intermediate_size\":14336,"
       "\"rope_theta\":500000.0,\"rms_norm_eps\":1e-05,\"hidden_act\":\"silu\",\"attention_bias\":false,"
       "\"max_position_embeddings\":8192,\"bos_token_id\":128000,\"eos_token_id\":[128001,128009],"
       "\"rope_scaling\":null,\"torch_dtype\":\"bfloat16\"}");
}
RAZOR_FUZZ_INIT(make_seeds)

RAZOR_FUZZ_ONE_INPUT {
  Json j = Json::parse(razor_fuzz::as_text(data, size), "config.json");
  ModelConfig c = ModelConfig::from_json(j, "config.json");
  c.validate();
  ModelConfig d = ModelConfig::from_json(c.to_json(), "round-trip");
  if (d.vocab_size != c.vocab_size || d.hidden_size != c.hidden_size || d.num_hidden_layers != c.num_hidden_layers ||
      d.num_attention_heads != c.num_attention_heads || d.num_key_value_heads != c.num_key_value_heads ||
      d.head_dim != c.head_dim || d.intermediate_size != c.intermediate_size || d.model_type != c.model_type ||
      d.eos_token_ids != c.eos_token_ids || d.bos_token_id != c.bos_token_id) {
    std::fprintf(stderr, "config does not round-trip\n");
    std::abort();
  }
}
