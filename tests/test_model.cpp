// Tests for src/io/safetensors, src/io/hf_config and src/nn/model (suite "model").
#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "io/hf_config.h"
#include "nn/model.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "infer/pack.h"
#include "nn/tensor_table.h"
#include "model_test_util.h"
#include "test_util.h"

using namespace razor;

namespace {

// A raw safetensors file from a header text and a data region (for broken-file cases).
std::string raw_st(const std::string& header, const std::string& data, int64_t claimed_len = -1) {
  uint64_t n = claimed_len >= 0 ? uint64_t(claimed_len) : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char(uint8_t(n >> (8 * i)));
  return out + header + data;
}

std::string err_of(const std::string& path) {
  try {
    SafeTensorsReader r(path);
    for (const auto& t : r.tensors()) r.read(t.name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The error ModelConfig::from_json gives for a config text ("" when it parses).
std::string config_error(const std::string& text) {
  try {
    ModelConfig::from_json(Json::parse(text), "cfg.json");
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::string();
}

}  // namespace

TEST_SUITE("model") {

TEST_CASE("tensor table: one list of tensors, HF and GGUF names, shapes; q/k/v biases enumerated, then refused") {
  // Without biases the table is the model's parameter list, in order.
  for (bool tied : {false, true})
    for (const char* type : {"qwen3", "llama"}) {
      const ModelConfig c = tiny_config(tied, type);
      const std::vector<TensorSpec> t = model_tensors(c);
      Model m(c, false);
      REQUIRE(m.entries.size() == t.size());
      for (size_t i = 0; i < t.size(); ++i) {
        CHECK(m.entries[i].name == t[i].hf);
        CHECK(m.entries[i].value.shape() == Shape(t[i].shape));
        CHECK(gguf_tensor_name(t[i].hf) == t[i].gguf);
        CHECK(hf_tensor_name(t[i].gguf) == t[i].hf);
      }
      CHECK(t.size() == size_t(1 + c.num_hidden_layers * (c.qk_norm() ? 11 : 9) + 1 + (tied ? 0 : 1)));
    }
  CHECK(gguf_tensor_name("model.layers.007.mlp.up_proj.weight") == "blk.7.ffn_up.weight");
  CHECK(hf_tensor_name("blk.12.attn_k_norm.weight") == "model.layers.12.self_attn.k_norm.weight");
  CHECK(hf_tensor_name("rope_freqs.weight").empty());

  // A config with q/k/v biases: the table lists them (HF and GGUF names, shapes, rope heads) ...
  ModelConfig c = tiny_config(false, "llama");
  c.attention_bias = true;
  const std::vector<TensorSpec> t = model_tensors(c);
  std::vector<const TensorSpec*> biases;
  for (const TensorSpec& s : t)
    if (s.kind == TensorKind::Bias) biases.push_back(&s);
  REQUIRE(biases.size() == 6);
  CHECK(biases[0]->hf == "model.layers.0.self_attn.q_proj.bias");
  CHECK(biases[0]->gguf == "blk.0.attn_q.bias");
  CHECK(biases[0]->shape == std::vector<int64_t>{4 * 4});
  CHECK(biases[0]->rope_heads == 4);
  CHECK(biases[1]->hf == "model.layers.0.self_attn.k_proj.bias");
  CHECK(biases[1]->shape == std::vector<int64_t>{2 * 4});
  CHECK(biases[1]->rope_heads == 2);
  CHECK(biases[5]->gguf == "blk.1.attn_v.bias");
  CHECK(biases[5]->rope_heads == 0);
  CHECK(gguf_tensor_name("model.layers.1.self_attn.v_proj.bias", true) == "blk.1.attn_v.bias");
  CHECK(hf_tensor_name("blk.1.attn_k.bias", true) == "model.layers.1.self_attn.k_proj.bias");
  CHECK(gguf_tensor_name("model.layers.1.self_attn.v_proj.bias").empty());  // not a tensor without attention_bias
  // ... and every reader of the table refuses them with an error naming the first one.
  CHECK_THROWS_WITH_AS(Model(c, false), doctest::Contains("model.layers.0.self_attn.q_proj.bias: q/k/v biases"),
                       Error);
  PackedModel pm;
  pm.cfg = c;
  pm.layers.resize(size_t(c.num_hidden_layers));
  CHECK_THROWS_WITH_AS(pm.matrices(), doctest::Contains("q_proj.bias: q/k/v biases (attention_bias)"), Error);
  CHECK_THROWS_WITH_AS(pm.norms(), doctest::Contains("q_proj.bias: q/k/v biases (attention_bias)"), Error);
}
  TEST_CASE("safetensors round trip F32 and BF16") {
    TempDir dir;
    Rng rng(1);
    Tensor a = Tensor::empty({3, 5});
    fill_normal(a, rng, 1.0f);
    Tensor b = Tensor::empty({7});
    fill_normal(b, rng, 1.0f);
    Tensor c = Tensor::empty({2, 3, 4, 2});
    fill_normal(c, rng, 1.0f);
    SafeTensorsWriter w;
    w.add("a.weight", a);
    w.add("b", b, StDType::BF16);
    w.add("c", c);
    std::string path = dir.path + "/x.safetensors";
    w.write(path);
    // Data region aligned to 64 bytes.
    std::string bytes = read_file(path);
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
    CHECK((8 + n) % 64 == 0);

    SafeTensorsReader r(path);
    REQUIRE(r.tensors().size() == 3);
    CHECK(r.tensors()[0].name == "a.weight");
    CHECK(r.find("b")->dtype == StDType::BF16);
    CHECK(r.metadata().get_string("format", "") == "pt");
    Tensor a2 = r.read("a.weight");
    CHECK(a2.shape() == a.shape());
    for (int64_t i = 0; i < a.numel(); ++i) CHECK(a2[i] == a[i]);
    Tensor b2 = r.read("b");
    for (int64_t i = 0; i < b.numel(); ++i) CHECK(b2[i] == bf16_to_f32(f32_to_bf16(b[i])));
    Tensor c2 = Tensor::empty({2, 3, 4, 2});
    r.read_into("c", c2);
    for (int64_t i = 0; i < c.numel(); ++i) CHECK(c2[i] == c[i]);
    Tensor wrong = Tensor::empty({3, 4});
    CHECK_THROWS_WITH_AS(r.read_into("a.weight", wrong), doctest::Contains("'a.weight' has shape [3, 5]"), Error);
    CHECK_THROWS_WITH_AS(r.read("nope"), doctest::Contains("no tensor named 'nope'"), Error);
  }

  TEST_CASE("safetensors F16 read, metadata ignored, odd offsets") {
    TempDir dir;
    // One F16 tensor at an odd offset (after a 1-byte U8 tensor): values 1.0, -2.0.
    std::string hdr =
        R"({"__metadata__":{"format":"pt"},"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
        R"("h":{"dtype":"F16","shape":[2],"data_offsets":[1,5]}})";
    std::string data = std::string("\x07", 1) + std::string("\x00\x3c\x00\xc0", 4);
    std::string path = dir.path + "/h.safetensors";
    write_file_atomic(path, raw_st(hdr, data));
    SafeTensorsReader r(path);
    Tensor h = r.read("h");
    CHECK(h[0] == 1.0f);
    CHECK(h[1] == -2.0f);
    CHECK_THROWS_WITH_AS(r.read("u"), doctest::Contains("'u': dtype U8 cannot be read"), Error);
  }

  TEST_CASE("safetensors broken files: one case per defect") {
    TempDir dir;
    std::string good_hdr = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
    std::string data16(16, '\0');
    auto check = [&](const char* label, const std::string& content, const std::string& expect) {
      std::string path = dir.path + "/" + label + ".safetensors";
      write_file_atomic(path, content);
      std::string e = err_of(path);
      INFO(label, ": ", e);
      CHECK(contains(e, expect));
      CHECK(contains(e, path));  // every error names the file
    };
    // Sanity: the good file loads.
    write_file_atomic(dir.path + "/good.safetensors", raw_st(good_hdr, data16));
    CHECK(err_of(dir.path + "/good.safetensors") == "");

    check("empty", "", "truncated");
    check("short", std::string("\x05\x00\x00", 3), "truncated");
    check("hdr_past_eof", raw_st(good_hdr, data16, 100000), "runs past the end of the file");
    check("truncated_data", raw_st(good_hdr, data16.substr(0, 10)), "run past the data region");
    check("not_json", raw_st("{not json}", data16), "(header)");
    check("not_object", raw_st("[1,2]      ", data16), "not a JSON object");
    check("offsets_oob", raw_st(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})", data16 + data16.substr(0, 4)),
          "'w': data_offsets [16, 32] run past");
    check("offsets_reversed", raw_st(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data16),
          "end before they begin");
    check("overlap",
          raw_st(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                 data16),
          "tensors 'a' and 'b' overlap");
    check("wrong_dtype", raw_st(R"({"w":{"dtype":"F33","shape":[2,2],"data_offsets":[0,16]}})", data16),
          "'w': unknown dtype 'F33'");
    check("size_mismatch", raw_st(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", data16),
          "'w': F32 [2, 3] needs 24 bytes but data_offsets [0, 16] span 16");
    check("dtype_size_mismatch", raw_st(R"({"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}})", data16),
          "needs 8 bytes");
    check("huge_count",
          raw_st(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})", data16),
          "'w': shape [4294967296, 4294967296, 16] has an element count too large");
    check("negative_dim", raw_st(R"({"w":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}})", data16),
          "non-negative");
    check("missing_offsets", raw_st(R"({"w":{"dtype":"F32","shape":[2,2]}})", data16), "'w': 'data_offsets'");
    check("duplicate", raw_st(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data16),
          "'w' is listed twice");
    CHECK(contains(err_of(dir.path + "/absent.safetensors"), "cannot open"));
  }

  TEST_CASE("safetensors writer is atomic and refuses bad input") {
    TempDir dir;
    std::string path = dir.path + "/m.safetensors";
    Tensor a = Tensor::full({4}, 2.0f);
    SafeTensorsWriter w;
    w.add("a", a);
    CHECK_THROWS_WITH_AS(w.add("a", a), doctest::Contains("'a' added twice"), Error);
    CHECK_THROWS_AS(w.add("b", a, StDType::I32), Error);
    w.write(path);
    // Writing into a directory that does not exist fails and leaves the old file intact.
    SafeTensorsWriter w2;
    w2.add("z", a);
    CHECK_THROWS_AS(w2.write(dir.path + "/nodir/m.safetensors"), Error);
    SafeTensorsReader r(path);
    CHECK(r.read("a")[3] == 2.0f);
  }

  TEST_CASE("hf config: parse, defaults, eos int or list, write back") {
    Json j = Json::parse(R"({"model_type":"qwen3","vocab_size":151936,"hidden_size":1024,"num_hidden_layers":28,
      "num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,"intermediate_size":3072,"rope_theta":1000000,
      "rms_norm_eps":1e-06,"tie_word_embeddings":true,"max_position_embeddings":40960,"bos_token_id":151643,
      "eos_token_id":151645,"rope_scaling":null,"hidden_act":"silu","attention_bias":false,"torch_dtype":"bfloat16",
      "use_sliding_window":false,"sliding_window":null})");
    ModelConfig c = ModelConfig::from_json(j);
    CHECK(c.qk_norm());
    CHECK(c.head_dim == 128);
    CHECK(c.num_key_value_heads == 8);
    CHECK(c.rope_theta == 1000000.0);
    CHECK(c.rms_norm_eps == doctest::Approx(1e-6));
    CHECK(c.tie_word_embeddings);
    CHECK(c.eos_token_ids == std::vector<int64_t>{151645});
    CHECK(c.bos_token_id == 151643);

    Json l = Json::parse(R"({"model_type":"llama","vocab_size":100,"hidden_size":64,"num_hidden_layers":2,
      "num_attention_heads":4,"intermediate_size":128,"eos_token_id":[1,2],"tie_word_embeddings":false,"custom":7})");
    ModelConfig cl = ModelConfig::from_json(l);
    CHECK(!cl.qk_norm());
    CHECK(cl.head_dim == 16);             // hidden / heads
    CHECK(cl.num_key_value_heads == 4);   // defaults to heads
    CHECK(cl.eos_token_ids == std::vector<int64_t>{1, 2});
    CHECK(cl.bos_token_id == -1);
    CHECK(!cl.tie_word_embeddings);

    TempDir dir;
    cl.save(dir.path + "/config.json");
    ModelConfig back = ModelConfig::load(dir.path);
    CHECK(back.head_dim == 16);
    CHECK(back.eos_token_ids == std::vector<int64_t>{1, 2});
    CHECK(back.source.get_int("custom", 0) == 7);  // unknown fields survive
    CHECK(back.source.at("architectures")[0].as_string() == "LlamaForCausalLM");

    ModelConfig fresh = tiny_config(true);
    fresh.save(dir.path + "/config.json");
    ModelConfig f2 = ModelConfig::load(dir.path + "/config.json");
    CHECK(f2.hidden_size == fresh.hidden_size);
    CHECK(f2.tie_word_embeddings == true);
    CHECK(f2.model_type == "qwen3");
  }

  TEST_CASE("hf config: llama3 rope scaling (Llama 3.1 / 3.2) and rope_parameters") {
    // Llama-3.2-1B's RoPE settings; expected inverse frequencies computed by hand (python, from
    // transformers' _compute_llama3_parameters): i = 0 high frequency, unchanged; i = 16 in the
    // blend band (wavelength 4442.9 between 8192/4 and 8192/1); i = 31 long wavelength, / 32.
    const std::string text = R"({"model_type":"llama","vocab_size":128,"hidden_size":256,"num_hidden_layers":1,
      "num_attention_heads":4,"num_key_value_heads":2,"head_dim":64,"intermediate_size":128,
      "rope_theta":500000.0,"max_position_embeddings":131072,"tie_word_embeddings":true,
      "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
                      "original_max_position_embeddings":8192,"rope_type":"llama3"}})";
    ModelConfig c = ModelConfig::from_json(Json::parse(text), "cfg.json");
    CHECK(c.rope_scaling.type == "llama3");
    const std::vector<double> f = c.rope_inv_freq();
    REQUIRE(f.size() == 32);
    CHECK(f[0] == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(f[16] == doctest::Approx(0.00042955679655936815).epsilon(1e-12));
    CHECK(f[31] == doctest::Approx(9.41830672543491e-08).epsilon(1e-12));
    for (size_t i = 1; i < f.size(); ++i) CHECK(f[i] < f[i - 1]);  // still monotone
    // The model's RoPE table uses them.
    ModelConfig small = c;
    small.max_position_embeddings = 4;
    Model m(small, false);
    CHECK(m.rope_table.cos[size_t(1 * 32 + 16)] == doctest::Approx(std::cos(0.00042955679655936815)).epsilon(1e-7));
    CHECK(m.rope_table.sin[size_t(3 * 32 + 31)] == doctest::Approx(std::sin(3 * 9.41830672543491e-08)).epsilon(1e-6));
    // Without scaling, the plain table.
    ModelConfig plain = small;
    plain.rope_scaling = RopeScaling();
    CHECK(plain.rope_inv_freq()[31] == doctest::Approx(3.013858152139171e-06).epsilon(1e-12));
    // Written back: the source's rope_scaling is kept.
    ModelConfig back = ModelConfig::from_json(c.to_json(), "back");
    CHECK(back.rope_scaling.factor == 32.0);
    CHECK(back.rope_inv_freq() == f);
    // A fresh config with scaling writes it.
    ModelConfig fresh = tiny_config(false);
    fresh.rope_scaling = c.rope_scaling;
    CHECK(ModelConfig::from_json(fresh.to_json(), "fresh").rope_scaling.original_max_position_embeddings == 8192);

    // transformers >= 4.5x: rope_theta and the scaling inside rope_parameters.
    ModelConfig rp = ModelConfig::from_json(Json::parse(R"({"model_type":"qwen3","vocab_size":100,"hidden_size":64,
      "num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":128,
      "rope_parameters":{"rope_type":"default","rope_theta":1000000.0}})"), "rp.json");
    CHECK(rp.rope_theta == 1000000.0);
    CHECK(rp.rope_scaling.type == "default");

    auto err = config_error;
    const std::string base = R"("model_type":"llama","vocab_size":100,"hidden_size":64,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":128)";
    CHECK(contains(err("{" + base + R"(,"rope_scaling":{"rope_type":"yarn","factor":4}})"), "rope_type \"yarn\""));
    CHECK(contains(err("{" + base + R"(,"rope_scaling":{"rope_type":"llama3","low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}})"),
                   "needs 'factor'"));
    CHECK(contains(err("{" + base + R"(,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":1,"original_max_position_embeddings":8192}})"),
                   "low_freq_factor < high_freq_factor"));
    CHECK(contains(err("{" + base + R"(,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":0.5}})"),
                   "original_max_position_embeddings"));
    CHECK(contains(err("{" + base + R"(,"rope_scaling":7})"), "rope_scaling: must be an object"));
  }

  TEST_CASE("hf config: validation errors name the field") {
    auto err = config_error;
    std::string base = R"("vocab_size":100,"hidden_size":64,"num_hidden_layers":2,"intermediate_size":128)";
    // A valid llama config (4 heads) with one more field.
    auto llama = [&](const std::string& field) {
      return "{\"model_type\":\"llama\"," + base + ",\"num_attention_heads\":4," + field + "}";
    };
    CHECK(contains(err("{\"model_type\":\"llama\"," + base + ",\"num_attention_heads\":5}"),
                   "cfg.json: num_attention_heads: 5 does not divide hidden_size 64"));
    CHECK(contains(err(llama("\"num_key_value_heads\":3")),
                   "num_key_value_heads: 3 does not divide num_attention_heads 4"));
    CHECK(contains(err("{\"model_type\":\"gpt2\"," + base + ",\"num_attention_heads\":4}"), "model_type: \"gpt2\""));
    CHECK(contains(err("{" + base + ",\"num_attention_heads\":4}"), "'model_type'"));
    CHECK(contains(err(R"({"model_type":"llama","vocab_size":100,"hidden_size":64,"num_attention_heads":4,"intermediate_size":128})"),
                   "'num_hidden_layers'"));
    CHECK(contains(err(R"({"model_type":"llama","vocab_size":100,"hidden_size":"x","num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":128})"),
                   "cfg.json: hidden_size: expected an integer"));
    CHECK(contains(err(llama("\"head_dim\":7")),
                   "head_dim: 7 must be even"));
    CHECK(contains(err(llama("\"eos_token_id\":100")),
                   "eos_token_id: 100 is outside"));
    CHECK(contains(err(llama("\"attention_bias\":true")),
                   "attention_bias"));
    CHECK(contains(err(llama("\"rope_scaling\":{\"type\":\"linear\"}")),
                   "rope_scaling"));
    CHECK(contains(err(llama("\"rms_norm_eps\":0")),
                   "rms_norm_eps"));
    CHECK(contains(err("{\"model_type\":\"llama\"," + base + ",\"num_attention_heads\":0}"),
                   "num_attention_heads must be positive"));
  }
}
