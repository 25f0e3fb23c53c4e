// QuantLinear hooks (src/nn/quant_hooks): the hooked training forward equals a plain forward
// on the fake-quantized weights, and gradients reach the latent weights straight through.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "model_test_util.h"
#include "nn/quant_hooks.h"
#include "quant/act_quant.h"

using namespace razor;

namespace {

ModelConfig hook_config(bool tied) { return shaped_config(tiny_config(tied), 37, 16, 2, 2, 1, 8, 32); }

QuantSpec spec_g8(double rho) {
  QuantSpec s;
  s.plan.rho = rho;
  s.plan.group = 8;
  return s;
}

// dst's weights = fake-quantized src weights (per the spec's layouts).
void copy_fake_quant(const Model& src, Model& dst, const QuantSpec& spec) {
  for (Param& p : dst.entries) {
    const Param* s = src.find(p.name);
    REQUIRE(s);
    WeightLayout l = spec.layout_for(p.name, p.kind);
    if (l.quantized()) fake_quant_weight(p.name, s->value, p.value, l);
    else p.value.copy_from(s->value);
  }
}

std::vector<int32_t> ids_for(int64_t n, int64_t V) {
  Rng r(5);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(int32_t(r.below(uint64_t(V))));
  return ids;
}

// One forward (B 2, T 5) and backward of the cross-entropy on m's tape; one model at a time,
// since backward replays (and clears) the whole tape.
ForwardResult forward_backward(Model& m, const std::vector<int32_t>& ids, const std::vector<int32_t>& targets) {
  ForwardResult r = m.forward(ids, 2, 5);
  Var loss = cross_entropy(r.logits, targets);
  backward(loss);
  return r;
}

}  // namespace

TEST_SUITE("quant") {
  TEST_CASE("quant hooks: forward equals the model on fake-quantized weights; STE gradients") {
    for (bool tied : {false, true}) {
      for (double rho : {0.0, 0.125, 0.5, 1.0}) {
        CAPTURE(tied);
        CAPTURE(rho);
        ModelConfig cfg = hook_config(tied);
        Model student(cfg), ref(cfg);
        student.init_random(11, 0.2f);
        QuantSpec spec = spec_g8(rho);
        copy_fake_quant(student, ref, spec);
        install_quant_hooks(student, spec);
        std::vector<int32_t> ids = ids_for(2 * 5, cfg.vocab_size);
        std::vector<int32_t> targets(ids.begin() + 1, ids.end());
        targets.push_back(-1);

        student.zero_grad();
        ref.zero_grad();
        ForwardResult a = forward_backward(student, ids, targets);
        ForwardResult b = forward_backward(ref, ids, targets);
        for (int64_t i = 0; i < a.logits.numel(); ++i) REQUIRE(a.logits.value()[i] == b.logits.value()[i]);
        // STE: d/d(latent) == d/d(dequantized), exactly (same ops, same order).
        for (const Param& p : student.entries) {
          const Param* q = ref.find(p.name);
          CAPTURE(p.name);
          // Exact, except a tied embedding: its two uses' gradients are summed in another
          // order through the two STE outputs ((h + e1) + e2 vs h + (e1 + e2)): 1 ulp-level.
          for (int64_t i = 0; i < p.grad.numel(); ++i)
            REQUIRE(std::fabs(p.grad[i] - q->grad[i]) <= (tied ? 1e-6f * (1 + std::fabs(q->grad[i])) : 0.0f));
        }
        double gn = 0;
        for (int64_t i = 0; i < student.grads.numel(); ++i) gn += std::fabs(student.grads[i]);
        CHECK(gn > 0);
      }
    }
  }

  TEST_CASE("quant hooks: gradients shared with the latent weights equal separate STE ops, bit for bit") {
    // install_quant_hooks hands each quantized weight (and a tied head) a copy whose gradient
    // buffer is the latent's own, instead of an STE op with its own [d_out, d_in] gradient.
    // Reference: the same model with one `ste` op per weight site. One micro-batch: the same
    // bits everywhere, tied embedding included; a second micro-batch on top: within fp32 order.
    for (bool tied : {false, true}) {
      CAPTURE(tied);
      ModelConfig cfg = hook_config(tied);
      Model a(cfg), b(cfg);
      a.init_random(21, 0.2f);
      b.params.copy_from(a.params);
      const QuantSpec spec = spec_g8(0.125);
      install_quant_hooks(a, spec);
      install_quant_hooks(b, spec);
      b.hooks.weight_transform = [&spec](const Var& w, const HookSite& site) -> Var {
        const bool embedding = *site.name == "model.embed_tokens.weight" || *site.name == "lm_head.weight";
        WeightLayout l = spec.layout_for(*site.name, embedding ? ParamKind::Embedding : ParamKind::Linear);
        if (!l.quantized()) return w;
        const std::string n = *site.name;
        return ste(w, [l, n](const Tensor& in, Tensor& out) { fake_quant_weight(n, in, out, l); });
      };
      const std::vector<int32_t> ids = ids_for(2 * 5, cfg.vocab_size);
      std::vector<int32_t> targets(ids.begin() + 1, ids.end());
      targets.push_back(-1);
      a.zero_grad();
      b.zero_grad();
      for (int micro = 0; micro < 2; ++micro) {
        ForwardResult fa = forward_backward(a, ids, targets);
        ForwardResult fb = forward_backward(b, ids, targets);
        REQUIRE(std::memcmp(fa.logits.value().data(), fb.logits.value().data(), size_t(fa.logits.numel()) * 4) == 0);
        if (micro == 0) {
          CHECK(std::memcmp(a.grads.data(), b.grads.data(), size_t(a.grads.numel()) * 4) == 0);
        } else {
          for (int64_t i = 0; i < a.grads.numel(); ++i)
            REQUIRE(std::fabs(a.grads[i] - b.grads[i]) <= 1e-6f * (1 + std::fabs(b.grads[i])));
        }
      }
    }
  }

  TEST_CASE("quant hooks: A8 and KV8 perturb the forward slightly and stay STE") {
    ModelConfig cfg = hook_config(false);
    Model m(cfg);
    m.init_random(3, 0.2f);
    std::vector<int32_t> ids = ids_for(6, cfg.vocab_size);
    QuantSpec spec = spec_g8(0.125);
    install_quant_hooks(m, spec);
    std::vector<float> base, with;
    {
      NoGradGuard ng;
      base = m.forward(ids, 1, 6).logits.value().to_vector();
    }
    spec.a8 = true;
    spec.kv8 = true;
    install_quant_hooks(m, spec);
    {
      NoGradGuard ng;
      with = m.forward(ids, 1, 6).logits.value().to_vector();
    }
    double maxd = 0, maxv = 0;
    for (size_t i = 0; i < base.size(); ++i) {
      maxd = std::max(maxd, double(std::fabs(base[i] - with[i])));
      maxv = std::max(maxv, double(std::fabs(base[i])));
    }
    CHECK(maxd > 0);            // the activation quantizers are active
    CHECK(maxd < 0.05 * maxv);  // and 8-bit: a small perturbation
  }

  TEST_CASE("quant hooks: a group size that does not divide a matrix is refused by name") {
    ModelConfig cfg = hook_config(false);
    Model m(cfg);
    QuantSpec spec = spec_g8(0.125);
    spec.plan.group = 12;
    CHECK_THROWS_AS(install_quant_hooks(m, spec), Error);
    try {
      install_quant_hooks(m, spec);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("model.") != std::string::npos);
    }
  }

  TEST_CASE("quant hooks: bit accounting counts a tied embedding once") {
    Model tied(hook_config(true)), untied(hook_config(false));
    QuantSpec spec = spec_g8(0.125);
    BitReport rt = bit_report(model_matrices(tied, spec));
    BitReport ru = bit_report(model_matrices(untied, spec));
    CHECK(ru.total_params - rt.total_params == 37 * 16);
    CHECK(rt.quantized_share > 0.95);
  }
}
