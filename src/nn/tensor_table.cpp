#include "nn/tensor_table.h"

#include "core/error.h"

namespace razor {

namespace {

// One row per tensor role, in HF order. hf / gguf: the whole name outside the blocks, else the
// part after "model.layers.N." / "blk.N.".
struct RoleRow {
  TensorRole role;
  TensorKind kind;
  bool per_layer;
  const char* hf;
  const char* gguf;
};

const RoleRow kRoles[] = {
    {TensorRole::Embed, TensorKind::Embedding, false, "model.embed_tokens.weight", "token_embd.weight"},
    {TensorRole::AttnNorm, TensorKind::Norm, true, "input_layernorm.weight", "attn_norm.weight"},
    {TensorRole::Q, TensorKind::Linear, true, "self_attn.q_proj.weight", "attn_q.weight"},
    {TensorRole::QBias, TensorKind::Bias, true, "self_attn.q_proj.bias", "attn_q.bias"},
    {TensorRole::K, TensorKind::Linear, true, "self_attn.k_proj.weight", "attn_k.weight"},
    {TensorRole::KBias, TensorKind::Bias, true, "self_attn.k_proj.bias", "attn_k.bias"},
    {TensorRole::V, TensorKind::Linear, true, "self_attn.v_proj.weight", "attn_v.weight"},
    {TensorRole::VBias, TensorKind::Bias, true, "self_attn.v_proj.bias", "attn_v.bias"},
    {TensorRole::O, TensorKind::Linear, true, "self_attn.o_proj.weight", "attn_output.weight"},
    {TensorRole::QNorm, TensorKind::Norm, true, "self_attn.q_norm.weight", "attn_q_norm.weight"},
    {TensorRole::KNorm, TensorKind::Norm, true, "self_attn.k_norm.weight", "attn_k_norm.weight"},
    {TensorRole::MlpNorm, TensorKind::Norm, true, "post_attention_layernorm.weight", "ffn_norm.weight"},
    {TensorRole::Gate, TensorKind::Linear, true, "mlp.gate_proj.weight", "ffn_gate.weight"},
    {TensorRole::Up, TensorKind::Linear, true, "mlp.up_proj.weight", "ffn_up.weight"},
    {TensorRole::Down, TensorKind::Linear, true, "mlp.down_proj.weight", "ffn_down.weight"},
    {TensorRole::FinalNorm, TensorKind::Norm, false, "model.norm.weight", "output_norm.weight"},
    {TensorRole::LmHead, TensorKind::Head, false, "lm_head.weight", "output.weight"},
};

// Whether config c has the tensor of role r.
bool present(const ModelConfig& c, TensorRole r) {
  switch (r) {
    case TensorRole::QBias: case TensorRole::KBias: case TensorRole::VBias: return c.attention_bias;
    case TensorRole::QNorm: case TensorRole::KNorm: return c.qk_norm();
    case TensorRole::LmHead: return !c.tie_word_embeddings;
    default: return true;
  }
}

std::vector<int64_t> shape_of(const ModelConfig& c, TensorRole r, int64_t V) {
  const int64_t C = c.hidden_size, HD = c.num_attention_heads * c.head_dim, KD = c.num_key_value_heads * c.head_dim,
                F = c.intermediate_size, D = c.head_dim;
  switch (r) {
    case TensorRole::Embed: case TensorRole::LmHead: return {V, C};
    case TensorRole::AttnNorm: case TensorRole::MlpNorm: case TensorRole::FinalNorm: return {C};
    case TensorRole::Q: return {HD, C};
    case TensorRole::QBias: return {HD};
    case TensorRole::K: case TensorRole::V: return {KD, C};
    case TensorRole::KBias: case TensorRole::VBias: return {KD};
    case TensorRole::O: return {C, HD};
    case TensorRole::QNorm: case TensorRole::KNorm: return {D};
    case TensorRole::Gate: case TensorRole::Up: return {F, C};
    case TensorRole::Down: return {C, F};
  }
  return {};
}

int64_t rope_heads_of(const ModelConfig& c, TensorRole r) {
  if (r == TensorRole::Q || r == TensorRole::QBias) return c.num_attention_heads;
  if (r == TensorRole::K || r == TensorRole::KBias) return c.num_key_value_heads;
  return 0;
}

// "<prefix>N.<rest>" with 1..4 digits N: true, the layer (normalised) and rest.
bool split_layer(const std::string& name, const std::string& prefix, std::string* layer, std::string* rest) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  size_t p = prefix.size(), q = p;
  while (q < name.size() && name[q] >= '0' && name[q] <= '9') ++q;
  if (q == p || q - p > 4 || q >= name.size() || name[q] != '.') return false;
  *layer = std::to_string(std::stoll(name.substr(p, q - p)));
  *rest = name.substr(q + 1);
  return true;
}

// Maps a name between the HF and GGUF columns (to_gguf: HF -> GGUF).
std::string map_name(const std::string& name, bool to_gguf, bool attention_bias) {
  for (const RoleRow& r : kRoles)
    if (!r.per_layer && name == (to_gguf ? r.hf : r.gguf)) return to_gguf ? r.gguf : r.hf;
  std::string layer, rest;
  if (!split_layer(name, to_gguf ? "model.layers." : "blk.", &layer, &rest)) return "";
  for (const RoleRow& r : kRoles)
    if (r.per_layer && (attention_bias || r.kind != TensorKind::Bias) && rest == (to_gguf ? r.hf : r.gguf))
      return (to_gguf ? "blk." : "model.layers.") + layer + "." + (to_gguf ? r.gguf : r.hf);
  return "";
}

}  // namespace

std::vector<TensorSpec> model_tensors(const ModelConfig& c, int64_t vocab) {
  const int64_t V = vocab < 0 ? c.vocab_size : vocab;
  std::vector<TensorSpec> out;
  auto add = [&](const RoleRow& r, int layer) {
    if (!present(c, r.role)) return;
    TensorSpec t;
    t.role = r.role;
    t.kind = r.kind;
    t.layer = layer;
    if (layer < 0) {
      t.hf = r.hf, t.gguf = r.gguf;
    } else {
      t.hf = "model.layers." + std::to_string(layer) + "." + r.hf;
      t.gguf = "blk." + std::to_string(layer) + "." + r.gguf;
    }
    t.shape = shape_of(c, r.role, V);
    t.rope_heads = rope_heads_of(c, r.role);
    out.push_back(std::move(t));
  };
  for (const RoleRow& r : kRoles)
    if (!r.per_layer && r.role == TensorRole::Embed) add(r, -1);
  for (int l = 0; l < int(c.num_hidden_layers); ++l)
    for (const RoleRow& r : kRoles)
      if (r.per_layer) add(r, l);
  for (const RoleRow& r : kRoles)
    if (!r.per_layer && r.role != TensorRole::Embed) add(r, -1);
  return out;
}

std::string gguf_tensor_name(const std::string& hf_name, bool attention_bias) {
  return map_name(hf_name, true, attention_bias);
}
std::string hf_tensor_name(const std::string& gguf_name, bool attention_bias) {
  return map_name(gguf_name, false, attention_bias);
}

void refuse_unsupported(const TensorSpec& t, const std::string& what) {
  if (t.kind == TensorKind::Bias)
    fail("%s: %s: q/k/v biases (attention_bias) are not supported yet: razor's attention adds no bias", what.c_str(),
         t.hf.c_str());
}

}  // namespace razor
