// Model: flat parameter layout, init, forward. Loading and saving live in model_io.cpp.
#include "nn/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/vmath.h"
#include "core/rng.h"
#include "core/util.h"
#include "nn/tensor_table.h"

namespace razor {

const char* linear_site_name(LinearSite s) {
  switch (s) {
    case LinearSite::Q: return "q_proj";
    case LinearSite::K: return "k_proj";
    case LinearSite::V: return "v_proj";
    case LinearSite::O: return "o_proj";
    case LinearSite::Gate: return "gate_proj";
    case LinearSite::Up: return "up_proj";
    case LinearSite::Down: return "down_proj";
    case LinearSite::LmHead: return "lm_head";
    case LinearSite::Embedding: return "embed_tokens";
  }
  return "?";
}

Model::Model(const ModelConfig& c, bool trainable) : cfg(c) {
  cfg.validate();
  const std::vector<TensorSpec> specs = model_tensors(cfg);
  // Views start at multiples of 16 floats (64 bytes) so SIMD kernels see aligned rows.
  auto align16 = [](int64_t n) { return align_up<int64_t>(n, 16); };
  int64_t total = 0;
  for (const TensorSpec& s : specs) {
    refuse_unsupported(s, "model");
    const int64_t n = Shape(s.shape).numel();
    total = align16(total) + n;
    num_params_ += n;
  }
  total = align16(total);
  params = Tensor::zeros({total});
  if (trainable) grads = Tensor::zeros({total});
  int64_t off = 0;
  entries.reserve(specs.size());
  for (const TensorSpec& s : specs) {
    off = align16(off);
    const Shape shape(s.shape);
    Param p;
    p.name = s.hf;
    p.kind = s.kind;
    p.role = s.role;
    p.layer = s.layer;
    p.offset = off;
    p.value = Tensor::view_of(params.data() + off, shape);
    if (trainable) {
      p.grad = Tensor::view_of(grads.data() + off, shape);
      p.var = Var::param(p.value, p.grad);
    } else {
      p.var = Var(p.value, false);
    }
    entries.push_back(std::move(p));
    off += shape.numel();
  }

  // Wire the named views (entries no longer reallocates).
  layers.resize(size_t(cfg.num_hidden_layers));
  for (Param& p : entries) {
    Layer* ly = p.layer >= 0 ? &layers[size_t(p.layer)] : nullptr;
    switch (p.role) {
      case TensorRole::Embed: embed = p.var, embed_name = &p.name; break;
      case TensorRole::AttnNorm: ly->attn_norm = p.var; break;
      case TensorRole::Q: ly->q = p.var, ly->q_name = &p.name; break;
      case TensorRole::K: ly->k = p.var, ly->k_name = &p.name; break;
      case TensorRole::V: ly->v = p.var, ly->v_name = &p.name; break;
      case TensorRole::O: ly->o = p.var, ly->o_name = &p.name; break;
      case TensorRole::QNorm: ly->q_norm = p.var; break;
      case TensorRole::KNorm: ly->k_norm = p.var; break;
      case TensorRole::MlpNorm: ly->mlp_norm = p.var; break;
      case TensorRole::Gate: ly->gate = p.var, ly->gate_name = &p.name; break;
      case TensorRole::Up: ly->up = p.var, ly->up_name = &p.name; break;
      case TensorRole::Down: ly->down = p.var, ly->down_name = &p.name; break;
      case TensorRole::FinalNorm: final_norm = p.var; break;
      case TensorRole::LmHead: lm_head = p.var, lm_head_name = &p.name; break;
      case TensorRole::QBias: case TensorRole::KBias: case TensorRole::VBias: RZ_ASSERT(false); break;
    }
  }
  if (cfg.tie_word_embeddings) {  // the tie rule (nn/tensor_table.h)
    lm_head = embed;
    lm_head_name = embed_name;
  }
  rope_table = RopeTable::make(cfg.max_position_embeddings, cfg.rope_inv_freq());
}

void Model::init_random(uint64_t seed, float std) {
  params.zero();
  Rng rng(seed);
  for (Param& p : entries) {
    if (p.kind == ParamKind::Norm)
      p.value.fill(1.0f);
    else
      fill_normal(p.value, rng, std);
  }
}

const Param* Model::find(const std::string& name) const {
  for (const Param& p : entries)
    if (p.name == name) return &p;
  return nullptr;
}

Param* Model::find(const std::string& name) {
  for (Param& p : entries)
    if (p.name == name) return &p;
  return nullptr;
}

ForwardResult Model::forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, bool want_hidden,
                             int64_t pos0) const {
  return forward_impl(ids, B, T, want_hidden, pos0, true);
}

ForwardResult Model::forward_to_head(const std::vector<int32_t>& ids, int64_t B, int64_t T, bool want_hidden) const {
  return forward_impl(ids, B, T, want_hidden, 0, false);
}

Var Model::forward_cached(const std::vector<int32_t>& ids, KvCache& cache) const {
  RZ_CHECK(!grad_enabled(), "forward_cached: inference only; run it under NoGradGuard");
  if (cache.k.empty()) cache.k.resize(layers.size()), cache.v.resize(layers.size());
  RZ_CHECK(cache.k.size() == layers.size(), "forward_cached: the cache belongs to a model with %zu layers, not %zu",
           cache.k.size(), layers.size());
  return forward_impl(ids, 1, int64_t(ids.size()), false, cache.len, true, &cache).logits;
}

ForwardResult Model::forward_impl(const std::vector<int32_t>& ids, int64_t B, int64_t T, bool want_hidden,
                                  int64_t pos0, bool want_logits, KvCache* cache) const {
  const int64_t V = cfg.vocab_size, C = cfg.hidden_size;
  const float eps = float(cfg.rms_norm_eps);
  RZ_CHECK(B > 0 && T > 0, "model forward: batch %lld x time %lld must be positive", (long long)B, (long long)T);
  RZ_CHECK(int64_t(ids.size()) == B * T, "model forward: %zu ids for a [%lld, %lld] batch", ids.size(), (long long)B,
           (long long)T);
  RZ_CHECK(pos0 >= 0 && pos0 + T <= rope_table.max_pos,
           "model forward: positions %lld..%lld exceed max_position_embeddings %lld", (long long)pos0,
           (long long)(pos0 + T - 1), (long long)rope_table.max_pos);
  for (size_t i = 0; i < ids.size(); ++i)
    RZ_CHECK(ids[i] >= 0 && ids[i] < V, "model forward: token id %d at index %zu is outside the vocabulary [0, %lld)",
             ids[i], i, (long long)V);

  auto W = [&](const Var& w, LinearSite s, int l, const std::string* name) { return weight_for(w, HookSite{s, l, name}); };
  auto lin = [&](const Var& x, const Var& w, LinearSite s, const std::string* name) {  // the head's
    return linear(hooks.input_transform ? hooks.input_transform(x, HookSite{s, -1, name}) : x, W(w, s, -1, name));
  };

  ForwardResult r;
  Var x = embedding(W(embed, LinearSite::Embedding, -1, embed_name), ids, {B, T, C});  // [B, T, C]
  if (want_hidden) r.hidden.push_back(x);
  const bool recomputed = recompute && grad_enabled() && !cache;
  for (int l = 0; l < int(layers.size()); ++l) {
    if (recomputed)
      x = checkpoint(x, [this, l, B, T, pos0](const Var& xin) { return layer_forward(l, xin, B, T, pos0, nullptr); });
    else
      x = layer_forward(l, x, B, T, pos0, cache);
    if (want_hidden && l + 1 < int(layers.size())) r.hidden.push_back(x);
  }
  r.last_layer = x;
  Var xf = rmsnorm(x, final_norm, eps);  // [B, T, C]
  if (cache) {  // only the last position's logits
    cache->len = pos0 + T;
    Tensor last = Tensor::empty(Shape{1, C});
    std::copy_n(xf.value().data() + (T - 1) * C, C, last.data());
    r.logits = lin(Var(last, false), lm_head, LinearSite::LmHead, lm_head_name);  // [1, V]
    return r;
  }
  if (want_hidden) r.hidden.push_back(xf);
  if (!want_logits) {  // the head's input and weight as lin() would use them
    HookSite site{LinearSite::LmHead, -1, lm_head_name};
    r.head_x = reshape(hooks.input_transform ? hooks.input_transform(xf, site) : xf, {B * T, C});  // [B*T, C]
    r.head_w = W(lm_head, LinearSite::LmHead, -1, lm_head_name);                                // [V, C]
    return r;
  }
  r.logits = reshape(lin(xf, lm_head, LinearSite::LmHead, lm_head_name), {B * T, V});  // [B*T, V]
  return r;
}

Var Model::layer_forward(int l, const Var& x, int64_t B, int64_t T, int64_t pos0, KvCache* cache) const {
  const int64_t H = cfg.num_attention_heads, K = cfg.num_key_value_heads, D = cfg.head_dim;
  const float eps = float(cfg.rms_norm_eps);
  Var shared_x, shared_xi;  // the last linear input and its transform (input_transform_shared)
  auto lin = [&](const Var& in, const Var& w, LinearSite s, const std::string* name) {
    HookSite site{s, l, name};
    Var xi;
    if (hooks.input_transform && hooks.input_transform_shared && shared_x.defined() &&
        shared_x.value().data() == in.value().data() && shared_x.shape() == in.shape()) {
      xi = shared_xi;
    } else {
      xi = hooks.input_transform ? hooks.input_transform(in, site) : in;
      if (hooks.input_transform_shared) shared_x = in, shared_xi = xi;
    }
    Var wi = weight_for(w, site);
    Var y = hooks.product ? hooks.product(in, xi, wi, site) : Var();
    if (!y.defined()) y = linear(xi, wi);
    if (hooks.weight_used) hooks.weight_used(wi, w, site);
    return y;
  };
  auto kv = [&](const Var& t, bool is_key) { return hooks.kv_transform ? hooks.kv_transform(t, l, is_key) : t; };

  const Layer& ly = layers[size_t(l)];
  Var h = rmsnorm(x, ly.attn_norm, eps);                                    // [B, T, C]
  Var q = reshape(lin(h, ly.q, LinearSite::Q, ly.q_name), {B, T, H, D});  // [B, T, H, D]
  Var k = reshape(lin(h, ly.k, LinearSite::K, ly.k_name), {B, T, K, D});  // [B, T, K, D]
  Var v = reshape(lin(h, ly.v, LinearSite::V, ly.v_name), {B, T, K, D});  // [B, T, K, D]
  if (cfg.qk_norm()) {
    q = rmsnorm(q, ly.q_norm, eps);
    k = rmsnorm(k, ly.k_norm, eps);
  }
  q = rope(q, rope_table, pos0);
  k = kv(rope(k, rope_table, pos0), true);
  v = kv(v, false);
  Var a;
  if (cache) {  // the new rows join the cached ones; their queries see all of them
    std::vector<float>& ck = cache->k[size_t(l)];
    std::vector<float>& cv = cache->v[size_t(l)];
    ck.insert(ck.end(), k.value().data(), k.value().data() + T * K * D);
    cv.insert(cv.end(), v.value().data(), v.value().data() + T * K * D);
    const Shape all{1, pos0 + T, K, D};
    a = attention_cached(q, Var(Tensor::view_of(ck.data(), all), false), Var(Tensor::view_of(cv.data(), all), false));
  } else {
    a = attention(q, k, v);
  }
  a = reshape(a, {B, T, H * D});  // [B, T, H*D]
  Var y = add(x, lin(a, ly.o, LinearSite::O, ly.o_name));
  Var m = rmsnorm(y, ly.mlp_norm, eps);
  Var g = lin(m, ly.gate, LinearSite::Gate, ly.gate_name);  // [B, T, F]
  Var u = lin(m, ly.up, LinearSite::Up, ly.up_name);        // [B, T, F]
  return add(y, lin(swiglu(g, u), ly.down, LinearSite::Down, ly.down_name));
}

std::vector<double> next_token_logprobs(const Model& m, const std::vector<int32_t>& ids) {
  RZ_CHECK(ids.size() >= 2, "score: need at least 2 token ids, got %zu", ids.size());
  NoGradGuard ng;
  const int64_t n = int64_t(ids.size()), V = m.cfg.vocab_size;
  ForwardResult r = m.forward(ids, 1, n);
  const float* z = r.logits.value().data();
  std::vector<double> out;
  for (int64_t t = 0; t + 1 < n; ++t) out.push_back(log_prob_at(z + t * V, V, ids[size_t(t + 1)]));
  return out;
}

}  // namespace razor
