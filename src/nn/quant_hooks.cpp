#include "nn/quant_hooks.h"

#include <unordered_map>

#include "core/error.h"
#include "kernels/qgemm.h"
#include "quant/act_quant.h"

namespace razor {

WeightLayout QuantSpec::layout_for(const std::string& name, ParamKind kind) const {
  if (!quantize_weights) return WeightLayout::none();
  for (const auto& o : overrides)
    if (o.first == name) return o.second;
  if (kind == ParamKind::Norm) return WeightLayout::none();
  if (kind == ParamKind::Embedding || name == "lm_head.weight")
    return quantize_embedding ? plan.embedding_layout() : WeightLayout::none();
  if (uniform_bits > 0) return WeightLayout::uniform(uniform_bits, plan.group);
  return plan.linear_layout();
}

std::string QuantSpec::str() const {
  std::string s = !quantize_weights ? std::string("full-precision weights")
                  : uniform_bits > 0 ? strfmt("uniform int%d G=%d", uniform_bits, plan.group)
                                     : plan.str();
  if (a8) s += " A8";
  if (kv8) s += " KV8";
  return s;
}

void install_quant_hooks(Model& m, const QuantSpec& spec) {
  // Validate every matrix up front so a bad G is reported before any training.
  for (const Param& p : m.entries) {
    WeightLayout l = spec.layout_for(p.name, p.kind);
    if (l.quantized()) check_quantizable(p.name, p.value, l);
  }
  const int G = spec.plan.group;
  if (spec.a8) {
    // Every linear input has width C, D*H (o_proj) or F (down): all must divide by G.
    int64_t widths[] = {m.cfg.hidden_size, m.cfg.num_attention_heads * m.cfg.head_dim, m.cfg.intermediate_size};
    for (int64_t w : widths)
      if (w % G != 0) fail("--a8: a linear input of width %lld is not divisible by the group size %d", (long long)w, G);
  }
  struct Entry {
    std::string name;
    WeightLayout layout;
  };
  auto layouts = std::make_shared<std::vector<Entry>>();
  for (const Param& p : m.entries) layouts->push_back({p.name, spec.layout_for(p.name, p.kind)});
  // The quantized layout of the parameter `name` (nullptr: not quantized, or no such parameter).
  auto quantized_layout = [layouts](const std::string& name) -> const Entry* {
    for (const Entry& e : *layouts)
      if (e.name == name) return e.layout.quantized() ? &e : nullptr;
    return nullptr;
  };
  const std::string tied = m.cfg.tie_word_embeddings && m.embed_name ? *m.embed_name : std::string();
  // A tied embedding's quantized value, made at the embedding site of each forward (always
  // before the head's) and reused at the head site: the same latent and quantizer give the
  // same values, so one [V, C] copy instead of two.
  auto tied_q = std::make_shared<Tensor>();
  // int_forward: the packed copy of each decoder weight, made with its fake-quant copy by
  // weight_transform and used once by the product that follows; and the A8 codes of the last
  // linear input (held by its Var, so its buffer cannot be reused while cached), which q/k/v
  // and gate/up share.
  struct IntForward {
    std::unordered_map<std::string, PackedMatrix> packed;
    Var x;
    std::vector<int8_t> qx;
    std::vector<float> sx;
  };
  const bool int_fwd = spec.a8 && spec.int_forward && spec.quantize_weights;
  auto intf = int_fwd ? std::make_shared<IntForward>() : nullptr;
  // After its product, a decoder linear's quantized copy is released and made again for the
  // backward: the [d_out, d_in] copies (1.8 GB at Qwen3-0.6B) are not all held from the
  // forward to the backward. The copy is a pure function of the latent, which does not change
  // before the backward, so the backward reads the same bits. Costs one more fake
  // quantization per weight and step (O(params), against the step's O(params x tokens)).
  m.hooks.weight_used = [quantized_layout, tied](Var& w, const Var& latent, const HookSite& site) {
    // Only a copy made above: quantized, sharing the latent's gradient, not the tied embedding.
    if (*site.name == tied || !grad_enabled() || !latent.requires_grad() || !w.has_grad() ||
        w.value().data() == latent.value().data())
      return;
    Var lv = latent;
    if (w.grad().data() != lv.grad().data()) return;
    const Entry* e = quantized_layout(*site.name);
    if (!e) return;
    w.value() = Tensor();
    tape().record([w, lv, l = e->layout, n = e->name]() mutable {
      // weight_remake: runs before the backward of the product that read w (recorded after it).
      Tensor q = Tensor::empty(lv.shape());
      fake_quant_weight(n, lv.value(), q, l);
      w.value() = q;
    });
  };
  m.hooks.weight_transform = [quantized_layout, tied, tied_q, intf, G](const Var& w, const HookSite& site) -> Var {
    const std::string& name = *site.name;
    // A tied lm_head arrives with the embedding's name, so it gets the embedding's layout.
    const Entry* e = quantized_layout(name);
    if (!e) return w;
    const WeightLayout l = e->layout;
    const std::string n = e->name;
    // STE: d(latent) = d(quantized). A weight used once per forward (every one but a tied
    // embedding, which has two sites) gets a quantized copy that shares the latent's
    // gradient buffer, so the backward adds into it directly: no second [d_out, d_in]
    // gradient per matrix (2.4 GB at Qwen3-0.6B), the same bits as the STE op with one
    // micro-batch (0 + g = g), and with accumulation the same sum in another fp32 order.
    const bool shared_grad = w.requires_grad() && w.has_grad() && grad_enabled();
    Var latent = w;  // a handle: shares the latent's data and gradient
    // int_forward: a decoder weight's fake-quant copy comes with its packed twin, with or
    // without gradients (a recomputed layer must see the same products as its first pass).
    const bool packed = intf && site.layer >= 0 && name != tied && l.group == G && layout_packable(l);
    auto quantize = [intf, packed, l, n](const Tensor& in, Tensor& out) {
      if (packed) intf->packed[n] = fake_quant_weight_packed(n, in, out, l);
      else fake_quant_weight(n, in, out, l);
    };
    if (name != tied && shared_grad) {
      Tensor q = Tensor::empty(w.shape());
      quantize(w.value(), q);
      return Var::param(q, latent.grad());
    }
    if (name == tied && site.site == LinearSite::LmHead && tied_q->data() && tied_q->shape() == w.shape()) {
      // The head's gradient goes straight into the latent's buffer: the head's backward runs
      // before the embedding's (recorded later), so with one micro-batch the buffer gets
      // 0 + g_head and then the embedding STE's sum, the same bits as two STE ops.
      if (shared_grad) return Var::param(*tied_q, latent.grad());
      return Var(*tied_q, false);
    }
    Var out = ste(w, quantize);
    if (name == tied) *tied_q = site.site == LinearSite::Embedding ? out.value() : Tensor();
    return out;
  };
  if (spec.a8) {
    m.hooks.input_transform = [G](const Var& x, const HookSite&) -> Var {
      return ste(x, [G](const Tensor& in, Tensor& out) { fake_quant_a8(in, out, G); });
    };
    m.hooks.input_transform_shared = true;
  } else {
    m.hooks.input_transform = nullptr;
    m.hooks.input_transform_shared = false;
  }
  if (intf) {
    m.hooks.product = [intf, G](const Var& x, const Var& xi, const Var& wi, const HookSite& site) -> Var {
      auto it = intf->packed.find(*site.name);
      if (it == intf->packed.end()) return Var();
      const PackedMatrix pm = std::move(it->second);
      intf->packed.erase(it);
      const int64_t d_in = x.shape()[-1], N = x.shape().numel() / d_in;
      RZ_ASSERT_MSG(pm.desc.d_in == d_in && wi.shape()[0] == pm.desc.d_out, "packed weight does not match the product");
      if (!intf->x.defined() || intf->x.value().data() != x.value().data() || intf->x.shape() != x.shape()) {
        intf->x = x;
        intf->qx.resize(size_t(N * d_in));
        intf->sx.resize(size_t(N * (d_in / G)));
        quantize_a8(x.value().data(), N, d_in, G, intf->qx.data(), intf->sx.data());
      }
      Shape ys = x.shape();
      ys.d[ys.nd - 1] = pm.desc.d_out;
      Tensor y = Tensor::empty(ys);
      qgemm(pm, intf->qx.data(), intf->sx.data(), N, y.data());
      return linear_given(xi, wi, y);
    };
  } else {
    m.hooks.product = nullptr;
  }
  if (spec.kv8) {
    m.hooks.kv_transform = [](const Var& kv, int, bool) -> Var {
      return ste(kv, [](const Tensor& in, Tensor& out) { fake_quant_kv8(in, out); });
    };
  } else {
    m.hooks.kv_transform = nullptr;
  }
}

void remove_quant_hooks(Model& m) { m.hooks = ModelHooks(); }

std::vector<MatrixEntry> model_matrices(const Model& m, const QuantSpec& spec) {
  std::vector<MatrixEntry> out;
  for (const Param& p : m.entries) {
    int64_t d_out = p.value.dim() == 2 ? p.value.size(0) : 1;
    int64_t d_in = p.value.dim() == 2 ? p.value.size(1) : p.value.numel();
    out.push_back(MatrixEntry::make(p.name, d_out, d_in, spec.layout_for(p.name, p.kind)));
  }
  return out;
}

}  // namespace razor
