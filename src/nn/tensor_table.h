// The model's tensor table: every tensor a Llama / Qwen3 style decoder has, in Hugging Face
// order, with its HF name, its GGUF (llama.cpp) name, its shape from the config, its kind and
// the tie rule. The model's parameter layout (nn/model), packing and the .razor file
// (infer/pack), the GGUF export (gguf/export) and both GGUF imports (gguf/import_meta,
// gguf/import) read this table, so adding a tensor is one edit here: one row in kRoles
// (tensor_table.cpp) and, when it is conditional, one line in model_tensors.
//
// Tie rule: with tie_word_embeddings the table has no lm_head row; the head multiplies by the
// embedding (TensorRole::Embed), one parameter and one quantizer.
// q/k/v biases (Qwen2 and many fine-tunes) are listed when ModelConfig::attention_bias is set;
// each consumer refuses them with a clear error until the forward adds them.
// Deliberately not here: the parameter buffers (nn/model), how a tensor is quantized (quant/).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/hf_config.h"

namespace razor {

// embedding: the token table [V, C]; linear: a matrix of a block [d_out, d_in]; head: lm_head
// [V, C]; norm: an RMSNorm weight [n]; bias: a linear's bias [d_out].
enum class TensorKind { Embedding, Linear, Norm, Head, Bias };

enum class TensorRole {
  Embed, AttnNorm, Q, QBias, K, KBias, V, VBias, O, QNorm, KNorm, MlpNorm, Gate, Up, Down, FinalNorm, LmHead
};

struct TensorSpec {
  TensorRole role;
  TensorKind kind;
  int layer;                   // -1 outside the blocks
  std::string hf;              // "model.layers.3.self_attn.q_proj.weight"
  std::string gguf;            // "blk.3.attn_q.weight"
  std::vector<int64_t> shape;  // HF order: [d_out, d_in] or [n]
  // q / k rows (and biases): the heads whose rows llama.cpp's `llama` rope layout permutes
  // (gguf/export rope_interleave_rows); 0 for every other tensor.
  int64_t rope_heads = 0;
  bool matrix() const { return kind == TensorKind::Embedding || kind == TensorKind::Linear || kind == TensorKind::Head; }
};

// Every tensor of a model with config c, in HF order (embedding, per layer: input norm, q, k,
// v, o, q/k norms, post-attention norm, gate, up, down; final norm; lm_head unless tied).
// vocab: the embedding's rows (-1: c.vocab_size).
std::vector<TensorSpec> model_tensors(const ModelConfig& c, int64_t vocab = -1);

// HF tensor name <-> GGUF name, for any layer index ("" when the name is not a tensor of the
// table, e.g. rotary_emb.inv_freq). Layer numbers are normalised ("007" -> 7). Bias names map
// only with attention_bias (without it a bias is as foreign to the model as any unknown name).
std::string gguf_tensor_name(const std::string& hf_name, bool attention_bias = false);
std::string hf_tensor_name(const std::string& gguf_name, bool attention_bias = false);

// Throws razor::Error "<what>: <tensor>: q/k/v biases are not supported ..." for a bias row:
// the one place consumers refuse what the table lists but the forward does not compute.
void refuse_unsupported(const TensorSpec& t, const std::string& what);

}  // namespace razor
