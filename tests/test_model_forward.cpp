// Tests for src/nn/model (suite "model"): HF checkpoints, forward semantics, hidden states,
// gradients by finite differences, hooks, and the golden check against tools/ref_forward.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model_test_util.h"
#include "nn/model.h"
#include "tests/reference_util.h"

using namespace razor;

namespace {

std::vector<int32_t> random_ids(int64_t n, int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(int32_t(rng.below(uint64_t(V))));
  return ids;
}

std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& ids, int64_t B, int64_t T) {
  NoGradGuard ng;
  return m.forward(ids, B, T).logits.value().to_vector();
}

// Copies every parameter of dst from the same-named parameter of src.
void copy_weights(const Model& src, Model& dst) {
  for (Param& p : dst.entries) {
    const Param* s = src.find(p.name);
    REQUIRE(s != nullptr);
    p.value.copy_from(s->value);
  }
}

float max_abs_diff(const float* a, const float* b, int64_t n) {
  float d = 0;
  for (int64_t i = 0; i < n; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

std::string err_of_load(const std::string& dir) {
  try {
    Model::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("model: flat layout, HF names, init from a seed") {
    ModelConfig c = tiny_config(false);
    Model m(c);
    m.init_random(7);
    const int64_t V = 37, C = 16, H = 4, K = 2, D = 6, F = 24;
    int64_t per_layer = C + H * D * C + 2 * K * D * C + C * H * D + 2 * D + C + 3 * F * C;
    CHECK(m.num_params() == V * C + 2 * per_layer + C + V * C);
    CHECK(m.params.numel() == m.grads.numel());
    for (const Param& p : m.entries) {
      CHECK(p.offset % 16 == 0);
      CHECK(p.value.data() == m.params.data() + p.offset);
      CHECK(p.grad.data() == m.grads.data() + p.offset);
      if (p.kind == ParamKind::Norm) {
        CHECK(p.value[0] == 1.0f);
        CHECK(p.value[p.value.numel() - 1] == 1.0f);
      }
    }
    const Param* q = m.find("model.layers.1.self_attn.q_proj.weight");
    REQUIRE(q);
    CHECK(q->value.shape() == Shape({H * D, C}));
    CHECK(m.find("model.layers.0.self_attn.k_norm.weight")->value.shape() == Shape({D}));
    CHECK(m.find("lm_head.weight") != nullptr);
    // Standard deviation ~0.02 over the embedding.
    const Param* e = m.find("model.embed_tokens.weight");
    double s2 = 0;
    for (int64_t i = 0; i < e->value.numel(); ++i) s2 += double(e->value[i]) * e->value[i];
    CHECK(std::sqrt(s2 / double(e->value.numel())) == doctest::Approx(0.02).epsilon(0.1));
    Model m2(c);
    m2.init_random(7);
    CHECK(max_abs_diff(m.params.data(), m2.params.data(), m.params.numel()) == 0.0f);
    m2.init_random(8);
    CHECK(max_abs_diff(m.params.data(), m2.params.data(), m.params.numel()) > 0.0f);
    // llama: no q/k norms; tied: no lm_head.
    Model ml(tiny_config(true, "llama"));
    CHECK(ml.find("model.layers.0.self_attn.q_norm.weight") == nullptr);
    CHECK(ml.find("lm_head.weight") == nullptr);
  }

  TEST_CASE("model: random qwen3 checkpoint in HF layout loads and runs (tied and untied)") {
    for (bool tied : {false, true}) {
      CAPTURE(tied);
      TempDir dir;
      Model m(tiny_config(tied));
      m.init_random(3, 0.2f);
      m.save(dir.path);
      // The file holds exactly the HF names.
      SafeTensorsReader r(dir.path + "/model.safetensors");
      std::set<std::string> names;
      for (const auto& t : r.tensors()) names.insert(t.name);
      CHECK(names.count("model.embed_tokens.weight"));
      CHECK(names.count("model.layers.1.self_attn.q_norm.weight"));
      CHECK(names.count("model.layers.0.mlp.down_proj.weight"));
      CHECK(names.count("model.layers.1.post_attention_layernorm.weight"));
      CHECK(names.count("model.norm.weight"));
      CHECK(names.count("lm_head.weight") == (tied ? 0u : 1u));
      CHECK(names.size() == m.entries.size());

      auto back = Model::load(dir.path);
      CHECK(back->cfg.tie_word_embeddings == tied);
      CHECK(max_abs_diff(back->params.data(), m.params.data(), m.params.numel()) == 0.0f);
      std::vector<int32_t> ids = random_ids(2 * 5, 37, 11);
      std::vector<float> a = logits_of(m, ids, 2, 5), b = logits_of(*back, ids, 2, 5);
      REQUIRE(a.size() == size_t(2 * 5 * 37));
      for (float v : a) REQUIRE(std::isfinite(v));
      CHECK(max_abs_diff(a.data(), b.data(), int64_t(a.size())) == 0.0f);

      // lm_head: logits = final hidden x lm_head rows (the embedding when tied).
      NoGradGuard ng;
      ForwardResult fr = m.forward(ids, 2, 5, true);
      const Tensor& xf = fr.hidden.back().value();
      const Tensor& head = m.find(tied ? "model.embed_tokens.weight" : "lm_head.weight")->value;
      double worst = 0;
      for (int64_t n = 0; n < 10; ++n)
        for (int64_t v = 0; v < 37; ++v) {
          double s = 0;
          for (int64_t c = 0; c < 16; ++c) s += double(xf[n * 16 + c]) * head[v * 16 + c];
          worst = std::max(worst, std::fabs(s - fr.logits.value()[n * 37 + v]));
        }
      CHECK(worst < 1e-4);
    }
    // BF16 checkpoints load (values rounded to bf16).
    TempDir dir;
    Model m(tiny_config(false, "llama"));
    m.init_random(4, 0.2f);
    m.save(dir.path, true);
    auto back = Model::load(dir.path);
    CHECK(max_abs_diff(back->params.data(), m.params.data(), m.params.numel()) < 0.01f);
    CHECK(read_file(dir.path + "/config.json").find("bfloat16") != std::string::npos);
  }

  TEST_CASE("model: load reports missing, extra and mis-shaped tensors by name") {
    TempDir dir;
    ModelConfig c = tiny_config(false);
    Model m(c);
    m.init_random(5);
    m.save(dir.path);
    CHECK(err_of_load(dir.path) == "");
    auto write_without = [&](const std::string& drop, const std::string& add_name, Tensor add) {
      SafeTensorsWriter w;
      for (const Param& p : m.entries)
        if (p.name != drop) w.add(p.name, p.value);
      if (!add_name.empty()) w.add(add_name, add);
      w.write(dir.path + "/model.safetensors");
    };
    write_without("model.layers.1.self_attn.k_norm.weight", "", Tensor());
    std::string e = err_of_load(dir.path);
    CHECK(e.find("1 missing tensors: model.layers.1.self_attn.k_norm.weight") != std::string::npos);
    CHECK(e.find("model.safetensors") != std::string::npos);

    write_without("", "model.layers.2.mlp.up_proj.weight", Tensor::zeros({24, 16}));
    e = err_of_load(dir.path);
    CHECK(e.find("unexpected tensors: model.layers.2.mlp.up_proj.weight") != std::string::npos);

    write_without("model.norm.weight", "model.norm.weight", Tensor::zeros({17}));
    e = err_of_load(dir.path);
    CHECK(e.find("mis-shaped tensors: model.norm.weight [17] (config.json implies [16])") != std::string::npos);

    // A tied checkpoint may carry a redundant lm_head.weight, and old Llama files inv_freq buffers.
    TempDir tdir;
    Model t(tiny_config(true));
    t.init_random(6);
    t.save(tdir.path);
    {
      SafeTensorsWriter w;
      for (const Param& p : t.entries) w.add(p.name, p.value);
      w.add("lm_head.weight", t.find("model.embed_tokens.weight")->value);
      Tensor inv = Tensor::zeros({3});
      w.add("model.layers.0.self_attn.rotary_emb.inv_freq", inv);
      w.write(tdir.path + "/model.safetensors");
    }
    CHECK(err_of_load(tdir.path) == "");
    CHECK(err_of_load(tdir.path + "/nothing_here").find("config.json") != std::string::npos);
  }
  TEST_CASE("model: sharded checkpoint (model.safetensors.index.json)") {
    TempDir dir;
    Model m(tiny_config(false));
    m.init_random(15, 0.1f);
    m.save(dir.path);
    std::remove((dir.path + "/model.safetensors").c_str());
    SafeTensorsWriter a, b;
    Json map = Json::object();
    for (size_t i = 0; i < m.entries.size(); ++i) {
      const Param& p = m.entries[i];
      const char* shard = i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
      (i % 2 ? b : a).add(p.name, p.value, StDType::BF16);
      map.set(p.name, Json(shard));
    }
    a.write(dir.path + "/model-00001-of-00002.safetensors");
    b.write(dir.path + "/model-00002-of-00002.safetensors");
    Json idx = Json::object();
    idx.set("metadata", Json::object());
    idx.set("weight_map", map);
    write_file_atomic(dir.path + "/model.safetensors.index.json", idx.dump(2));
    auto back = Model::load(dir.path);
    CHECK(max_abs_diff(back->params.data(), m.params.data(), m.params.numel()) < 2e-3f);
    CHECK(max_abs_diff(back->params.data(), m.params.data(), m.params.numel()) > 0.0f);  // bf16-rounded
    // A missing shard is an error naming it.
    std::remove((dir.path + "/model-00002-of-00002.safetensors").c_str());
    CHECK(err_of_load(dir.path).find("model-00002-of-00002.safetensors: cannot open") != std::string::npos);
  }

  TEST_CASE("model: hidden states (count, shapes, HF indexing, final norm slot)") {
    ModelConfig c = tiny_config(false);
    c.num_hidden_layers = 3;
    Model m(c);
    m.init_random(9, 0.2f);
    // Make the final norm weights non-trivial.
    Tensor fn = m.find("model.norm.weight")->value;
    for (int64_t i = 0; i < fn.numel(); ++i) fn[i] = 0.5f + 0.1f * float(i);
    const int64_t B = 2, T = 4, C = 16, L = 3;
    std::vector<int32_t> ids = random_ids(B * T, 37, 2);
    NoGradGuard ng;
    ForwardResult r = m.forward(ids, B, T, true);
    REQUIRE(r.hidden.size() == size_t(L + 1));
    for (const Var& h : r.hidden) CHECK(h.shape() == Shape({B, T, C}));
    // Index 0: embedding rows.
    const Tensor& E = m.find("model.embed_tokens.weight")->value;
    for (int64_t n = 0; n < B * T; ++n)
      CHECK(max_abs_diff(r.hidden[0].value().data() + n * C, E.data() + ids[size_t(n)] * C, C) == 0.0f);
    // Index l (1..L-1): output of layer l == last_layer of the model truncated to l layers.
    for (int l = 1; l < L; ++l) {
      ModelConfig cl = c;
      cl.num_hidden_layers = l;
      Model ml(cl);
      copy_weights(m, ml);
      ForwardResult rl = ml.forward(ids, B, T, true);
      CHECK(max_abs_diff(rl.last_layer.value().data(), r.hidden[size_t(l)].value().data(), B * T * C) < 1e-5f);
    }
    // Index L: rmsnorm(last layer output) * final norm weight, checked in double.
    const Tensor& x = r.last_layer.value();
    double worst = 0;
    for (int64_t n = 0; n < B * T; ++n) {
      double ms = 0;
      for (int64_t k = 0; k < C; ++k) ms += double(x[n * C + k]) * x[n * C + k];
      double inv = 1.0 / std::sqrt(ms / double(C) + c.rms_norm_eps);
      for (int64_t k = 0; k < C; ++k)
        worst = std::max(worst, std::fabs(double(x[n * C + k]) * inv * fn[k] - r.hidden[size_t(L)].value()[n * C + k]));
    }
    CHECK(worst < 1e-5);
    // Without the request, no hidden states are kept.
    CHECK(m.forward(ids, B, T).hidden.empty());
  }

  TEST_CASE("model: batch independence, causality, no-grad path equals grad path") {
    for (const char* type : {"qwen3", "llama"}) {
      CAPTURE(type);
      Model m(tiny_config(false, type));
      m.init_random(12, 0.2f);
      const int64_t B = 3, T = 6, V = 37;
      std::vector<int32_t> ids = random_ids(B * T, V, 21);
      std::vector<float> base = logits_of(m, ids, B, T);
      // Changing sequence 2 leaves sequences 0 and 1 unchanged.
      std::vector<int32_t> ids2 = ids;
      for (int64_t t = 0; t < T; ++t) ids2[size_t(2 * T + t)] = int32_t((ids2[size_t(2 * T + t)] + 5) % V);
      std::vector<float> other = logits_of(m, ids2, B, T);
      CHECK(max_abs_diff(base.data(), other.data(), 2 * T * V) < 1e-6f);
      CHECK(max_abs_diff(base.data() + 2 * T * V, other.data() + 2 * T * V, T * V) > 1e-3f);
      // Sequence 1 alone gives its logits.
      std::vector<int32_t> one(ids.begin() + T, ids.begin() + 2 * T);
      std::vector<float> alone = logits_of(m, one, 1, T);
      CHECK(max_abs_diff(alone.data(), base.data() + T * V, T * V) < 1e-5f);
      // Causal: changing token 4 leaves logits at 0..3 unchanged, changes position 4.
      std::vector<int32_t> ids3 = ids;
      ids3[4] = int32_t((ids3[4] + 1) % V);
      std::vector<float> c3 = logits_of(m, ids3, B, T);
      CHECK(max_abs_diff(base.data(), c3.data(), 4 * V) < 1e-6f);
      CHECK(max_abs_diff(base.data() + 4 * V, c3.data() + 4 * V, V) > 1e-4f);
      // Grad-enabled forward gives the same logits as the no-grad path.
      ForwardResult g = m.forward(ids, B, T);
      CHECK(g.logits.requires_grad());
      CHECK(max_abs_diff(g.logits.value().data(), base.data(), B * T * V) == 0.0f);
      tape().clear();
      // An inference-only model (no gradient buffer) records nothing and computes the same.
      Model frozen(tiny_config(false, type), /*trainable=*/false);
      CHECK(!frozen.trainable());
      copy_weights(m, frozen);
      size_t tape_before = tape().size();
      ForwardResult fz = frozen.forward(ids, B, T);
      CHECK(!fz.logits.requires_grad());
      CHECK(tape().size() == tape_before);
      CHECK(max_abs_diff(fz.logits.value().data(), base.data(), B * T * V) == 0.0f);
      // Bad input is refused with a clear message.
      std::vector<int32_t> bad = ids;
      bad[3] = int32_t(V);
      CHECK_THROWS_WITH_AS(m.forward(bad, B, T), doctest::Contains("token id 37 at index 3"), Error);
      CHECK_THROWS_AS(m.forward(ids, B, T + 1), Error);
      std::vector<int32_t> longer = random_ids(65, V, 1);
      CHECK_THROWS_WITH_AS(m.forward(longer, 1, 65), doctest::Contains("max_position_embeddings"), Error);
    }
  }

  TEST_CASE("model: gradients through the full model match finite differences") {
    for (bool tied : {false, true}) {
      CAPTURE(tied);
      ModelConfig c = tiny_config(tied);
      Model m(c);
      m.init_random(31, 0.3f);
      // Non-trivial norm weights so their gradients are exercised away from 1.
      Rng nr(5);
      for (Param& p : m.entries)
        if (p.kind == ParamKind::Norm)
          for (int64_t i = 0; i < p.value.numel(); ++i) p.value[i] = 0.8f + 0.4f * nr.uniform();
      const int64_t B = 2, T = 4, V = 37;
      std::vector<int32_t> ids = random_ids(B * T, V, 8);
      Tensor R = Tensor::empty({B * T, V});
      Rng rr(77);
      fill_normal(R, rr, 1.0f);
      // Loss = sum(logits * R): every logit contributes.
      auto loss_value = [&]() {
        std::vector<float> z = logits_of(m, ids, B, T);
        double s = 0;
        for (size_t i = 0; i < z.size(); ++i) s += double(z[i]) * R[int64_t(i)];
        return s;
      };
      m.zero_grad();
      ForwardResult fr = m.forward(ids, B, T);
      Var loss = sum(mul(fr.logits, Var(R)));
      backward(loss);
      CHECK(std::fabs(loss.item() - loss_value()) < 1e-3 * std::max(1.0, std::fabs(loss_value())));
      std::vector<std::string> names = {"model.embed_tokens.weight",
                                        "model.layers.0.input_layernorm.weight",
                                        "model.layers.0.self_attn.q_proj.weight",
                                        "model.layers.0.self_attn.k_proj.weight",
                                        "model.layers.0.self_attn.v_proj.weight",
                                        "model.layers.1.self_attn.o_proj.weight",
                                        "model.layers.0.self_attn.q_norm.weight",
                                        "model.layers.1.self_attn.k_norm.weight",
                                        "model.layers.1.post_attention_layernorm.weight",
                                        "model.layers.0.mlp.gate_proj.weight",
                                        "model.layers.1.mlp.up_proj.weight",
                                        "model.layers.0.mlp.down_proj.weight",
                                        "model.norm.weight"};
      if (!tied) names.push_back("lm_head.weight");
      Rng pick(99);
      for (const std::string& name : names) {
        Param* p = m.find(name);
        REQUIRE(p);
        for (int rep = 0; rep < 2; ++rep) {
          int64_t i = int64_t(pick.below(uint64_t(p->value.numel())));
          if (name == "model.embed_tokens.weight") i = int64_t(ids[size_t(rep)]) * c.hidden_size + rep;  // a used row
          float* w = p->value.data() + i;
          const float w0 = *w, h = 1e-2f;
          *w = w0 + h;
          double up = loss_value();
          *w = w0 - h;
          double down = loss_value();
          *w = w0;
          double num = (up - down) / (2.0 * double(h));
          double ana = p->grad[i];
          INFO(name, "[", i, "]: analytic ", ana, " numeric ", num);
          CHECK(std::fabs(ana - num) <= 2e-2 * std::max(std::fabs(num), std::fabs(ana)) + 2e-3);
        }
      }
    }
  }

  TEST_CASE("model: hooks see every linear, the embedding and K/V, once per use") {
    ModelConfig c = tiny_config(true);
    Model m(c);
    m.init_random(14, 0.2f);
    const int64_t B = 2, T = 3;
    std::vector<int32_t> ids = random_ids(B * T, 37, 4);
    std::vector<float> base = logits_of(m, ids, B, T);
    std::vector<std::string> wsites, isites;
    int kv_keys = 0, kv_values = 0;
    m.hooks.weight_transform = [&](const Var& w, const HookSite& s) {
      wsites.push_back(std::string(linear_site_name(s.site)) + "@" + std::to_string(s.layer) + ":" + *s.name);
      // An identity STE: the forward and the gradients must not change.
      return ste(w, [](const Tensor& in, Tensor& out) { out.copy_from(in); });
    };
    m.hooks.input_transform = [&](const Var& x, const HookSite& s) {
      isites.push_back(linear_site_name(s.site));
      return x;
    };
    m.hooks.kv_transform = [&](const Var& t, int layer, bool is_key) {
      CHECK(t.shape() == Shape({B, T, c.num_key_value_heads, c.head_dim}));
      (is_key ? kv_keys : kv_values)++;
      return t;
    };
    std::vector<float> hooked = logits_of(m, ids, B, T);
    CHECK(max_abs_diff(base.data(), hooked.data(), int64_t(base.size())) == 0.0f);
    CHECK(wsites.size() == size_t(7 * c.num_hidden_layers + 2));
    CHECK(isites.size() == size_t(7 * c.num_hidden_layers + 1));  // no input hook on the embedding
    CHECK(kv_keys == 2);
    CHECK(kv_values == 2);
    CHECK(wsites.front() == "embed_tokens@-1:model.embed_tokens.weight");
    CHECK(wsites.back() == "lm_head@-1:model.embed_tokens.weight");  // tied: the embedding's parameter
    CHECK(wsites[1] == "q_proj@0:model.layers.0.self_attn.q_proj.weight");
    CHECK(std::count(isites.begin(), isites.end(), std::string("down_proj")) == 2);

    // Gradients through the STE hook equal the plain gradients.
    auto grads_with = [&](bool hooked_run) {
      ModelHooks saved = m.hooks;
      if (!hooked_run) m.hooks = ModelHooks();
      m.zero_grad();
      Var loss = cross_entropy(m.forward(ids, B, T).logits, ids);
      backward(loss);
      m.hooks = saved;
      return m.grads.to_vector();
    };
    std::vector<float> g1 = grads_with(false), g2 = grads_with(true);
    CHECK(max_abs_diff(g1.data(), g2.data(), int64_t(g1.size())) < 1e-6f);

    // A weight hook that changes the weights changes the output.
    m.hooks = ModelHooks();
    m.hooks.weight_transform = [&](const Var& w, const HookSite& s) {
      return s.site == LinearSite::Down ? scale(w, 2.0f) : w;
    };
    std::vector<float> scaled = logits_of(m, ids, B, T);
    CHECK(max_abs_diff(base.data(), scaled.data(), int64_t(base.size())) > 1e-4f);
  }

  TEST_CASE("model: golden log-probs against tools/ref_forward.py (numpy)") {
    // The first python3 with numpy (a pyenv shim may shadow the system one that has it).
    std::string py;
    for (const char* cand : {"python3", "/usr/bin/python3"})
      if (std::system((std::string(cand) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) {
        py = cand;
        break;
      }
    if (py.empty()) {
      RAZOR_REFERENCE_MISSING("python3 with numpy not available (bash tools/install_deps.sh --test, or apt-get install -y python3-numpy)");
      return;
    }
    FILE* probe = std::fopen("tools/ref_forward.py", "r");
    if (!probe) {
      RAZOR_REFERENCE_MISSING("tools/ref_forward.py not found (run the tests from the repository root)");
      return;
    }
    std::fclose(probe);
    struct Case {
      const char* type;
      bool tied, bf16;
    };
    for (Case k : {Case{"qwen3", false, false}, Case{"llama", true, false}, Case{"qwen3", true, true}}) {
      CAPTURE(k.type);
      CAPTURE(k.tied);
      TempDir dir;
      ModelConfig c = tiny_config(k.tied, k.type);
      c.rope_theta = 500.0;  // strong rotation at small positions
      c.rms_norm_eps = 1e-5;
      Model m(c);
      m.init_random(42, 0.25f);
      m.save(dir.path, k.bf16);
      std::vector<int32_t> ids = random_ids(12, c.vocab_size, 3);
      std::string id_text;
      for (int32_t i : ids) id_text += (id_text.empty() ? "" : " ") + std::to_string(i);
      auto run = [](const std::string& cmd) {
        std::string out;
        FILE* f = popen(cmd.c_str(), "r");
        REQUIRE(f);
        char buf[512];
        while (std::fgets(buf, sizeof buf, f)) out += buf;
        CHECK(pclose(f) == 0);
        return out;
      };
      auto parse = [](const std::string& text, double* mean_nll) {
        std::vector<double> v;
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
          if (line.rfind("mean_nll ", 0) == 0)
            *mean_nll = std::stod(line.substr(9));
          else if (!line.empty())
            v.push_back(std::stod(line));
        }
        return v;
      };
      double ref_nll = 0, cli_nll = 0;
      std::vector<double> ref = parse(run(py + " tools/ref_forward.py " + dir.path + " " + id_text), &ref_nll);
      auto loaded = Model::load(dir.path, /*trainable=*/false);
      CHECK(!loaded->trainable());
      std::vector<double> ours = next_token_logprobs(*loaded, ids);
      REQUIRE(ref.size() == ids.size() - 1);
      REQUIRE(ours.size() == ref.size());
      double worst = 0, mean = 0;
      for (size_t t = 0; t < ref.size(); ++t) {
        worst = std::max(worst, std::fabs(ours[t] - ref[t]));
        mean -= ours[t];
      }
      mean /= double(ours.size());
      INFO("max |razor - numpy| = ", worst);
      CHECK(worst < 2e-5);
      CHECK(std::fabs(mean - ref_nll) < 2e-5);
      CHECK(ref_nll > 0.5);  // a non-degenerate distribution
      // The CLI prints the same numbers (when the binary is built).
      if (std::FILE* bin = std::fopen("./razor", "r")) {
        std::fclose(bin);
        std::vector<double> cli =
            parse(run("./razor score --threads 1 -m " + dir.path + " --ids \"" + id_text + "\""), &cli_nll);
        REQUIRE(cli.size() == ref.size());
        for (size_t t = 0; t < ref.size(); ++t) CHECK(std::fabs(cli[t] - ours[t]) < 1e-8);
        CHECK(std::fabs(cli_nll - ref_nll) < 2e-5);
      } else {
        RAZOR_REFERENCE_MISSING("./razor not built; CLI part of the golden check not run (make test builds it)");
      }
    }
  }
}
