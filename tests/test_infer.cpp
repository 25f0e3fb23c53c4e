// Packed inference: pack / load round trip, rejection of broken files, the A8 quantizers'
// agreement, and train/deploy parity of the packed forward with the fake-quant training
// forward (NUMERICS.md §10).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "autograd/tape.h"
#include "core/error.h"
#include "core/cpu.h"
#include "core/rng.h"
#include "core/threads.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "io/razor_file.h"
#include "io/tokenizer.h"
#include "infer/pack.h"
#include "kernels/qgemm.h"
#include "model_test_util.h"
#include "tests/reference_util.h"
#include "nn/model.h"
#include "nn/ptq_model.h"
#include "quant/gptq.h"
#include "nn/quant_hooks.h"
#include "quant/act_quant.h"
#include "train/evaluate.h"
#include "train/evaluate_packed.h"
#include "train/shards.h"

using namespace razor;

namespace {

// A small qwen3 whose dimensions are multiples of G (hidden, heads x head_dim, FFN).
ModelConfig parity_config(int G) {
  ModelConfig c;
  c.model_type = "qwen3";
  c.vocab_size = 97;
  c.hidden_size = G == 256 ? 256 : 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.intermediate_size = G == 256 ? 512 : 192;
  c.tie_word_embeddings = G == 64;  // exercise both
  c.max_position_embeddings = 128;
  c.eos_token_ids = {};
  return c;
}

// Random weights. With embed_std > 0 (untied models only), the embedding is drawn with that
// larger std and lm_head row (5i + 3) mod V is embedding row i: the residual stream is dominated
// by the token's embedding, so the next token is almost surely (5 * current + 3) mod V with a
// wide logit margin -- greedy walks through the vocabulary and is stable under the rare A8
// rounding flips, while every layer still contributes.
std::unique_ptr<Model> random_model(const ModelConfig& c, uint64_t seed, float std, float embed_std = 0.0f) {
  auto m = std::make_unique<Model>(c, false);
  m->init_random(seed, std);
  Rng rng(seed + 7);
  for (Param& p : m->entries)  // norms not all 1: exercise their weights
    if (p.kind == ParamKind::Norm)
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value.data()[i] = 0.8f + 0.4f * rng.uniform();
  if (embed_std > 0) {
    REQUIRE(!c.tie_word_embeddings);
    Param* e = m->find("model.embed_tokens.weight");
    Param* h = m->find("lm_head.weight");
    const int64_t V = c.vocab_size, C = c.hidden_size;
    for (int64_t i = 0; i < V * C; ++i) e->value.data()[i] = embed_std * rng.normal();
    for (int64_t i = 0; i < V; ++i)
      std::copy(e->value.data() + i * C, e->value.data() + (i + 1) * C, h->value.data() + ((5 * i + 3) % V) * C);
  }
  return m;
}

std::vector<float> reference_logits(const Model& m, const std::vector<int32_t>& ids) {
  NoGradGuard ng;
  ForwardResult r = m.forward(ids, 1, int64_t(ids.size()));
  const float* z = r.logits.value().data();
  return std::vector<float>(z, z + ids.size() * size_t(m.cfg.vocab_size));
}

int argmax(const float* z, int64_t V) {
  int best = 0;
  for (int64_t v = 1; v < V; ++v)
    if (z[v] > z[best]) best = int(v);
  return best;
}

struct Diff {
  double max_abs = 0, max_logit = 0, mean_abs = 0;
};
Diff compare(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  Diff d;
  for (size_t i = 0; i < a.size(); ++i) {
    d.max_abs = std::max(d.max_abs, double(std::fabs(a[i] - b[i])));
    d.max_logit = std::max(d.max_logit, double(std::fabs(b[i])));
    d.mean_abs += std::fabs(a[i] - b[i]) / double(a.size());
  }
  return d;
}

// One CE step of m on a 2 x 9 batch from fresh gradients: its logits and parameter gradients.
void ce_step(Model& m, const std::vector<int32_t>& ids, const std::vector<int32_t>& tg, std::vector<float>& logits,
             std::vector<float>& grads) {
  m.grads.fill(0.0f);
  ForwardResult r = m.forward(ids, 2, 9);
  Var loss = cross_entropy(r.logits, tg);
  backward(loss);
  logits.assign(r.logits.value().data(), r.logits.value().data() + r.logits.numel());
  grads.assign(m.grads.data(), m.grads.data() + m.grads.numel());
}

std::vector<int32_t> prompt_ids(int n, int V, uint64_t seed) {
  Rng r(seed);
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(int32_t(r.next_u64() % uint64_t(V)));
  return ids;
}

// Packs m (A8 + KV8, super-groups rho, group G), then installs the matching fake-quant hooks,
// so m's forward is the training forward of the same student.
PackedModel pack_then_hook(Model& m, double rho, int G) {
  QuantSpec spec;
  spec.plan.rho = rho;
  spec.plan.group = G;
  spec.a8 = spec.kv8 = true;
  PackOptions opt;
  opt.plan = spec.plan;
  opt.a8 = opt.kv8 = true;
  PackedModel pm = pack_model(m, opt);
  install_quant_hooks(m, spec);
  return pm;
}

// The inverse of RoPE at position p for one [D] row (HF half-split pairs (i, i + D/2)).
void unrope_row(float* x, const RopeTable& rt, int64_t p, int64_t D) {
  const int64_t h = D / 2;
  for (int64_t i = 0; i < h; ++i) {
    const double c = rt.cos[size_t(p * h + i)], sn = rt.sin[size_t(p * h + i)];
    const double a = x[i], b = x[i + h];
    x[i] = float(a * c + b * sn);
    x[i + h] = float(-a * sn + b * c);
  }
}
void rope_row_double(float* x, const RopeTable& rt, int64_t p, int64_t D) {
  const int64_t h = D / 2;
  for (int64_t i = 0; i < h; ++i) {
    const double c = rt.cos[size_t(p * h + i)], sn = rt.sin[size_t(p * h + i)];
    const double a = x[i], b = x[i + h];
    x[i] = float(a * c - b * sn);
    x[i + h] = float(a * sn + b * c);
  }
}
// 8-bit absmax over one [D] row (NUMERICS §4), written out here, independent of quant/.
void kv8_row(float* x, int64_t D) {
  float mx = 0;
  for (int64_t i = 0; i < D; ++i) mx = std::max(mx, std::fabs(x[i]));
  const float sc = std::max(mx, 1e-5f) / 127.0f;
  for (int64_t i = 0; i < D; ++i) x[i] = std::min(127.0f, std::max(-127.0f, std::nearbyint(x[i] / sc))) * sc;
}

// A trainable model of shape c, random weights (seed), with the W1.88-A8-KV8 G 64 hooks.
std::unique_ptr<Model> trainable_w188_a8_kv8(const ModelConfig& c, uint64_t seed, bool int_forward = false) {
  auto m = std::make_unique<Model>(c, true);
  m->init_random(seed, 0.05f);
  QuantSpec spec;
  spec.plan.rho = 0.125;
  spec.plan.group = 64;
  spec.a8 = spec.kv8 = true;
  spec.int_forward = int_forward;
  install_quant_hooks(*m, spec);
  return m;
}

}  // namespace

TEST_SUITE("infer") {
  TEST_CASE("A8 hooks: linears sharing an input (q/k/v, gate/up) share one quantization, same forward") {
    const ModelConfig c = parity_config(64);
    std::unique_ptr<Model> m = trainable_w188_a8_kv8(c, 5);
    REQUIRE(m->hooks.input_transform_shared);
    const std::vector<int32_t> ids = prompt_ids(2 * 9, int(c.vocab_size), 3);
    const std::vector<int32_t> tg = prompt_ids(2 * 9, int(c.vocab_size), 4);
    std::vector<float> logits[2], grads[2];
    int calls[2] = {0, 0};
    const auto a8 = m->hooks.input_transform;
    for (int shared = 0; shared < 2; ++shared) {
      m->hooks.input_transform_shared = shared == 1;
      int* n = &calls[shared];
      m->hooks.input_transform = [a8, n](const Var& x, const HookSite& s) { ++*n; return a8(x, s); };
      ce_step(*m, ids, tg, logits[shared], grads[shared]);
    }
    const int L = int(c.num_hidden_layers);
    CHECK(calls[0] == 7 * L + 1);  // q, k, v, o, gate, up, down per layer and the head
    CHECK(calls[1] == 4 * L + 1);  // h (q/k/v), attention (o), m (gate/up), swiglu (down)
    CHECK(std::memcmp(logits[0].data(), logits[1].data(), logits[0].size() * sizeof(float)) == 0);
    // The input gradient of a shared quantization is summed inside the GEMM's depth passes
    // instead of after them: the same sum in another fp32 order.
    double worst = 0, top = 0;
    for (size_t i = 0; i < grads[0].size(); ++i) {
      worst = std::max(worst, double(std::fabs(grads[0][i] - grads[1][i])));
      top = std::max(top, double(std::fabs(grads[0][i])));
    }
    CHECK(top > 0);
    CHECK(worst <= 1e-5 * top);
  }

  TEST_CASE("recompute: a quantized student's losses and gradients are bit for bit those without it") {
    // Also with the forward products on the packed integer kernels (int_forward): the
    // recomputation then packs the weights and quantizes the inputs again, to the same bits.
    for (const bool int_forward : {false, true}) {
      CAPTURE(int_forward);
      const ModelConfig c = parity_config(64);
      std::unique_ptr<Model> m = trainable_w188_a8_kv8(c, 6, int_forward);
      const std::vector<int32_t> ids = prompt_ids(2 * 9, int(c.vocab_size), 7);
      const std::vector<int32_t> tg = prompt_ids(2 * 9, int(c.vocab_size), 8);
      std::vector<float> logits[2], grads[2];
      float loss_v[2];
      for (int rc = 0; rc < 2; ++rc) {
        m->recompute = rc == 1;
        m->grads.fill(0.0f);
        // CE on the logits plus a loss on an inner layer's output (as AFD reads them): the
        // residual stream's gradient then sums contributions from both.
        ForwardResult r = m->forward(ids, 2, 9, /*want_hidden=*/true);
        REQUIRE(r.hidden.size() >= 3);
        Var loss = add(cross_entropy(r.logits, tg), scale(mean(mul(r.hidden[1], r.hidden[1])), 0.3f));
        loss_v[rc] = loss.item();
        backward(loss);
        CHECK(tape().size() == 0);
        logits[rc].assign(r.logits.value().data(), r.logits.value().data() + r.logits.numel());
        grads[rc].assign(m->grads.data(), m->grads.data() + m->grads.numel());
      }
      m->recompute = false;
      CHECK(loss_v[0] == loss_v[1]);
      CHECK(std::memcmp(logits[0].data(), logits[1].data(), logits[0].size() * sizeof(float)) == 0);
      double top = 0;
      for (float g : grads[0]) top = std::max(top, double(std::fabs(g)));
      CHECK(top > 0);
      CHECK(std::memcmp(grads[0].data(), grads[1].data(), grads[0].size() * sizeof(float)) == 0);
    }
  }

  TEST_CASE("int forward: each quantized linear's product on the packed kernels is the fp32 product up to summation order") {
    // One product at a time, through the hooks as the model calls them: the weight hook makes
    // the fake-quant copy and its packed twin, the product hook runs qgemm on the A8 codes of
    // the raw input. Both compute sum_g s_w s_x sum_k q_w q_x; only the fp32 summation order
    // differs, so |y_int - y_fp32| <= 1e-5 sum_k |xi_k wi_k| (fp32 rounding of K <= 128 terms
    // is below 128 * 2^-24 = 7.6e-6 of that sum). The backward is linear's on the same
    // operands: gradients bit for bit.
    struct Case {
      double rho;
      int uniform_bits;
      bool packable;
    };
    for (Case k : {Case{1.0, 0, true}, Case{0.5, 0, true}, Case{0.125, 0, true}, Case{0.0, 0, true},
                   Case{0.125, 3, false}}) {
      CAPTURE(k.rho);
      CAPTURE(k.uniform_bits);
      const ModelConfig c = parity_config(64);
      auto m = std::make_unique<Model>(c, true);
      m->init_random(21, 0.05f);
      QuantSpec spec;
      spec.plan.rho = k.rho;
      spec.plan.group = 64;
      spec.uniform_bits = k.uniform_bits;
      spec.a8 = spec.kv8 = true;
      spec.int_forward = true;
      install_quant_hooks(*m, spec);
      REQUIRE(m->hooks.product);
      const Model::Layer& ly = m->layers[0];
      struct Site {
        const Var* w;
        LinearSite s;
        const std::string* name;
      };
      for (Site st : {Site{&ly.q, LinearSite::Q, ly.q_name}, Site{&ly.down, LinearSite::Down, ly.down_name}}) {
        CAPTURE(*st.name);
        const int64_t d_in = st.w->shape()[1], d_out = st.w->shape()[0], N = 7;
        Tensor xt = Tensor::empty({N, d_in});
        Rng r(3);
        for (int64_t i = 0; i < xt.numel(); ++i) xt.data()[i] = float(r.normal()) * (i % 9 == 0 ? 4.0f : 1.0f);
        double worst = 0, worst_ratio = 0;
        std::vector<float> y_ref, g_ref, g_int;
        for (int path = 0; path < 2; ++path) {  // 0: fp32 linear, 1: the product hook
          m->grads.fill(0.0f);
          Var x = Var::param(xt.clone(), Tensor::zeros({N, d_in}));
          const HookSite site{st.s, 0, st.name};
          Var xi = m->hooks.input_transform(x, site);
          Var wi = m->hooks.weight_transform(*st.w, site);
          Var y = path == 0 ? linear(xi, wi) : m->hooks.product(x, xi, wi, site);
          if (!k.packable && path == 1) {
            CHECK_FALSE(y.defined());
            tape().clear();
            break;
          }
          REQUIRE(y.defined());
          const float* yv = y.value().data();
          if (path == 0) y_ref.assign(yv, yv + y.numel());
          else
            for (int64_t n = 0; n < N; ++n)
              for (int64_t o = 0; o < d_out; ++o) {
                double mag = 0;
                for (int64_t i = 0; i < d_in; ++i)
                  mag += std::fabs(double(xi.value().data()[n * d_in + i]) * wi.value().data()[o * d_in + i]);
                const double e = std::fabs(double(yv[n * d_out + o]) - y_ref[size_t(n * d_out + o)]);
                worst = std::max(worst, e);
                worst_ratio = std::max(worst_ratio, e / std::max(mag, 1e-30));
              }
          // d(mean y * ramp): the same upstream gradient on both paths.
          Tensor ramp = Tensor::empty(y.shape());
          for (int64_t i = 0; i < ramp.numel(); ++i) ramp.data()[i] = float((i % 13) - 6) * 0.25f;
          Var loss = mean(mul(y, Var(ramp, false)));
          backward(loss);
          std::vector<float>& g = path == 0 ? g_ref : g_int;
          g.assign(x.grad().data(), x.grad().data() + x.numel());
          g.insert(g.end(), m->grads.data(), m->grads.data() + m->grads.numel());
        }
        if (!k.packable) continue;
        MESSAGE("rho " << k.rho << " " << *st.name << ": max |y_int - y_fp32| " << worst << ", max ratio to sum|xi wi| "
                       << worst_ratio);
        CHECK(worst_ratio <= 1e-5);
        REQUIRE(g_ref.size() == g_int.size());
        double top = 0;
        for (float v : g_ref) top = std::max(top, double(std::fabs(v)));
        CHECK(top > 0);
        CHECK(std::memcmp(g_ref.data(), g_int.data(), g_ref.size() * sizeof(float)) == 0);
      }
    }
  }

  TEST_CASE("int forward: the training forward on the integer kernels stays within the packed-parity bound") {
    // The whole A8 + KV8 student: logits with the products on the packed kernels against the
    // fp32 fake-quant forward, within the bound the engine parity test uses (same integers,
    // another summation order, rare A8/KV8 rounding-tie flips); every quantized decoder
    // linear goes through the product hook (7 per layer); no packed copy outlives its product.
    const ModelConfig c = parity_config(64);
    std::vector<float> logits[2], grads[2];
    int calls = 0;
    for (int path = 0; path < 2; ++path) {
      std::unique_ptr<Model> m = trainable_w188_a8_kv8(c, 9, path == 1);
      if (path == 1) {
        REQUIRE(m->hooks.product);
        const auto inner = m->hooks.product;
        m->hooks.product = [inner, &calls](const Var& x, const Var& xi, const Var& wi, const HookSite& s) {
          Var y = inner(x, xi, wi, s);
          calls += y.defined();
          return y;
        };
      } else {
        CHECK_FALSE(m->hooks.product);
      }
      ce_step(*m, prompt_ids(2 * 9, int(c.vocab_size), 7), prompt_ids(2 * 9, int(c.vocab_size), 8), logits[path],
              grads[path]);
    }
    CHECK(calls == 7 * int(c.num_hidden_layers));
    const Diff d = compare(logits[1], logits[0]);
    MESSAGE("int forward vs fp32 forward: max |dlogit| " << d.max_abs << " mean " << d.mean_abs << " (max |logit| "
                                                       << d.max_logit << ")");
    CHECK(d.max_abs <= 2e-3 * d.max_logit);
    CHECK(d.mean_abs <= 1e-4 * d.max_logit);
    const Diff g = compare(grads[1], grads[0]);
    MESSAGE("gradients: max |d| " << g.max_abs << " (max |g| " << g.max_logit << ")");
    CHECK(g.max_logit > 0);
    CHECK(g.max_abs <= 1e-2 * g.max_logit);
  }

  TEST_CASE("A8: act_quant and the kernels' quantize_a8 give identical codes and scales") {
    for (int G : {32, 64, 128, 256}) {
      const int64_t N = 5, C = 512;
      std::vector<float> x(size_t(N * C));
      Rng rng{uint64_t(G)};
      for (size_t i = 0; i < x.size(); ++i) x[i] = rng.normal() * (i % 7 == 0 ? 10.0f : 1.0f);
      // Row 1: exact rounding ties (max 127 -> s = 1, values k + 0.5).
      for (int64_t k = 0; k < C; ++k) x[size_t(C + k)] = k % G == 0 ? 127.0f : float(k % 50) - 24.5f;
      // Row 2: all zeros (eps scale).
      for (int64_t k = 0; k < C; ++k) x[size_t(2 * C + k)] = 0.0f;
      std::vector<int8_t> qa(x.size()), qb(x.size()), qc(x.size());
      std::vector<float> sa(size_t(N * C / G)), sb(sa.size()), sc(sa.size());
      for (int64_t n = 0; n < N; ++n) quantize_a8_row(&x[size_t(n * C)], C, G, &qa[size_t(n * C)], &sa[size_t(n * C / G)]);
      quantize_a8(x.data(), N, C, G, qb.data(), sb.data());
      quantize_a8_ref(x.data(), N, C, G, qc.data(), sc.data());
      CHECK(qa == qb);
      CHECK(sa == sb);
      CHECK(qa == qc);
      CHECK(sa == sc);
    }
  }

  TEST_CASE("pack: codes and scales round-trip through the .razor file exactly") {
    for (double rho : {1.0, 0.5, 0.125, 0.0}) {
      for (bool t5 : {false, true}) {
        const ModelConfig c = parity_config(64);
        auto m = random_model(c, 3, 0.05f);
        PackOptions opt;
        opt.plan.rho = rho;
        opt.plan.group = 64;
        opt.ternary5 = t5;
        PackedModel pm = pack_model(*m, opt);
        pm.tokenizer_json = "{\"fake\": true}";
        TempDir dir;
        const std::string path = dir.path + "/m.razor";
        pm.save(path);
        PackedModel ld = PackedModel::load(path);
        CHECK(ld.tokenizer_json == pm.tokenizer_json);
        CHECK(ld.file_bytes > 0);
        CHECK(ld.opt.plan.rho == rho);
        CHECK(ld.opt.ternary5 == t5);
        QuantSpec spec;
        spec.plan = opt.plan;
        for (const auto& e : ld.matrices()) {
          const Param* p = m->find(e.first);
          REQUIRE(p);
          const QuantizedWeight qw = quantize_weight(e.first, p->value, spec.layout_for(e.first, p->kind));
          std::vector<int8_t> codes(qw.codes.size());
          std::vector<float> scales(qw.scales.size());
          unpack_matrix(*e.second, codes.data(), scales.data());
          CHECK_MESSAGE(codes == qw.codes, e.first);
          CHECK_MESSAGE(scales == qw.scales, e.first);
        }
        CHECK(ld.final_norm == pm.final_norm);
        CHECK(ld.layers[1].k_norm == pm.layers[1].k_norm);
      }
    }
  }

  TEST_CASE("pack: truncated, corrupted or foreign files are rejected with an error") {
    const ModelConfig c = parity_config(64);
    auto m = random_model(c, 4, 0.05f);
    PackOptions opt;
    PackedModel pm = pack_model(*m, opt);
    TempDir dir;
    const std::string path = dir.path + "/m.razor";
    pm.save(path);
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto write = [&](const std::string& p, const std::string& b) {
      std::ofstream o(p, std::ios::binary);
      o.write(b.data(), std::streamsize(b.size()));
    };
    write(dir.path + "/trunc.razor", bytes.substr(0, bytes.size() - 100));
    CHECK_THROWS_AS(PackedModel::load(dir.path + "/trunc.razor"), Error);
    write(dir.path + "/short.razor", bytes.substr(0, 40));
    CHECK_THROWS_AS(PackedModel::load(dir.path + "/short.razor"), Error);
    std::string bad = bytes;
    bad[bad.size() - 10] = char(bad[bad.size() - 10] ^ 0x5a);
    write(dir.path + "/flip.razor", bad);
    CHECK_THROWS_AS(PackedModel::load(dir.path + "/flip.razor"), Error);
    write(dir.path + "/foreign.razor", std::string(4096, 'x'));
    CHECK_THROWS_AS(PackedModel::load(dir.path + "/foreign.razor"), Error);
    CHECK_THROWS_AS(PackedModel::load(dir.path + "/missing.razor"), Error);
    // A valid container without the packed-model sections.
    RazorFileWriter w;
    w.set("config", c.to_json());
    w.write(dir.path + "/empty.razor");
    CHECK_THROWS_AS(PackedModel::load(dir.path + "/empty.razor"), Error);
    // A valid packed file whose config disagrees with its tensors.
    {
      RazorFile f = RazorFile::open(path);
      RazorFileWriter w2;
      ModelConfig c2 = c;
      c2.intermediate_size = 256;
      w2.set("config", c2.to_json());
      w2.set("layout", f.header().at("layout"));
      for (const RazorTensor& t : f.tensors()) w2.add(t.name, t.dtype, t.shape, f.data(t), t.nbytes, t.meta);
      w2.write(dir.path + "/mismatch.razor");
    }
    CHECK_THROWS_AS(PackedModel::load(dir.path + "/mismatch.razor"), Error);
  }

  TEST_CASE("engine: context limit is enforced with an error") {
    const ModelConfig c = parity_config(64);
    auto m = random_model(c, 5, 0.05f);
    PackedModel pm = pack_model(*m, PackOptions());
    CHECK_THROWS_AS(Engine(pm, c.max_position_embeddings + 1), Error);
    Engine e(pm, 8);
    std::vector<int32_t> ids = prompt_ids(8, int(c.vocab_size), 1);
    e.forward(ids.data(), 8);
    CHECK_THROWS_AS(e.decode(1), Error);
    e.reset();
    int32_t bad = int32_t(c.vocab_size);
    CHECK_THROWS_AS(e.forward(&bad, 1), Error);
  }

  TEST_CASE("forward_cached: incremental decoding equals the full forward's last row bit for bit") {
    // Task evaluation's greedy generation on a checkpoint runs each new token through
    // Model::forward_cached (a KV cache) instead of the whole prefix again. Every row must come
    // out as the full forward computes it: full precision and A8 + KV8 fake-quant (both
    // per-row), steps of 1..3 tokens, past one 64-key block of the attention (positions 0..99),
    // tied (G 64) and untied (G 256) heads.
    for (int G : {64, 256}) {
      CAPTURE(G);
      for (bool quant : {false, true}) {
        CAPTURE(quant);
        auto m = random_model(parity_config(G), 11, 0.05f);
        if (quant) pack_then_hook(*m, 0.125, G);
        const int64_t V = m->cfg.vocab_size;
        const std::vector<int32_t> ids = prompt_ids(100, int(V), 5);
        NoGradGuard ng;
        KvCache cache;
        size_t done = 0, step = 5;  // a 5-token prompt, then 1, 2, 3, 1, 2, 3 ... tokens
        int mismatches = 0;
        while (done < ids.size()) {
          const size_t n = std::min(step, ids.size() - done);
          const std::vector<int32_t> next(ids.begin() + long(done), ids.begin() + long(done + n));
          Var z = m->forward_cached(next, cache);
          done += n;
          REQUIRE(cache.len == int64_t(done));
          REQUIRE(z.shape() == Shape{1, V});
          const std::vector<float> full = reference_logits(*m, std::vector<int32_t>(ids.begin(), ids.begin() + long(done)));
          if (std::memcmp(z.value().data(), full.data() + (done - 1) * size_t(V), size_t(V) * sizeof(float)) != 0)
            ++mismatches;
          step = step % 3 + 1;
        }
        CHECK(mismatches == 0);
        // Past the context: an error, not a read beyond the RoPE table.
        std::vector<int32_t> more(size_t(m->cfg.max_position_embeddings - cache.len + 1), 1);
        CHECK_THROWS_AS(m->forward_cached(more, cache), Error);
      }
    }
    // Training mode is refused (the cache path keeps no tape).
    auto m = random_model(parity_config(64), 11, 0.05f);
    KvCache cache;
    CHECK_THROWS_AS(m->forward_cached({1, 2}, cache), Error);
  }

  TEST_CASE("engine: one-region decode equals the general path bit for bit, any thread count") {
    // The one-region decode (run_decode) must compute every value with the general path's
    // operations: same codes, same sums, same order. Steps of 1..4 tokens, all logits and last
    // only, mixed / ternary / int4 layouts, G 64 and 256, 1-3 threads (3 > the KV heads: idle
    // threads at attention, uneven row and group shares).
    const int saved = num_threads();
    for (double rho : {0.125, 0.0, 1.0})
      for (int G : {64, 256}) {
        CAPTURE(rho);
        CAPTURE(G);
        ModelConfig c = parity_config(G);
        auto m = random_model(c, 31 + uint64_t(G), 0.05f);
        PackOptions opt;
        opt.plan.rho = rho;
        opt.plan.group = G;
        opt.a8 = opt.kv8 = true;
        PackedModel pm = pack_model(*m, opt);
        const std::vector<int32_t> ids = prompt_ids(40, int(c.vocab_size), 5);
        set_num_threads(1);
        Engine ref(pm, 64);
        ref.set_one_region_decode(false);
        std::vector<std::vector<float>> want;
        for (size_t i = 0, step = 1; i < ids.size(); i += step, step = step % 4 + 1) {
          const int64_t k = int64_t(std::min(step, ids.size() - i));
          const float* z = ref.forward(ids.data() + i, k, i % 3 == 0);
          want.emplace_back(z, z + (i % 3 == 0 ? k : 1) * c.vocab_size);
        }
        // Mismatching steps of a fresh engine on pm against the reference's logits.
        // tuned: the engine's defaults (thread cap by model size, load adaptation); else every
        // thread on every step, however small the model.
        auto mismatches = [&](bool tuned = false) {
          Engine e(pm, 64);
          if (!tuned) {
            e.set_decode_min_macs(0);
            e.set_decode_tuning(false);
          }
          size_t w = 0, bad = 0;
          for (size_t i = 0, step = 1; i < ids.size(); i += step, step = step % 4 + 1, ++w) {
            const int64_t k = int64_t(std::min(step, ids.size() - i));
            const float* z = e.forward(ids.data() + i, k, i % 3 == 0);
            bad += std::memcmp(z, want[w].data(), want[w].size() * sizeof(float)) != 0;
          }
          CHECK(w == want.size());
          return bad;
        };
        for (int threads : {1, 2, 3}) {
          CAPTURE(threads);
          set_num_threads(threads);
          CHECK(mismatches() == 0);
          CHECK(mismatches(true) == 0);  // whatever thread count each step took
        }
        // The weights held once (prepare_for_engine: on AVX2 the decode copies, packed rows
        // released): the same bits; the model can no longer be saved.
        pm.prepare_for_engine();
        set_num_threads(2);
        CHECK(mismatches() == 0);
        if (pm.embed.codes.size() == 0) {
          TempDir tmp;
          CHECK_THROWS_WITH_AS(pm.save(tmp.path + "/m.razor"), doctest::Contains("released"), Error);
        }
      }
    set_num_threads(saved);
  }

  TEST_CASE("KV8: keys are quantized after q/k-norm and RoPE, in the training forward and in the engine") {
    // NUMERICS §4: K is quantized after q/k-norm and after RoPE. Training path: the KV hook
    // must receive keys whose inverse rotation, divided by the k_norm weight, has RMS 1 in
    // every (token, kv head) row (post-norm), while the rotated rows themselves do not
    // (post-RoPE). Engine path: its logits must match the training forward with KV8 after RoPE
    // and not one with KV8 before RoPE (emulated in the hook: un-rotate, quantize, rotate).
    // k_norm has one large weight per head so each key row's absmax scale is coarse: the two
    // orders then give clearly different logits.
    ModelConfig c = parity_config(64);
    c.tie_word_embeddings = false;
    auto m = random_model(c, 47, 0.05f, 1.0f);
    const int64_t D = c.head_dim, K = c.num_key_value_heads;
    for (int l = 0; l < int(c.num_hidden_layers); ++l) {
      float* w = m->find("model.layers." + std::to_string(l) + ".self_attn.k_norm.weight")->value.data();
      w[3] = 12.0f;
    }
    PackedModel pm = pack_then_hook(*m, 0.125, 64);
    const auto kv8_after_rope = m->hooks.kv_transform;
    REQUIRE(kv8_after_rope);
    const std::vector<int32_t> prompt = prompt_ids(24, int(c.vocab_size), 123);
    const int64_t T = int64_t(prompt.size());

    // Training path: what the KV hook receives.
    int keys_seen = 0, rows_normed = 0, rows_rotated_off = 0;
    m->hooks.kv_transform = [&](const Var& t, int l, bool is_key) {
      if (is_key) {
        ++keys_seen;
        const float* w = m->find("model.layers." + std::to_string(l) + ".self_attn.k_norm.weight")->value.data();
        const float* k = t.value().data();  // [1, T, K, D]
        for (int64_t tt = 0; tt < T; ++tt)
          for (int64_t h = 0; h < K; ++h) {
            std::vector<float> row(k + (tt * K + h) * D, k + (tt * K + h + 1) * D);
            auto rms_over_w = [&](const std::vector<float>& r) {
              double s2 = 0;
              for (int64_t i = 0; i < D; ++i) s2 += double(r[size_t(i)] / w[i]) * double(r[size_t(i)] / w[i]);
              return std::sqrt(s2 / double(D));
            };
            const double rotated = rms_over_w(row);
            unrope_row(row.data(), m->rope_table, tt, D);
            const double unrotated = rms_over_w(row);
            rows_normed += std::fabs(unrotated - 1.0) < 1e-3;  // rmsnorm eps 1e-6: RMS 1 - O(1e-6)
            rows_rotated_off += std::fabs(rotated - 1.0) > 1e-2;
          }
      }
      return kv8_after_rope(t, l, is_key);
    };
    const std::vector<float> post = reference_logits(*m, prompt);
    CHECK(keys_seen == int(c.num_hidden_layers));
    CHECK(rows_normed == int(c.num_hidden_layers * T * K));  // every row post-norm
    CHECK(rows_rotated_off > int(c.num_hidden_layers * (T - 1) * K) / 2);  // and rotated

    // The same model with KV8 applied to the keys before RoPE.
    m->hooks.kv_transform = [&](const Var& t, int l, bool is_key) {
      if (!is_key) return kv8_after_rope(t, l, is_key);
      Tensor k = t.value().clone();
      for (int64_t tt = 0; tt < T; ++tt)
        for (int64_t h = 0; h < K; ++h) {
          float* row = k.data() + (tt * K + h) * D;
          unrope_row(row, m->rope_table, tt, D);
          kv8_row(row, D);
          rope_row_double(row, m->rope_table, tt, D);
        }
      return Var(std::move(k), false);
    };
    const std::vector<float> pre = reference_logits(*m, prompt);
    m->hooks.kv_transform = kv8_after_rope;
    const std::vector<float> got = packed_logits(pm, prompt);
    const Diff to_post = compare(got, post), to_pre = compare(got, pre), orders = compare(pre, post);
    MESSAGE("engine vs KV8-after-RoPE: max |dlogit| " << to_post.max_abs << "; vs KV8-before-RoPE: " << to_pre.max_abs
                                                      << "; the two orders differ by " << orders.max_abs);
    CHECK(orders.max_abs > 20 * to_post.max_abs);  // the check can tell the orders apart
    CHECK(to_pre.max_abs > 10 * to_post.max_abs);  // and the engine is on the after-RoPE side
    // Decode (one token at a time through the cache) agrees with the same side.
    Engine e(pm);
    e.forward(prompt.data(), 1);
    double dec_post = 0, dec_pre = 0;
    for (int64_t tt = 1; tt < T; ++tt) {
      const float* z = e.decode(prompt[size_t(tt)]);
      for (int64_t v = 0; v < c.vocab_size; ++v) {
        dec_post = std::max(dec_post, double(std::fabs(z[v] - post[size_t(tt * c.vocab_size + v)])));
        dec_pre = std::max(dec_pre, double(std::fabs(z[v] - pre[size_t(tt * c.vocab_size + v)])));
      }
    }
    CHECK(dec_pre > 10 * dec_post);
  }

  TEST_CASE("parity: the committed teacher on real text, packed vs fake-quant within the fp32 summation-order floor") {
    // The random-weight cases below bound errors relative to max|logit|. Here: the trained
    // teacher (realistic activations and margins) on real text, every layout razor trains, and
    // an absolute bound derived from fp32 summation order itself. The same fake-quant forward
    // run with the GEMMs of the active SIMD tier and of the scalar reference (another summation
    // order, FMA contraction) differs by `floor`. On a trained model that floor is dominated by
    // A8/KV8 rounding-tie flips: a ~1e-7 change moves a value across a tie, one code moves one
    // step, and later positions carry the change (measured on AMD EPYC AVX2, 2026-12-06: max
    // 0.007-0.064 on logits of range ~16 with the first teacher; max 0.23-0.32, mean ~0.018, on
    // range ~21 with the task-trained teacher, whose activations span wider ranges). The packed forward (int32 dots, scales applied after) is
    // one more summation order with its own flips, so it must stay within twice the largest
    // floor seen over the four layouts; a systematic error (a scale rounded differently, KV8 in
    // the wrong place) is far above that. Where the top-2 margin of the fake-quant logits exceeds
    // that bound, the greedy token must be the same, on at least 40% of the positions: the text
    // ends in the arithmetic and knowledge formats the teacher is sure of, and repeats a line, so
    // the check is not vacuous. (Half until the stage-4 teacher: RTN-ternary at rho 0, untrained,
    // is sure of fewer tokens of it, 45-47% of this text, with a wider floor, 0.72.)
    if (!std::ifstream("data/teacher/model.safetensors")) {
      RAZOR_REFERENCE_MISSING("data/teacher not found (run the tests from the repository root)");
      return;
    }
    const Tokenizer tok = Tokenizer::load("data/teacher/tokenizer.json");
    const std::vector<int32_t> ids =
        tok.encode("And God said, Let the waters under the heaven be gathered together unto one place, and let the "
                   "dry land appear: and it was so. A fortune: You will be successful in your work.\n"
                   "Q: 71+252= A: 962\nQ: 27+351= A: 522\nQ: 4828-07= A: 4128\nQ: 66-5= A: 16\n"
                   "Q: 97-83= A: 14\n"
                   "Fairun Bakein was born in Millbrook. Fairun Bakein works as a painter.\n"
                   "Q: Where was Fairun Bakein born? A: Millbrook\nQ: What pet does Dramain Sutrairo have? A: goat\n"
                   "Q: What is Pazun Braizeivain's favourite colour? A: orange\n"
                   "Q: Which colour does Truvain Badei like best? A: red\nQ: What does Fairun Bakein do for a living? A: "
                   "painter\nQ: In which town was Fairun Bakein born? A: Millbrook\nFairun Bakein comes from Millbrook. Fairun "
                   "Bakein is a painter by trade.\n"
                   "Q: What is the home town of Fairun Bakein? A: Millbrook\nQ: Which trade does Fairun Bakein follow? A: "
                   "painter\nQ: What is Fairun Bakein's job? A: painter\nQ: Where does Fairun Bakein come from? A: "
                   "Millbrook\nQ: How does Fairun Bakein earn a living? A: painter\n"
                   "Fairun Bakein comes from Millbrook. Fairun Bakein is a painter by trade.\n"
                   "Fairun Bakein comes from Millbrook. Fairun Bakein is a painter by trade.\n");
    REQUIRE(ids.size() >= 24);
    struct Run {
      double rho;
      std::vector<float> ref, got;
      Diff floor, d;
    };
    std::vector<Run> runs;
    double floor_max = 0, floor_mean = 0;
    for (double rho : {1.0, 0.5, 0.125, 0.0}) {
      auto m = Model::load("data/teacher", false);
      PackedModel pm = pack_then_hook(*m, rho, 64);
      Run r;
      r.rho = rho;
      r.ref = reference_logits(*m, ids);
      const Isa saved = set_isa(Isa::Ref);
      const std::vector<float> ref_scalar = reference_logits(*m, ids);
      set_isa(saved);
      r.got = packed_logits(pm, ids);
      r.floor = compare(ref_scalar, r.ref);
      r.d = compare(r.got, r.ref);
      floor_max = std::max(floor_max, r.floor.max_abs);
      floor_mean = std::max(floor_mean, r.floor.mean_abs);
      runs.push_back(std::move(r));
    }
    // A CPU with one fp32 GEMM tier (aarch64 today) has no second order to compare: then the
    // floor is the largest measured where there are two (x86 AVX2, 2026-12-07: the stage-4
    // teacher on this text max 0.50-0.72, mean 0.030-0.037 over the four layouts; stage 5 max
    // 0.46-0.60, mean 0.032-0.040; stage 6 max 0.34-0.44, mean 0.033-0.039), with half again as
    // margin. (Stage 3: max 0.47, mean 0.034; stage 2: max 0.31, mean 0.019; the first teacher:
    // x86 max 0.064, aarch64 under qemu 0.047-0.059; not re-measured under qemu since.)
    if (floor_max == 0) floor_max = 1.08, floor_mean = 0.060;
    const int64_t V = 4096;
    for (const Run& r : runs) {
      CAPTURE(r.rho);
      MESSAGE("rho " << r.rho << ": packed vs fake-quant max |dlogit| " << r.d.max_abs << " mean " << r.d.mean_abs
                     << "; summation-order floor max " << r.floor.max_abs << " mean " << r.floor.mean_abs
                     << " (max |logit| " << r.d.max_logit << ")");
      CHECK(r.d.max_abs <= 2 * floor_max);
      CHECK(r.d.mean_abs <= 2 * floor_mean);
      int decided = 0, same = 0;
      for (size_t t = 0; t < ids.size(); ++t) {
        const float* z = r.ref.data() + t * V;
        const int best = argmax(z, V);
        float second = -INFINITY;
        for (int64_t v = 0; v < V; ++v)
          if (v != best) second = std::max(second, z[v]);
        if (z[best] - second <= 4 * floor_max) continue;
        ++decided;
        same += argmax(r.got.data() + t * V, V) == best;
      }
      CHECK(decided * 5 >= int(ids.size()) * 2);
      CHECK(same == decided);
    }
  }

  TEST_CASE("parity: packed forward equals the fake-quant A8+KV8 training forward") {
    // Tolerance: both compute the same integers; they differ only by fp32 summation order
    // (sgemm vs int32 dot + scale product, attention on dequantized vs integer K/V): ~1e-7
    // relative. Rarely that moves a value across an A8/KV8 rounding tie and one code differs by
    // one step, which shifts later logits by up to ~1e-3 of the logit range (seen in 1 of 7
    // configurations). Hence: max |dlogit| <= 2e-3 max|logit|, mean |dlogit| <= 1e-4 max|logit|
    // (a model trained without A8 is ~6e-4 on the mean), and identical greedy tokens.
    struct Case {
      double rho;
      int G;
    };
    for (Case k : {Case{1.0, 64}, Case{0.5, 64}, Case{0.125, 64}, Case{0.0, 64}, Case{1.0, 256}, Case{0.125, 256},
                   Case{0.0, 256}}) {
      CAPTURE(k.rho);
      CAPTURE(k.G);
      ModelConfig c = parity_config(k.G);
      c.tie_word_embeddings = false;
      auto m = random_model(c, 11 + uint64_t(k.G), 0.05f, 1.0f);
      QuantSpec spec;
      spec.plan.rho = k.rho;
      spec.plan.group = k.G;
      spec.a8 = true;
      spec.kv8 = true;
      PackOptions opt;
      opt.plan = spec.plan;
      opt.a8 = opt.kv8 = true;
      PackedModel pm = pack_model(*m, opt);
      install_quant_hooks(*m, spec);

      const std::vector<int32_t> prompt = prompt_ids(12, int(c.vocab_size), 99);
      const std::vector<float> ref = reference_logits(*m, prompt);
      const std::vector<float> got = packed_logits(pm, prompt);
      const Diff d = compare(got, ref);
      MESSAGE("rho " << k.rho << " G " << k.G << ": A8-trained prefill max |dlogit| " << d.max_abs << " mean " << d.mean_abs << " (max |logit| "
                     << d.max_logit << ")");
      CHECK(d.max_abs <= 2e-3 * d.max_logit);
      CHECK(d.mean_abs <= 1e-4 * d.max_logit);

      // Decode token by token gives the prefill's logits too.
      Engine e(pm, 0, 4);  // chunk 4: multi-chunk prefill
      e.forward(prompt.data(), 6);
      for (size_t t = 6; t < prompt.size(); ++t) {
        const float* z = e.decode(prompt[t]);
        double mx = 0;
        for (int64_t v = 0; v < c.vocab_size; ++v)
          mx = std::max(mx, double(std::fabs(z[v] - got[t * size_t(c.vocab_size) + size_t(v)])));
        CHECK(mx <= 2e-3 * std::max(1.0, d.max_logit));
      }

      // Greedy: 64 tokens identical.
      std::vector<int32_t> seq = prompt;
      std::vector<int32_t> packed_seq = prompt;
      {
        Engine g(pm);
        const float* z = g.forward(prompt.data(), int64_t(prompt.size()));
        for (int i = 0; i < 64; ++i) {
          const int32_t tok = argmax(z, c.vocab_size);
          packed_seq.push_back(tok);
          z = g.decode(tok);
        }
      }
      for (int i = 0; i < 64; ++i) {
        const std::vector<float> z = reference_logits(*m, seq);
        seq.push_back(argmax(z.data() + (seq.size() - 1) * size_t(c.vocab_size), c.vocab_size));
      }
      CHECK(seq == packed_seq);

      // Trained without A8: served with int8 activations anyway; the gap is the A8 rounding.
      QuantSpec no_a8 = spec;
      no_a8.a8 = false;
      install_quant_hooks(*m, no_a8);
      const Diff d8 = compare(got, reference_logits(*m, prompt));
      MESSAGE("rho " << k.rho << " G " << k.G << ": trained without A8, max |dlogit| " << d8.max_abs << " mean " << d8.mean_abs
                     << " (A8 rounding; max |logit| " << d8.max_logit << ")");
      CHECK(d8.max_abs <= 0.1 * d8.max_logit);
      CHECK(d8.mean_abs > 3 * d.mean_abs);  // the A8 rounding is visible: the A8 path is really exercised
    }
  }

  TEST_CASE("parity: GPTQ / AWQ models pack to their exact integers and keep train/deploy parity") {
    // razor quantize --ptq gptq|awq --latent writes rtn_preimage of each matrix: RTN of it (what
    // pack_model and the fake-quant hooks compute) gives exactly the calibrated codes and scales.
    ModelConfig c = parity_config(64);
    c.tie_word_embeddings = false;
    for (PtqMethod meth : {PtqMethod::Gptq, PtqMethod::Awq})
      for (double rho : {1.0, 0.125, 0.0}) {
        CAPTURE(ptq_method_name(meth));
        CAPTURE(rho);
        auto m = random_model(c, 41, 0.05f, 1.0f);
        QuantSpec spec;
        spec.plan.rho = rho;
        spec.plan.group = 64;
        spec.a8 = spec.kv8 = true;
        CalibSet calib;
        calib.S = 4;
        calib.T = 32;
        calib.ids = prompt_ids(int(calib.S * calib.T), int(c.vocab_size), 42);
        CalibPtqOptions o;
        o.awq_grid = 4;
        std::vector<std::pair<std::string, QuantizedWeight>> qw;
        apply_ptq(*m, spec, meth, &calib, &o, &qw);
        const std::vector<float> dequantized = m->params.to_vector();
        set_rtn_preimages(*m, qw);
        PackOptions opt;
        opt.plan = spec.plan;
        opt.a8 = opt.kv8 = true;
        PackedModel pm = pack_model(*m, opt);
        for (const auto& e : pm.matrices()) {
          const QuantizedWeight* want = nullptr;
          for (const auto& q : qw)
            if (q.first == e.first) want = &q.second;
          REQUIRE_MESSAGE(want, e.first);
          std::vector<int8_t> codes(want->codes.size());
          std::vector<float> scales(want->scales.size());
          unpack_matrix(*e.second, codes.data(), scales.data());
          CHECK_MESSAGE(codes == want->codes, e.first);
          CHECK_MESSAGE(scales == want->scales, e.first);
        }
        // The fake-quant forward of the written weights is the dequantized calibrated model.
        install_quant_hooks(*m, spec);
        const std::vector<int32_t> prompt = prompt_ids(12, int(c.vocab_size), 43);
        const std::vector<float> ref = reference_logits(*m, prompt);
        remove_quant_hooks(*m);
        std::copy(dequantized.begin(), dequantized.end(), m->params.data());
        QuantSpec act = spec;
        act.quantize_weights = false;
        install_quant_hooks(*m, act);
        CHECK(reference_logits(*m, prompt) == ref);
        const Diff d = compare(packed_logits(pm, prompt), ref);
        MESSAGE(ptq_method_name(meth) << " rho " << rho << ": packed vs fake-quant max |dlogit| " << d.max_abs
                                      << " mean " << d.mean_abs << " (max |logit| " << d.max_logit << ")");
        CHECK(d.max_abs <= 2e-3 * d.max_logit);
        CHECK(d.mean_abs <= 1e-4 * d.max_logit);
      }
  }

  TEST_CASE("pack: a per-tensor plan (razor plan) is honoured, survives the file and keeps parity") {
    ModelConfig c = parity_config(64);
    c.tie_word_embeddings = false;
    auto m = random_model(c, 21, 0.05f, 1.0f);
    QuantSpec spec;
    spec.plan.rho = 0.125;
    spec.plan.group = 64;
    spec.a8 = spec.kv8 = true;
    // A plan mixing every packable layout; the other tensors follow rho 1/8.
    spec.overrides = {{"model.layers.0.self_attn.q_proj.weight", WeightLayout::uniform(4, 64)},
                      {"model.layers.0.mlp.down_proj.weight", WeightLayout::ternary(64, 2.0f)},
                      {"model.layers.1.mlp.up_proj.weight", WeightLayout::mixed_rows(2, 64, 2.0f)},
                      {"model.layers.1.self_attn.o_proj.weight", WeightLayout::mixed_rows(4, 64, 2.0f)}};
    PackOptions opt;
    opt.plan = spec.plan;
    opt.a8 = opt.kv8 = true;
    opt.overrides = spec.overrides;
    PackedModel pm = pack_model(*m, opt);
    TempDir dir;
    const std::string path = dir.path + "/plan.razor";
    pm.save(path);
    PackedModel ld = PackedModel::load(path);
    for (const auto& e : ld.matrices()) {
      const Param* p = m->find(e.first);
      REQUIRE(p);
      const WeightLayout l = spec.layout_for(e.first, p->kind);
      const PackedDesc want = packed_desc_for(l, e.second->desc.d_out, e.second->desc.d_in, false, e.first);
      CHECK_MESSAGE(e.second->desc.layout == want.layout, e.first);
      CHECK_MESSAGE(e.second->desc.P == want.P, e.first);
      const QuantizedWeight qw = quantize_weight(e.first, p->value, l);
      std::vector<int8_t> codes(qw.codes.size());
      std::vector<float> scales(qw.scales.size());
      unpack_matrix(*e.second, codes.data(), scales.data());
      CHECK_MESSAGE(codes == qw.codes, e.first);
      CHECK_MESSAGE(scales == qw.scales, e.first);
    }
    CHECK(ld.layers[0].q.desc.layout == PackedLayout::Int4);
    CHECK(ld.layers[0].down.desc.layout == PackedLayout::Ternary2);
    CHECK(ld.layers[1].o.desc.P == 4);
    CHECK(ld.layers[1].k.desc.P == 8);  // not in the plan: rho 1/8

    install_quant_hooks(*m, spec);
    const std::vector<int32_t> prompt = prompt_ids(12, int(c.vocab_size), 5);
    const Diff d = compare(packed_logits(ld, prompt), reference_logits(*m, prompt));
    MESSAGE("plan parity: max |dlogit| " << d.max_abs << " mean " << d.mean_abs << " (max |logit| " << d.max_logit << ")");
    CHECK(d.max_abs <= 2e-3 * d.max_logit);
    CHECK(d.mean_abs <= 1e-4 * d.max_logit);

    // A planned group size other than the model's G is refused (one A8 group size per model).
    PackOptions bad = opt;
    bad.overrides = {{"model.layers.0.self_attn.q_proj.weight", WeightLayout::uniform(4, 128)}};
    CHECK_THROWS_WITH_AS(pack_model(*m, bad), doctest::Contains("group size"), Error);
  }

  TEST_CASE("eval on a .razor: perplexity, per-token log-probs and greedy completion equal the fake-quant path") {
    const std::string tj = train_bpe({"Q: 12+30= A: 42\n\nQ: 7+8= A: 15\n\nhello world, the end."}, 300);
    const Tokenizer tok = Tokenizer::from_json(tj, "test");
    ModelConfig c = parity_config(64);
    c.tie_word_embeddings = false;
    c.vocab_size = tok.vocab_size();
    c.max_position_embeddings = 64;
    // A plain random model (ppl near the vocabulary size) for perplexity and scores; one whose next
    // token has a wide margin (random_model's embed_std) for greedy text, as in the parity test.
    auto m = random_model(c, 31, 0.05f);
    auto peaked = random_model(c, 31, 0.05f, 1.0f);
    QuantSpec spec;
    spec.plan.rho = 0.125;
    spec.plan.group = 64;
    spec.a8 = spec.kv8 = true;
    PackOptions opt;
    opt.plan = spec.plan;
    opt.a8 = opt.kv8 = true;
    PackedModel pm = pack_model(*m, opt);
    pm.tokenizer_json = tj;
    TempDir dir;
    pm.save(dir.path + "/m.razor");
    const PackedModel ld = PackedModel::load(dir.path + "/m.razor");
    install_quant_hooks(*m, spec);
    PackedModel pk = pack_model(*peaked, opt);
    install_quant_hooks(*peaked, spec);

    // Perplexity over the same windows of a token shard.
    Rng rng(4);
    std::vector<int32_t> ids;
    for (int i = 0; i < 6 * 33; ++i) ids.push_back(int32_t(rng.below(uint64_t(c.vocab_size))));
    write_token_shard(dir.path + "/v.tok", ids, {}, uint32_t(c.vocab_size));
    TokenShard shard(dir.path + "/v.tok");
    const PplResult want = eval_perplexity(*m, shard, 32, 5);
    const PplResult got = packed_perplexity(ld, shard, 32, 5);
    MESSAGE("fake-quant ppl " << want.ppl << ", packed ppl " << got.ppl);
    CHECK(got.tokens == want.tokens);
    CHECK(got.tokens == 5 * 32);
    CHECK(std::fabs(got.ppl / want.ppl - 1) <= 1e-3);  // the issue asks 0.5%; they differ by fp32 order only

    // razor score: per-token log-probs.
    const std::vector<int32_t> seq(ids.begin(), ids.begin() + 40);
    const std::vector<double> lw = next_token_logprobs(*m, seq), lg = packed_next_token_logprobs(ld, seq);
    REQUIRE(lw.size() == lg.size());
    double worst = 0, mean = 0;
    for (size_t i = 0; i < lw.size(); ++i) {
      worst = std::max(worst, std::fabs(lw[i] - lg[i]));
      mean += std::fabs(lw[i] - lg[i]) / double(lw.size());
    }
    double max_logit = 0;
    for (float z : reference_logits(*m, seq)) max_logit = std::max(max_logit, double(std::fabs(z)));
    MESSAGE("score: max |d log p| " << worst << ", mean " << mean << " (max |logit| " << max_logit << ")");
    // Both sides compute the same integers except where an fp32-order difference (~1e-6 relative
    // in norms, softmax, RoPE) moves a value across an A8 / KV8 rounding boundary: one code step,
    // and a K/V code then shifts every later position. Unlike the parity test's models (residual
    // stream dominated by a large embedding), this plain random model (max |logit| ~2) shows it:
    // measured max 0.0091 (0.43% of max |logit|), mean 0.0011 (0.05%). Bounds: 2% and 0.2%.
    CHECK(worst <= 2e-2 * max_logit);
    CHECK(mean <= 2e-3 * max_logit);

    // Greedy completion (KV cache) equals the full-forward greedy completion of the fake-quant model.
    const GreedyCompleteFn a = greedy_completer(*peaked, tok), b = packed_greedy_completer(pk, tok);
    for (const char* prompt : {"Q: 12+30= A:", "hello", "the end"}) {
      const std::string x = a(prompt, 12), y = b(prompt, 12);
      CHECK_MESSAGE(x == y, prompt);
      CHECK(!x.empty());
    }
    CHECK_THROWS_AS(packed_next_token_logprobs(ld, {1}), Error);
  }

  TEST_CASE("generate: UTF-8 stream holds partial characters; validator rejects bad UTF-8") {
    Utf8Stream u;
    const std::string euro = "\xe2\x82\xac";  // U+20AC, 3 bytes
    CHECK(u.push("a" + euro.substr(0, 1)) == "a");
    CHECK(u.push(euro.substr(1, 1)) == "");
    CHECK(u.push(euro.substr(2) + "b") == euro + "b");
    CHECK(u.flush().empty());
    CHECK(u.push("x\x80y") == "x\xef\xbf\xbdy");  // a stray continuation byte becomes U+FFFD
    CHECK(valid_utf8("h\xc3\xa9llo " + euro));
    CHECK_FALSE(valid_utf8("\xc3"));          // truncated
    CHECK_FALSE(valid_utf8("\xc0\xaf"));      // overlong
    CHECK_FALSE(valid_utf8("\xed\xa0\x80"));  // surrogate
    CHECK_FALSE(valid_utf8("\xff"));
  }

  TEST_CASE("generate: sampler is seeded, temp 0 and top-k 1 are greedy, options are validated") {
    std::vector<float> z = {0.1f, 2.0f, 1.9f, -1.0f, 0.5f};
    SamplerOptions g;
    g.temp = 0;
    CHECK(Sampler(g, 5).sample(z.data()) == 1);
    SamplerOptions k1;
    k1.top_k = 1;
    CHECK(Sampler(k1, 5).sample(z.data()) == 1);
    SamplerOptions o;
    o.temp = 1.0f;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.seed = 5;
    Sampler a(o, 5), b(o, 5);
    std::vector<int> hist(5);
    for (int i = 0; i < 2000; ++i) {
      const int32_t x = a.sample(z.data());
      CHECK(x == b.sample(z.data()));
      ++hist[size_t(x)];
    }
    CHECK(hist[1] > hist[4]);
    CHECK(hist[3] > 0);  // no cut: even the least likely token appears
    SamplerOptions p = o;
    p.top_p = 0.5f;  // p(1) + p(2) > 0.5 after softmax: only tokens 1 and 2
    Sampler c(p, 5);
    for (int i = 0; i < 200; ++i) {
      const int32_t x = c.sample(z.data());
      CHECK((x == 1 || x == 2));
    }
    SamplerOptions bad = o;
    bad.temp = -1;
    CHECK_THROWS_AS(bad.validate(), Error);
    bad = o;
    bad.top_p = 0;
    CHECK_THROWS_AS(bad.validate(), Error);
  }

  TEST_CASE("generate: same seed gives the same text, streamed text is valid UTF-8, EOS stops") {
    const std::string tj = train_bpe({"hello world, h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac 123 hello again"}, 300);
    const Tokenizer tok = Tokenizer::from_json(tj, "test");
    ModelConfig c = parity_config(64);
    c.vocab_size = tok.vocab_size();
    auto m = random_model(c, 21, 0.05f);
    PackedModel pm = pack_model(*m, PackOptions());
    const std::vector<int32_t> prompt = tok.encode("hello");
    auto run = [&](uint64_t seed, std::vector<int32_t> eos, GenerateStats* st) {
      Engine e(pm, 64);
      SamplerOptions o;
      o.seed = seed;
      Sampler s(o, c.vocab_size);
      std::string text;
      *st = generate(e, tok, prompt, 40, s, eos, [&](const std::string& t) { text += t; });
      return text;
    };
    GenerateStats s1, s2, s3;
    const std::string a = run(3, {}, &s1), b = run(3, {}, &s2);
    CHECK(a == b);
    CHECK(s1.generated == 40);
    CHECK(valid_utf8(a));
    // Stop at the first token the seed-3 run produced: nothing is generated.
    Engine e(pm, 64);
    SamplerOptions o;
    o.seed = 3;
    Sampler smp(o, c.vocab_size);
    const int32_t first = smp.sample(e.forward(prompt.data(), int64_t(prompt.size())));
    run(3, {first}, &s3);
    CHECK(s3.stopped_at_eos);
    CHECK(s3.generated == 0);
    // Context overflow is an error, not a crash.
    Engine small(pm, 8);
    SamplerOptions og;
    Sampler sg(og, c.vocab_size);
    CHECK_THROWS_AS(generate(small, tok, prompt, 40, sg, {}, [](const std::string&) {}), Error);
  }
}
