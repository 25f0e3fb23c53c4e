// GPTQ and AWQ over a whole model: the staged block forward on calibration data, the
// per-group Hessians, the AWQ search and fold. See calib_ptq.h.
#include "nn/calib_ptq.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>

#include "autograd/tape.h"
#include "core/error.h"
#include "kernels/gemm.h"
#include "quant/act_quant.h"
#include "quant/ptq.h"

namespace razor {

namespace {

Var cst(const Tensor& t) { return Var(t, false); }

// The tensors of one decoder layer, by role.
struct LayerParams {
  Param *attn_norm, *q, *k, *v, *o, *q_norm, *k_norm, *mlp_norm, *gate, *up, *down;
};

LayerParams layer_params(Model& m, int l) {
  const std::string p = "model.layers." + std::to_string(l) + ".";
  auto f = [&](const char* s) { return m.find(p + s); };
  LayerParams r{f("input_layernorm.weight"), f("self_attn.q_proj.weight"), f("self_attn.k_proj.weight"),
                f("self_attn.v_proj.weight"), f("self_attn.o_proj.weight"), f("self_attn.q_norm.weight"),
                f("self_attn.k_norm.weight"), f("post_attention_layernorm.weight"), f("mlp.gate_proj.weight"),
                f("mlp.up_proj.weight"), f("mlp.down_proj.weight")};
  RZ_ASSERT(r.attn_norm && r.q && r.k && r.v && r.o && r.mlp_norm && r.gate && r.up && r.down);
  return r;
}

// The forward pieces, on flattened token rows [n, ·] of whole sequences of length T.
struct Runner {
  const Model& m;
  const QuantSpec& spec;
  int64_t T, chunk;

  float eps() const { return float(m.cfg.rms_norm_eps); }
  // The input a quantized linear sees (A8 when the spec has it).
  Tensor lin_input(const Tensor& x) const {
    if (!spec.a8) return x;
    Tensor out;
    fake_quant_a8(x, out, spec.plan.group);
    return out;
  }
  Tensor norm(const Tensor& x, const Param* w) const { return rmsnorm(cst(x), w->var, eps()).value(); }
  Tensor lin(const Tensor& x, const Tensor& w) const { return linear(cst(x), cst(w)).value(); }
  // xq: the (already A8'd) input of q/k/v [n, C] -> attention output [n, H·D]; kv8 as the spec.
  Tensor attention_out(const LayerParams& p, const Tensor& xq, const Tensor& wq, const Tensor& wk, const Tensor& wv,
                       bool kv8) const {
    const ModelConfig& c = m.cfg;
    const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, D = c.head_dim;
    const int64_t n = xq.size(0), S = n / T;
    Tensor out = Tensor::empty({n, H * D});
    for (int64_t s0 = 0; s0 < S; s0 += chunk) {
      const int64_t cs = std::min(chunk, S - s0);
      Var x = cst(xq.rows(s0 * T, cs * T));
      Var q = reshape(linear(x, cst(wq)), {cs, T, H, D});
      Var k = reshape(linear(x, cst(wk)), {cs, T, K, D});
      Var v = reshape(linear(x, cst(wv)), {cs, T, K, D});
      if (c.qk_norm()) {
        q = rmsnorm(q, p.q_norm->var, eps());
        k = rmsnorm(k, p.k_norm->var, eps());
      }
      q = rope(q, m.rope_table, 0);
      k = rope(k, m.rope_table, 0);
      if (kv8) {
        Tensor kq, vq;
        fake_quant_kv8(k.value(), kq);
        fake_quant_kv8(v.value(), vq);
        k = cst(kq);
        v = cst(vq);
      }
      Tensor a = attention(q, k, v).value();
      std::copy(a.data(), a.data() + a.numel(), out.data() + s0 * T * H * D);
    }
    return out;
  }
  // swiglu(x·gateᵀ, x·upᵀ) for x [n, C] (already A8'd) in chunks -> [n, F].
  Tensor mlp_hidden(const Tensor& x, const Tensor& wg, const Tensor& wu) const {
    const int64_t n = x.size(0), F = wg.size(0), S = n / T;
    Tensor out = Tensor::empty({n, F});
    for (int64_t s0 = 0; s0 < S; s0 += chunk) {
      const int64_t cs = std::min(chunk, S - s0);
      Var xc = cst(x.rows(s0 * T, cs * T));
      Tensor h = swiglu(linear(xc, cst(wg)), linear(xc, cst(wu))).value();
      std::copy(h.data(), h.data() + h.numel(), out.data() + s0 * T * F);
    }
    return out;
  }
};

void add_into(Tensor& x, const Tensor& y) {
  RZ_ASSERT(x.numel() == y.numel());
  float* a = x.data();
  const float* b = y.data();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

std::shared_ptr<std::vector<double>> hessian(const Tensor& x) {
  const int64_t n = x.size(0), d = x.size(1);
  std::vector<float> h(size_t(d * d), 0.0f);
  hessian_accumulate(h, x.data(), n, d, 2.0f / float(n));
  // sgemm fills the whole square; symmetrise exactly (the two triangles may differ in the last bit).
  auto out = std::make_shared<std::vector<double>>(size_t(d * d));
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) (*out)[size_t(i * d + j)] = double(h[size_t(std::min(i, j) * d + std::max(i, j))]);
  return out;
}

// mean |x| per column of x [n, d].
std::vector<double> mean_abs_cols(const Tensor& x) {
  const int64_t n = x.size(0), d = x.size(1);
  std::vector<double> s(size_t(d), 0.0);
  for (int64_t t = 0; t < n; ++t) {
    const float* r = x.data() + t * d;
    for (int64_t j = 0; j < d; ++j) s[size_t(j)] += std::fabs(r[j]);
  }
  for (double& v : s) v /= double(std::max<int64_t>(n, 1));
  return s;
}

void check_calib(const Model& m, const CalibSet& c, const CalibPtqOptions& opt) {
  RZ_CHECK(c.S >= 1 && c.T >= 1 && int64_t(c.ids.size()) == c.S * c.T, "calibration: %zu ids for %lld x %lld",
           c.ids.size(), (long long)c.S, (long long)c.T);
  RZ_CHECK(c.T <= m.cfg.max_position_embeddings, "--calib-seq: %lld tokens exceed the model's max_position_embeddings %lld",
           (long long)c.T, (long long)m.cfg.max_position_embeddings);
  for (int32_t id : c.ids)
    RZ_CHECK(id >= 0 && id < m.cfg.vocab_size, "calibration: token id %d is outside the vocabulary", id);
  RZ_CHECK(opt.chunk_seqs >= 1 && opt.awq_grid >= 1 && opt.awq_search_seqs >= 1, "calibration: bad options");
}

void check_spec(const Model& m, const QuantSpec& spec) {
  for (const Param& p : m.entries) {
    WeightLayout l = spec.layout_for(p.name, p.kind);
    if (l.quantized()) check_quantizable(p.name, p.value, l);
  }
  if (spec.a8) {
    const int G = spec.plan.group;
    for (int64_t w : {m.cfg.hidden_size, m.cfg.num_attention_heads * m.cfg.head_dim, m.cfg.intermediate_size})
      RZ_CHECK(w % G == 0, "--a8: a linear input of width %lld is not divisible by the group size %d", (long long)w, G);
  }
}

struct Accum {
  double num = 0, den = 0;
  void add(const Tensor& w, const Tensor& q) {
    num += sum_squared_error(w, q);
    for (int64_t i = 0; i < w.numel(); ++i) den += double(w[i]) * w[i];
  }
};

// RTN of one parameter in place (dequantized); codes to qweights when asked.
void rtn_param(Param& p, const WeightLayout& l, Accum& acc,
               std::vector<std::pair<std::string, QuantizedWeight>>* qweights) {
  QuantizedWeight q = quantize_weight(p.name, p.value, l);
  Tensor dq = q.dequantize();
  acc.add(p.value, dq);
  p.value.copy_from(dq);
  if (qweights) qweights->push_back({p.name, std::move(q)});
}

}  // namespace

void hessian_accumulate(std::vector<float>& h, const float* x, int64_t n, int64_t d, float scale) {
  RZ_ASSERT(int64_t(h.size()) == d * d);
  if (n == 0) return;
  sgemm(true, false, d, d, n, scale, x, d, x, d, 1.0f, h.data(), d);
}

// ---------------------------------------------------------------- GPTQ

CalibPtqReport gptq_model(Model& m, const QuantSpec& spec, const CalibSet& calib, const CalibPtqOptions& opt,
                          std::vector<std::pair<std::string, QuantizedWeight>>* qweights) {
  check_calib(m, calib, opt);
  check_spec(m, spec);
  NoGradGuard ng;
  CalibPtqReport rep;
  Accum acc;
  const Runner run{m, spec, calib.T, opt.chunk_seqs};
  const int64_t N = calib.S * calib.T, C = m.cfg.hidden_size;

  // GPTQ of the linears in `ps` (which share the input x, already A8'd), in place.
  auto quantize_group = [&](std::initializer_list<Param*> ps, const Tensor& x) {
    std::vector<Param*> todo;
    for (Param* p : ps)
      if (spec.layout_for(p->name, p->kind).quantized()) todo.push_back(p);
    if (todo.empty()) return;
    using clock = std::chrono::steady_clock;
    auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
    auto t0 = clock::now();
    auto h = hessian(x);
    rep.seconds_hessian += since(t0);
    t0 = clock::now();
    const GptqFactor f = gptq_factor(*h, x.size(1), opt.gptq, todo[0]->name);
    rep.seconds_factor += since(t0);
    t0 = clock::now();
    rep.damp_max = std::max(rep.damp_max, f.damp);
    rep.damp_raises += f.raises;
    for (Param* p : todo) {
      GptqStats st;
      QuantizedWeight q = gptq_quantize(p->name, p->value, f, spec.layout_for(p->name, p->kind), opt.gptq, &st);
      rep.forced += st.forced;
      Tensor dq = q.dequantize();
      acc.add(p->value, dq);
      p->value.copy_from(dq);
      ++rep.tensors;
      if (qweights) qweights->push_back({p->name, std::move(q)});
    }
    rep.seconds_sweep += since(t0);
  };

  // The embedding (and a tied lm_head) by RTN, first: the blocks then see its quantized rows.
  Param* embed = m.find("model.embed_tokens.weight");
  RZ_ASSERT(embed);
  {
    const WeightLayout l = spec.layout_for(embed->name, embed->kind);
    if (l.quantized()) {
      rtn_param(*embed, l, acc, qweights);
      ++rep.tensors;
    }
  }
  Tensor x = embedding(embed->var, calib.ids, {N, C}).value().clone();  // [N, C]
  for (int l = 0; l < int(m.layers.size()); ++l) {
    LayerParams p = layer_params(m, l);
    Tensor xq = run.lin_input(run.norm(x, p.attn_norm));  // [N, C]
    quantize_group({p.q, p.k, p.v}, xq);
    Tensor a = run.lin_input(run.attention_out(p, xq, p.q->value, p.k->value, p.v->value, spec.kv8));  // [N, H·D]
    quantize_group({p.o}, a);
    add_into(x, run.lin(a, p.o->value));
    Tensor xm = run.lin_input(run.norm(x, p.mlp_norm));  // [N, C]
    quantize_group({p.gate, p.up}, xm);
    Tensor hd = run.lin_input(run.mlp_hidden(xm, p.gate->value, p.up->value));  // [N, F]
    quantize_group({p.down}, hd);
    add_into(x, run.lin(hd, p.down->value));
    if (opt.verbose) std::fprintf(stderr, "\rgptq: layer %d/%zu", l + 1, m.layers.size());
  }
  if (opt.verbose) std::fprintf(stderr, "\n");
  if (!m.cfg.tie_word_embeddings) {
    Param* head = m.find("lm_head.weight");
    RZ_ASSERT(head);
    const Param* fn = m.find("model.norm.weight");
    quantize_group({head}, run.lin_input(run.norm(x, fn)));
  }
  rep.rel_error = acc.den > 0 ? std::sqrt(acc.num / acc.den) : 0.0;
  return rep;
}

std::vector<LinearInputStats> input_stats(const Model& cm, const QuantSpec& spec, const CalibSet& calib,
                                          const CalibPtqOptions& opt) {
  check_calib(cm, calib, opt);
  NoGradGuard ng;
  Model& m = const_cast<Model&>(cm);  // read only: layer_params hands out mutable pointers
  const Runner run{m, spec, calib.T, opt.chunk_seqs};
  const int64_t N = calib.S * calib.T, C = m.cfg.hidden_size;
  std::vector<LinearInputStats> out;
  auto add = [&](std::initializer_list<const Param*> ps, const Tensor& x) {
    auto h = hessian(x);
    auto ma = std::make_shared<std::vector<double>>(mean_abs_cols(x));
    for (const Param* p : ps) out.push_back({p->name, h, ma});
  };
  Tensor x = embedding(m.embed, calib.ids, {N, C}).value().clone();
  for (int l = 0; l < int(m.layers.size()); ++l) {
    LayerParams p = layer_params(m, l);
    Tensor xq = run.lin_input(run.norm(x, p.attn_norm));
    add({p.q, p.k, p.v}, xq);
    Tensor a = run.lin_input(run.attention_out(p, xq, p.q->value, p.k->value, p.v->value, spec.kv8));
    add({p.o}, a);
    add_into(x, run.lin(a, p.o->value));
    Tensor xm = run.lin_input(run.norm(x, p.mlp_norm));
    add({p.gate, p.up}, xm);
    Tensor hd = run.lin_input(run.mlp_hidden(xm, p.gate->value, p.up->value));
    add({p.down}, hd);
    add_into(x, run.lin(hd, p.down->value));
  }
  if (!m.cfg.tie_word_embeddings) add({m.find("lm_head.weight")}, run.lin_input(run.norm(x, m.find("model.norm.weight"))));
  return out;
}

// ---------------------------------------------------------------- AWQ

namespace {

// Σ (a - b)² in double.
double sq_dist(const Tensor& a, const Tensor& b) { return sum_squared_error(a, b); }


// AWQ's scales for one α: mean|x|^α clamped to >= 1e-4, normalised by sqrt(max·min).
std::vector<float> awq_scales(const std::vector<double>& mean_abs, double alpha) {
  std::vector<double> s(mean_abs.size());
  double mx = 0, mn = INFINITY;
  for (size_t j = 0; j < s.size(); ++j) {
    s[j] = std::max(std::pow(mean_abs[j], alpha), 1e-4);
    mx = std::max(mx, s[j]);
    mn = std::min(mn, s[j]);
  }
  const double norm = std::sqrt(mx * mn);
  std::vector<float> out(s.size());
  for (size_t j = 0; j < s.size(); ++j) out[j] = float(s[j] / norm);
  return out;
}

// W [d_out, d_in] with column j scaled by s[j] (the quantizer then sees W·diag(s)).
Tensor scale_cols(const Tensor& w, const std::vector<float>& s) {
  Tensor out = w.clone();
  const int64_t r = w.size(0), c = w.size(1);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) out[i * c + j] *= s[size_t(j)];
  return out;
}

// x [n, d] with column j divided by s[j].
Tensor div_cols(const Tensor& x, const std::vector<float>& s) {
  Tensor out = x.clone();
  const int64_t n = x.size(0), d = x.size(1);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < d; ++j) out[t * d + j] /= s[size_t(j)];
  return out;
}

// RTN of W·diag(s) under the parameter's layout (the weight the quantized model multiplies).
Tensor quant_scaled(const Param& p, const std::vector<float>& s, const QuantSpec& spec) {
  Tensor ws = scale_cols(p.value, s);
  const WeightLayout l = spec.layout_for(p.name, p.kind);
  if (l.quantized()) fake_quant_weight(p.name, ws, ws, l);
  return ws;
}

}  // namespace

std::vector<std::pair<std::string, double>> awq_fold(Model& m, const QuantSpec& spec, const CalibSet& calib,
                                                     const CalibPtqOptions& opt) {
  check_calib(m, calib, opt);
  check_spec(m, spec);
  NoGradGuard ng;
  std::vector<std::pair<std::string, double>> chosen;
  const Runner run{m, spec, calib.T, opt.chunk_seqs};
  const ModelConfig& c = m.cfg;
  const int64_t N = calib.S * calib.T, C = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads,
                D = c.head_dim;
  const int64_t Ns = std::min(calib.S, opt.awq_search_seqs) * calib.T;  // search rows
  // Searches α for one group: err(s) is the group's output error with scales s.
  auto search = [&](const std::string& what, const std::vector<double>& mean_abs,
                    const std::function<double(const std::vector<float>&)>& err) {
    double best_err = INFINITY, best_alpha = 0;
    std::vector<float> best;
    const bool fixed = opt.awq_alpha >= 0;
    for (int g = 0; g < (fixed ? 1 : opt.awq_grid); ++g) {
      const double alpha = fixed ? opt.awq_alpha : double(g) / opt.awq_grid;
      std::vector<float> s = awq_scales(mean_abs, alpha);
      const double e = err(s);
      if (e < best_err) best_err = e, best_alpha = alpha, best = std::move(s);
    }
    chosen.push_back({what, best_alpha});
    return best;
  };
  auto fold_into_norm = [](Param* norm, const std::vector<float>& s) {
    for (int64_t j = 0; j < norm->value.numel(); ++j) norm->value[j] /= s[size_t(j)];
  };
  auto fold_cols = [](Param* w, const std::vector<float>& s) { w->value.copy_from(scale_cols(w->value, s)); };
  auto fold_rows_div = [](Param* w, const std::vector<float>& s) {
    const int64_t r = w->value.size(0), cc = w->value.size(1);
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < cc; ++j) w->value[i * cc + j] /= s[size_t(i)];
  };
  auto quantized = [&](const Param* p) { return spec.layout_for(p->name, p->kind).quantized(); };

  Tensor x = embedding(m.embed, calib.ids, {N, C}).value().clone();  // the unquantized model's stream
  for (int l = 0; l < int(m.layers.size()); ++l) {
    LayerParams p = layer_params(m, l);
    const std::string pre = "layer " + std::to_string(l) + " ";
    // ---- q/k/v (input: attn_norm's output), judged on the attention sub-block's output.
    {
      Tensor h = run.norm(x, p.attn_norm);
      Tensor hs = h.rows(0, Ns);
      const Tensor ref = run.lin(run.attention_out(p, hs, p.q->value, p.k->value, p.v->value, false), p.o->value);
      if (quantized(p.q) || quantized(p.k) || quantized(p.v)) {
        std::vector<float> s = search(pre + "q/k/v", mean_abs_cols(h), [&](const std::vector<float>& sc) {
          Tensor xin = run.lin_input(div_cols(hs, sc));
          Tensor a = run.attention_out(p, xin, quant_scaled(*p.q, sc, spec), quant_scaled(*p.k, sc, spec),
                                       quant_scaled(*p.v, sc, spec), spec.kv8);
          return sq_dist(run.lin(a, p.o->value), ref);
        });
        fold_into_norm(p.attn_norm, s);
        for (Param* w : {p.q, p.k, p.v}) fold_cols(w, s);
      }
    }
    // ---- o (input: the attention output; folded into v_proj's rows, one scale per (kv head, d)).
    Tensor a = run.attention_out(p, run.norm(x, p.attn_norm), p.q->value, p.k->value, p.v->value, false);
    const Tensor o_out = run.lin(a, p.o->value);
    if (quantized(p.o)) {
      std::vector<double> ma = mean_abs_cols(a), tied(size_t(K * D), 0.0);
      const int64_t rep = H / K;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) tied[size_t((h / rep) * D + d)] += ma[size_t(h * D + d)] / double(rep);
      auto expand = [&](const std::vector<float>& skv) {
        std::vector<float> s(size_t(H * D));
        for (int64_t h = 0; h < H; ++h)
          for (int64_t d = 0; d < D; ++d) s[size_t(h * D + d)] = skv[size_t((h / rep) * D + d)];
        return s;
      };
      Tensor as = a.rows(0, Ns);
      const Tensor ref = o_out.rows(0, Ns);
      std::vector<float> skv = search(pre + "o", tied, [&](const std::vector<float>& sc) {
        const std::vector<float> s = expand(sc);
        return sq_dist(run.lin(run.lin_input(div_cols(as, s)), quant_scaled(*p.o, s, spec)), ref);
      });
      fold_rows_div(p.v, skv);
      fold_cols(p.o, expand(skv));
    }
    add_into(x, o_out);
    // ---- gate/up (input: mlp_norm's output), judged on the MLP output.
    Tensor xm = run.norm(x, p.mlp_norm);
    if (quantized(p.gate) || quantized(p.up)) {
      Tensor xs = xm.rows(0, Ns);
      const Tensor ref = run.lin(run.mlp_hidden(xs, p.gate->value, p.up->value), p.down->value);
      std::vector<float> s = search(pre + "gate/up", mean_abs_cols(xm), [&](const std::vector<float>& sc) {
        Tensor xin = run.lin_input(div_cols(xs, sc));
        return sq_dist(run.lin(run.mlp_hidden(xin, quant_scaled(*p.gate, sc, spec), quant_scaled(*p.up, sc, spec)),
                               p.down->value),
                       ref);
      });
      fold_into_norm(p.mlp_norm, s);
      for (Param* w : {p.gate, p.up}) fold_cols(w, s);
      xm = run.norm(x, p.mlp_norm);
    }
    // ---- down (input: swiglu(gate, up); folded into up_proj's rows).
    Tensor hd = run.mlp_hidden(xm, p.gate->value, p.up->value);
    const Tensor d_out = run.lin(hd, p.down->value);
    if (quantized(p.down)) {
      Tensor hs = hd.rows(0, Ns);
      const Tensor ref = d_out.rows(0, Ns);
      std::vector<float> s = search(pre + "down", mean_abs_cols(hd), [&](const std::vector<float>& sc) {
        return sq_dist(run.lin(run.lin_input(div_cols(hs, sc)), quant_scaled(*p.down, sc, spec)), ref);
      });
      fold_rows_div(p.up, s);
      fold_cols(p.down, s);
    }
    add_into(x, d_out);
    if (opt.verbose) std::fprintf(stderr, "\rawq: layer %d/%zu", l + 1, m.layers.size());
  }
  if (opt.verbose) std::fprintf(stderr, "\n");
  return chosen;
}

Tensor awq_single(const std::string& name, const Tensor& w, const LinearInputStats& st, const WeightLayout& layout,
                  int grid) {
  Tensor best;
  double best_err = INFINITY;
  for (int g = 0; g < grid; ++g) {
    const std::vector<float> s = awq_scales(*st.mean_abs, double(g) / grid);
    Tensor q = scale_cols(w, s);
    if (layout.quantized()) fake_quant_weight(name, q, q, layout);
    const int64_t r = q.size(0), c = q.size(1);
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) q[i * c + j] /= s[size_t(j)];
    const double e = hessian_error(w, q, *st.hessian);
    if (e < best_err) best_err = e, best = q;
  }
  return best;
}

CalibPtqReport awq_model(Model& m, const QuantSpec& spec, const CalibSet& calib, const CalibPtqOptions& opt,
                         std::vector<std::pair<std::string, QuantizedWeight>>* qweights) {
  // rel_error against the input model's weights (the fold itself changes weights but not the function).
  std::vector<Tensor> orig;
  for (const Param& p : m.entries) orig.push_back(p.value.clone());
  CalibPtqReport rep;
  rep.awq_alpha = awq_fold(m, spec, calib, opt);
  Accum acc, dummy;
  for (size_t i = 0; i < m.entries.size(); ++i) {
    Param& p = m.entries[i];
    const WeightLayout l = spec.layout_for(p.name, p.kind);
    if (!l.quantized()) continue;
    rtn_param(p, l, dummy, qweights);
    acc.add(orig[i], p.value);
    ++rep.tensors;
  }
  rep.rel_error = acc.den > 0 ? std::sqrt(acc.num / acc.den) : 0.0;
  return rep;
}

}  // namespace razor
