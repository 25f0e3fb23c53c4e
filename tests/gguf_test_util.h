// Helpers shared by the GGUF suites (tests/test_gguf.cpp, tests/test_gguf_import.cpp): a tiny
// byte-level BPE tokenizer.json and packed models of random codes and fp16 scales.
#pragma once
#include <string>
#include <vector>

#include "core/half.h"
#include "core/rng.h"
#include "gguf/export.h"
#include "infer/pack.h"
#include "io/json.h"
#include "io/tokenizer.h"

namespace razor {
namespace gguf_test {

// 6 BPE tokens, 2 merges, the Qwen2 split; added tokens 6, 7 (special) and 8 (not special).
inline const char* const kTokenizer = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 6, "content": "<|endoftext|>", "special": true},
    {"id": 7, "content": "<|im_end|>", "special": true},
    {"id": 8, "content": "<tool>", "special": false}
  ],
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120a": 4, "c": 5},
            "merges": ["a b", ["\u0120", "a"]]}
})";

// A packed model of random codes (every row's codes in its kind's range) and fp16 scales:
// qwen3 or llama, 2 layers, hidden 256, GQA 4/2, D = 64, FFN 512, vocab 32 (kTokenizer).
inline PackedMatrix random_packed_matrix(Rng& rng, PackedDesc d) {
  PackedMatrix probe;
  probe.desc = d;
  std::vector<int8_t> q(size_t(d.d_out * d.d_in));
  std::vector<float> s(size_t(d.d_out * (d.d_in / d.G)));
  for (int64_t r = 0; r < d.d_out; ++r) {
    const int mx = probe.row_kind(r) == RowKind::Int4 ? 7 : 1;
    for (int64_t k = 0; k < d.d_in; ++k) q[size_t(r * d.d_in + k)] = int8_t(int(rng.below(2 * mx + 1)) - mx);
  }
  for (float& x : s) x = round_to_f16(0.001f + 0.05f * rng.uniform());
  return pack_matrix(d, q.data(), s.data(), "test");
}

// vocab / tokenizer: the embedding rows and the tokenizer.json (default: 32 rows, kTokenizer).
inline PackedModel random_packed_model(const std::string& arch, PackedLayout lin, int G, int P = 0, int64_t vocab = 32,
                                       const std::string& tokenizer = kTokenizer) {
  PackedModel pm;
  ModelConfig& c = pm.cfg;
  c.model_type = arch;
  c.vocab_size = vocab, c.hidden_size = 256, c.num_hidden_layers = 2, c.num_attention_heads = 4;
  c.num_key_value_heads = 2, c.head_dim = 64, c.intermediate_size = 512, c.max_position_embeddings = 128;
  c.rope_theta = 1000000.0, c.tie_word_embeddings = false, c.bos_token_id = 6, c.eos_token_ids = {7};
  c.validate("test");
  pm.opt.plan.group = G;
  pm.opt.ternary5 = lin == PackedLayout::Ternary5;
  pm.tokenizer_json = tokenizer;
  Rng rng(99);
  auto desc = [&](PackedLayout l, int64_t o, int64_t i) {
    PackedDesc d;
    d.layout = l;
    d.P = l == PackedLayout::Mixed ? P : 0;
    d.G = G, d.d_out = o, d.d_in = i;
    return d;
  };
  auto norm = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = 1.0f + 0.1f * rng.normal();
    return v;
  };
  pm.embed = random_packed_matrix(rng, desc(PackedLayout::Int4, vocab, 256));
  pm.lm_head = random_packed_matrix(rng, desc(PackedLayout::Int4, vocab, 256));
  pm.layers.resize(2);
  for (PackedLayer& ly : pm.layers) {
    ly.attn_norm = norm(256), ly.mlp_norm = norm(256), ly.q_norm = norm(64), ly.k_norm = norm(64);
    ly.q = random_packed_matrix(rng, desc(lin, 256, 256));
    ly.k = random_packed_matrix(rng, desc(lin, 128, 256));
    ly.v = random_packed_matrix(rng, desc(lin, 128, 256));
    ly.o = random_packed_matrix(rng, desc(lin, 256, 256));
    ly.gate = random_packed_matrix(rng, desc(lin, 512, 256));
    ly.up = random_packed_matrix(rng, desc(lin, 512, 256));
    ly.down = random_packed_matrix(rng, desc(lin, 256, 512));
  }
  pm.final_norm = norm(256);
  return pm;
}

// A byte-level BPE tokenizer.json razor's tokenizer loads: ids 0..255 are the bytes (in byte
// order), 256 "ab", 257 "\u0120a" (" a"), then added tokens 258 <|endoftext|>, 259 <|im_end|>
// (special) and 260 <tool> (not special); Qwen2 split, NFC.
inline std::string byte_level_tokenizer() {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab.set_unchecked(byte_level_char(uint8_t(b)), int64_t(b));
  vocab.set_unchecked("ab", int64_t(256));
  vocab.set_unchecked(byte_level_char(' ') + "a", int64_t(257));
  std::string j = R"({"version": "1.0", "added_tokens": [
    {"id": 258, "content": "<|endoftext|>", "special": true},
    {"id": 259, "content": "<|im_end|>", "special": true},
    {"id": 260, "content": "<tool>", "special": false}],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "merges": ["a b", ["\u0120", "a"]], "vocab": )";
  return j + vocab.dump() + "}}";
}

// config.json of a one-layer model of architecture `arch`: C hidden, F FFN, H heads, K kv heads,
// D head dim (the keys every GGUF test model sets first; callers add the rest).
inline Json one_layer_config(const std::string& arch, int64_t C, int64_t F, int64_t H, int64_t K, int64_t D) {
  Json c = Json::object();
  c.set("model_type", arch);
  c.set("num_hidden_layers", 1);
  c.set("hidden_size", C);
  c.set("intermediate_size", F);
  c.set("num_attention_heads", H);
  c.set("num_key_value_heads", K);
  c.set("head_dim", D);
  return c;
}

// The norm weights of a one-layer model, all `ones`: C wide, the q/k norms (qwen3 only) D wide.
inline void add_one_layer_norms(std::vector<ExportTensor>& ts, const std::string& arch, int64_t C, int64_t D,
                                const float* ones) {
  const char* norms[] = {"model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
                         "model.norm.weight", "model.layers.0.self_attn.q_norm.weight",
                         "model.layers.0.self_attn.k_norm.weight"};
  for (const char* n : norms) {
    const bool qk = std::string(n).find("self_attn") != std::string::npos;
    if (qk && arch != "qwen3") continue;
    ExportTensor t;
    t.name = n;
    t.shape = {qk ? D : C};
    t.data = ones;
    ts.push_back(t);
  }
}

}  // namespace gguf_test
}  // namespace razor
