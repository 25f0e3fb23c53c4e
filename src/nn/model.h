// The decoder-only transformer family (Llama / Qwen3 style): token embedding, L blocks of
// [RMSNorm -> GQA attention with RoPE (and per-head q/k RMSNorm for qwen3) -> residual,
//  RMSNorm -> SwiGLU MLP -> residual], final RMSNorm, lm_head (tied to the embedding or not).
//
// Parameters live in ONE flat f32 buffer with named views in Hugging Face order and names;
// gradients live in a second flat buffer with the same layout (llm.c style), so zero-grad is
// one fill, an optimizer one loop over the buffer, and a checkpoint a few writes. Each view
// starts at a 64-byte aligned offset.
//
// The forward goes through the autograd ops; under NoGradGuard the same code is the
// inference path. Every linear (q/k/v/o, gate/up/down, lm_head) and the embedding lookup
// use their weight through ModelHooks::weight_transform and their input through
// ModelHooks::input_transform; K (after q/k-norm and RoPE) and V (as it leaves v_proj) pass
// through ModelHooks::kv_transform. Quantization-aware training plugs fake quantizers with
// STE in there; the default hooks are the identity and add nothing to the tape.
// Deliberately not here: quantizers (src/quant), losses (src/distill), optimizer and
// checkpoints with optimizer state (src/train), packed inference (src/infer).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/tensor.h"
#include "io/hf_config.h"
#include "nn/tensor_table.h"

namespace razor {

// A parameter's kind and role are those of its row in the tensor table (nn/tensor_table.h).
using ParamKind = TensorKind;

// Which linear (or the embedding lookup) a hook is applied to.
enum class LinearSite { Q, K, V, O, Gate, Up, Down, LmHead, Embedding };
const char* linear_site_name(LinearSite s);

struct HookSite {
  LinearSite site;
  int layer;                // -1 for the embedding and lm_head
  const std::string* name;  // the HF tensor name of the weight used (tied lm_head: the embedding's)
};

struct ModelHooks {
  // w [out, in] (embedding: [V, C]) -> the weight to use. Called once per use per forward;
  // with tied embeddings the embedding and lm_head call it with the same parameter (the
  // LmHead call gets the embedding's name), so a quantizer may cache per name.
  std::function<Var(const Var& w, const HookSite& site)> weight_transform;
  // x [.., in] -> the input a linear multiplies (A8). Not called for the embedding.
  std::function<Var(const Var& x, const HookSite& site)> input_transform;
  // The transform depends on x alone (A8), not on the site: linears that share an input (q/k/v,
  // gate/up) then share one call and its result. A hook that records per site keeps it false.
  bool input_transform_shared = false;
  // kv [B, T, K, D]; is_key: K after q/k-norm and RoPE, else V as it leaves v_proj.
  std::function<Var(const Var& kv, int layer, bool is_key)> kv_transform;
  // Called with a decoder linear's transformed weight right after the product that read it,
  // before anything later is recorded: a quantizer may release the value and record how to
  // make it again for the backward (which runs before the product's own backward).
  std::function<void(Var& w, const Var& latent, const HookSite& site)> weight_used;
  // A decoder linear's product computed another way: x is the input before input_transform,
  // xi and wi are linear's operands after the hooks. Returns linear(xi, wi) up to fp32
  // summation order with linear's backward (linear_given), or an undefined Var for linear.
  std::function<Var(const Var& x, const Var& xi, const Var& wi, const HookSite& site)> product;
};

// One named view of the flat buffers.
struct Param {
  std::string name;  // Hugging Face tensor name
  ParamKind kind;
  TensorRole role;
  int layer;         // -1 outside the blocks
  int64_t offset;    // in floats, into Model::params / Model::grads
  Tensor value;      // view of params
  Tensor grad;       // view of grads (undefined when not trainable)
  Var var;           // Var::param(value, grad), or a constant when not trainable
};

// Keys and values (after the KV hook) of the positions a forward_cached call has seen, per
// layer: incremental decoding of a checkpoint model (task evaluation's greedy generation).
struct KvCache {
  std::vector<std::vector<float>> k, v;  // per layer [len, K, D]
  int64_t len = 0;
};

struct ForwardResult {
  Var logits;                 // [B*T, V] (undefined from forward_to_head)
  Var head_x, head_w;         // forward_to_head: the lm_head's input [B*T, C] and weight [V, C], hooks applied
  std::vector<Var> hidden;    // when requested: L+1 entries of [B, T, C] (NUMERICS.md §6)
  Var last_layer;             // [B, T, C] residual stream after the last block (before the final norm)
};

class Model {
 public:
  // Allocates the buffers for cfg (validated) with zero values; see init_random / load.
  // trainable=false: no gradient buffer (inference, the teacher); parameters are constants.
  explicit Model(const ModelConfig& cfg, bool trainable = true);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Pretraining init from a seed: every matrix N(0, 0.02^2), every norm weight 1.
  void init_random(uint64_t seed, float std = 0.02f);

  // Loads config.json + model.safetensors (or model.safetensors.index.json shards) from an
  // HF directory. Missing, extra or mis-shaped tensors are errors naming every such tensor.
  static std::unique_ptr<Model> load(const std::string& dir, bool trainable = true);
  // Writes config.json + model.safetensors (F32 or BF16) into dir (created if absent).
  // Each file is written atomically.
  void save(const std::string& dir, bool bf16 = false) const;

  // ids: B*T token ids, row-major [B, T], each in [0, V). pos0: position of the first token.
  ForwardResult forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, bool want_hidden = false,
                        int64_t pos0 = 0) const;
  // The same forward up to the lm_head product, which it leaves to the caller (head_x, head_w
  // for distill/losses.h head_losses, which never holds all [B*T, V] logits at once).
  ForwardResult forward_to_head(const std::vector<int32_t>& ids, int64_t B, int64_t T, bool want_hidden = false) const;

  // Incremental, batch 1, no gradient: runs ids at positions cache.len.., appends their keys
  // and values to the cache and returns the logits of the last of them [1, V]: the last row of
  // forward() over the whole sequence (the same ops row by row; tests hold it bit for bit).
  Var forward_cached(const std::vector<int32_t>& ids, KvCache& cache) const;

  bool trainable() const { return grads.data() != nullptr; }
  void zero_grad() {
    if (trainable()) grads.zero();
  }
  const Param* find(const std::string& name) const;
  Param* find(const std::string& name);
  int64_t num_params() const { return num_params_; }  // without alignment padding

  ModelConfig cfg;
  ModelHooks hooks;
  // Activation recomputation (--recompute): a forward with gradients keeps only each decoder
  // layer's input and runs the layer again in the backward (autograd/tape.h checkpoint):
  // activation memory L x [B*T, C] plus one layer's, for one more forward of the layers.
  // The same values and gradients as without it (tests hold them bit for bit).
  bool recompute = false;
  Tensor params;  // flat [P] (P includes alignment padding, which stays zero)
  Tensor grads;   // flat [P], same layout (empty when not trainable)
  std::vector<Param> entries;  // in HF order: embed, per layer, final norm, lm_head

  // Views into entries, for the forward.
  struct Layer {
    Var attn_norm, q, k, v, o, q_norm, k_norm, mlp_norm, gate, up, down;
    const std::string *q_name, *k_name, *v_name, *o_name, *gate_name, *up_name, *down_name;
  };
  Var embed, final_norm, lm_head;  // lm_head is embed when tied
  const std::string *embed_name = nullptr, *lm_head_name = nullptr;
  std::vector<Layer> layers;
  RopeTable rope_table;

 private:
  ForwardResult forward_impl(const std::vector<int32_t>& ids, int64_t B, int64_t T, bool want_hidden, int64_t pos0,
                             bool want_logits, KvCache* cache = nullptr) const;
  // The weight a product reads: hooks.weight_transform's, or w itself.
  Var weight_for(const Var& w, const HookSite& site) const {
    return hooks.weight_transform ? hooks.weight_transform(w, site) : w;
  }
  // Decoder layer l on x [B, T, C] -> [B, T, C].
  Var layer_forward(int l, const Var& x, int64_t B, int64_t T, int64_t pos0, KvCache* cache) const;
  int64_t num_params_ = 0;
};

// Natural-log probability of each next token: out[t] = log p(ids[t+1] | ids[0..t]),
// t = 0..n-2, computed in one no-grad forward of a [1, n] batch (log-softmax in double).
std::vector<double> next_token_logprobs(const Model& m, const std::vector<int32_t>& ids);

}  // namespace razor
