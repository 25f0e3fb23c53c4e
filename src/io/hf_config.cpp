// ModelConfig <-> Hugging Face config.json.
#include "io/hf_config.h"

#include <sys/stat.h>

#include <cmath>

#include "core/error.h"

namespace razor {

namespace {

int64_t req_int(const Json& j, const char* key, const std::string& what) {
  const Json* v = j.find(key);
  if (!v || v->is_null()) fail("%s: missing required field '%s'", what.c_str(), key);
  return v->as_int((what + ": " + key).c_str());
}

int64_t opt_int(const Json& j, const char* key, int64_t def, const std::string& what) {
  const Json* v = j.find(key);
  if (!v || v->is_null()) return def;
  return v->as_int((what + ": " + key).c_str());
}

double opt_double(const Json& j, const char* key, double def, const std::string& what) {
  const Json* v = j.find(key);
  if (!v || v->is_null()) return def;
  return v->as_double((what + ": " + key).c_str());
}

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

ModelConfig ModelConfig::from_json(const Json& j, const std::string& what) {
  if (!j.is_object()) fail("%s: not a JSON object", what.c_str());
  ModelConfig c;
  c.source = j;
  const Json* mt = j.find("model_type");
  if (!mt) fail("%s: missing required field 'model_type' (razor reads \"llama\" and \"qwen3\")", what.c_str());
  c.model_type = mt->as_string((what + ": model_type").c_str());
  if (c.model_type != "llama" && c.model_type != "qwen3")
    fail("%s: model_type: \"%s\" is not supported (razor reads \"llama\" and \"qwen3\")", what.c_str(),
         c.model_type.c_str());
  c.vocab_size = req_int(j, "vocab_size", what);
  c.hidden_size = req_int(j, "hidden_size", what);
  c.num_hidden_layers = req_int(j, "num_hidden_layers", what);
  c.num_attention_heads = req_int(j, "num_attention_heads", what);
  c.num_key_value_heads = opt_int(j, "num_key_value_heads", c.num_attention_heads, what);
  c.intermediate_size = req_int(j, "intermediate_size", what);
  if (c.num_attention_heads > 0 && !j.find("head_dim")) {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail("%s: num_attention_heads: %lld does not divide hidden_size %lld (and no head_dim is given)", what.c_str(),
           (long long)c.num_attention_heads, (long long)c.hidden_size);
  }
  c.head_dim = opt_int(j, "head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0, what);
  // transformers >= 4.5x moved rope_theta (and the scaling) into rope_parameters.
  const Json* rp = j.find("rope_parameters");
  if (rp && !rp->is_null() && !rp->is_object()) fail("%s: rope_parameters must be an object", what.c_str());
  c.rope_theta = opt_double(j, "rope_theta", rp && rp->is_object() ? opt_double(*rp, "rope_theta", 10000.0, what + ": rope_parameters") : 10000.0, what);
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) fail("%s: rope_theta must be positive, got %g", what.c_str(), c.rope_theta);
  c.rms_norm_eps = opt_double(j, "rms_norm_eps", 1e-6, what);
  const Json* tie = j.find("tie_word_embeddings");
  // HF's PretrainedConfig default is true; Llama configs normally say false explicitly.
  c.tie_word_embeddings = (tie && !tie->is_null()) ? tie->as_bool((what + ": tie_word_embeddings").c_str()) : true;
  c.max_position_embeddings = opt_int(j, "max_position_embeddings", 2048, what);
  c.bos_token_id = opt_int(j, "bos_token_id", -1, what);
  if (const Json* e = j.find("eos_token_id"); e && !e->is_null()) {
    if (e->is_array()) {
      for (const Json& x : e->items()) c.eos_token_ids.push_back(x.as_int((what + ": eos_token_id").c_str()));
    } else {
      c.eos_token_ids.push_back(e->as_int((what + ": eos_token_id").c_str()));
    }
  }
  // Features razor's forward does not implement: refuse rather than compute something else.
  if (j.get_bool("attention_bias", false))
    fail("%s: attention_bias: true is not supported (razor's attention has no biases)", what.c_str());
  if (j.get_bool("mlp_bias", false)) fail("%s: mlp_bias: true is not supported", what.c_str());
  std::string act = j.get_string("hidden_act", "silu");
  if (act != "silu") fail("%s: hidden_act: \"%s\" is not supported (razor implements SwiGLU with silu)", what.c_str(), act.c_str());
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const Json* rs = j.find(key);
    if (!rs || rs->is_null()) continue;
    const std::string w = what + ": " + key;
    if (!rs->is_object()) fail("%s: must be an object", w.c_str());
    const Json* t = rs->find("rope_type");
    if (!t || t->is_null()) t = rs->find("type");
    const std::string type = t && !t->is_null() ? t->as_string((w + ".rope_type").c_str()) : "default";
    if (type == "default") continue;
    if (type != "llama3")
      fail("%s: rope_type \"%s\" is not supported (razor implements plain RoPE and \"llama3\")", w.c_str(),
           type.c_str());
    RopeScaling r;
    r.type = type;
    auto need = [&](const char* k) {
      const Json* v = rs->find(k);
      if (!v || v->is_null()) fail("%s: llama3 scaling needs '%s'", w.c_str(), k);
      return v->as_double((w + "." + k).c_str());
    };
    r.factor = need("factor");
    r.low_freq_factor = need("low_freq_factor");
    r.high_freq_factor = need("high_freq_factor");
    const double orig = need("original_max_position_embeddings");
    if (!(r.factor >= 1.0) || !std::isfinite(r.factor)) fail("%s.factor: must be >= 1, got %g", w.c_str(), r.factor);
    if (!(r.low_freq_factor > 0) || !(r.high_freq_factor > r.low_freq_factor) || !std::isfinite(r.high_freq_factor))
      fail("%s: need 0 < low_freq_factor < high_freq_factor, got %g and %g", w.c_str(), r.low_freq_factor,
           r.high_freq_factor);
    if (!(orig >= 1 && orig <= 1e9) || orig != std::floor(orig))
      fail("%s.original_max_position_embeddings: must be a positive integer, got %g", w.c_str(), orig);
    r.original_max_position_embeddings = int64_t(orig);
    c.rope_scaling = r;
  }
  if (j.get_bool("use_sliding_window", false))
    fail("%s: use_sliding_window: true is not supported", what.c_str());
  c.validate(what);
  return c;
}

void ModelConfig::validate(const std::string& what) const {
  const char* w = what.c_str();
  if (model_type != "llama" && model_type != "qwen3")
    fail("%s: model_type: \"%s\" is not supported (razor reads \"llama\" and \"qwen3\")", w, model_type.c_str());
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) fail("%s: %s must be positive, got %lld", w, name, (long long)v);
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("intermediate_size", intermediate_size);
  positive("max_position_embeddings", max_position_embeddings);
  // Upper bounds far above any real model, so that products of sizes (V*C, L*C*F, H*D)
  // cannot overflow int64 in tensor shapes: a hostile config.json gets an error, not UB.
  auto at_most = [&](const char* name, int64_t v, int64_t hi) {
    if (v > hi) fail("%s: %s: %lld is implausibly large (razor accepts at most %lld)", w, name, (long long)v, (long long)hi);
  };
  at_most("vocab_size", vocab_size, int64_t(1) << 26);
  at_most("hidden_size", hidden_size, int64_t(1) << 20);
  at_most("num_hidden_layers", num_hidden_layers, int64_t(1) << 12);
  at_most("num_attention_heads", num_attention_heads, int64_t(1) << 12);
  at_most("num_key_value_heads", num_key_value_heads, int64_t(1) << 12);
  at_most("head_dim", head_dim, int64_t(1) << 16);
  at_most("intermediate_size", intermediate_size, int64_t(1) << 22);
  at_most("max_position_embeddings", max_position_embeddings, int64_t(1) << 26);
  if (num_attention_heads % num_key_value_heads != 0)
    fail("%s: num_key_value_heads: %lld does not divide num_attention_heads %lld", w, (long long)num_key_value_heads,
         (long long)num_attention_heads);
  if (head_dim % 2 != 0) fail("%s: head_dim: %lld must be even (rotary embedding pairs)", w, (long long)head_dim);
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) fail("%s: rope_theta must be positive and finite", w);
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) fail("%s: rms_norm_eps must be positive and finite", w);
  if (bos_token_id < -1 || bos_token_id >= vocab_size)
    fail("%s: bos_token_id: %lld is outside the vocabulary [0, %lld)", w, (long long)bos_token_id, (long long)vocab_size);
  for (int64_t e : eos_token_ids)
    if (e < 0 || e >= vocab_size)
      fail("%s: eos_token_id: %lld is outside the vocabulary [0, %lld)", w, (long long)e, (long long)vocab_size);
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::string file = is_dir(path) ? path + "/config.json" : path;
  return from_json(Json::parse(read_file(file), file), file);
}

std::vector<double> ModelConfig::rope_inv_freq() const {
  const int64_t half = head_dim / 2;
  std::vector<double> f(size_t(std::max<int64_t>(half, 0)));
  const double kPi = 3.14159265358979323846;
  const RopeScaling& r = rope_scaling;
  const double low_wavelen = double(r.original_max_position_embeddings) / r.low_freq_factor;
  const double high_wavelen = double(r.original_max_position_embeddings) / r.high_freq_factor;
  for (int64_t i = 0; i < half; ++i) {
    double inv = std::pow(rope_theta, -double(2 * i) / double(head_dim));
    if (r.type == "llama3") {
      const double wavelen = 2 * kPi / inv;
      if (wavelen > low_wavelen) {
        inv /= r.factor;  // long wavelengths: interpolated
      } else if (wavelen >= high_wavelen) {  // between: blend
        const double smooth = (double(r.original_max_position_embeddings) / wavelen - r.low_freq_factor) /
                              (r.high_freq_factor - r.low_freq_factor);
        inv = (1 - smooth) * inv / r.factor + smooth * inv;
      }  // short wavelengths: unchanged
    }
    f[size_t(i)] = inv;
  }
  return f;
}

Json ModelConfig::to_json() const {
  Json j = source.is_object() ? source : Json::object();
  if (!source.is_object()) {
    j.set("architectures", Json::array());
    j.set("model_type", Json(model_type));
  }
  Json arch = Json::array();
  arch.push_back(Json(model_type == "qwen3" ? "Qwen3ForCausalLM" : "LlamaForCausalLM"));
  j.set("architectures", arch);
  j.set("model_type", Json(model_type));
  j.set("vocab_size", Json(vocab_size));
  j.set("hidden_size", Json(hidden_size));
  j.set("num_hidden_layers", Json(num_hidden_layers));
  j.set("num_attention_heads", Json(num_attention_heads));
  j.set("num_key_value_heads", Json(num_key_value_heads));
  j.set("head_dim", Json(head_dim));
  j.set("intermediate_size", Json(intermediate_size));
  j.set("hidden_act", Json("silu"));
  j.set("rope_theta", Json(rope_theta));
  if (rope_scaling.type != "default" && !(source.is_object() && (source.find("rope_scaling") || source.find("rope_parameters")))) {
    Json rs = Json::object();
    rs.set("rope_type", Json(rope_scaling.type));
    rs.set("factor", Json(rope_scaling.factor));
    rs.set("low_freq_factor", Json(rope_scaling.low_freq_factor));
    rs.set("high_freq_factor", Json(rope_scaling.high_freq_factor));
    rs.set("original_max_position_embeddings", Json(rope_scaling.original_max_position_embeddings));
    j.set("rope_scaling", rs);
  }
  j.set("rms_norm_eps", Json(rms_norm_eps));
  j.set("tie_word_embeddings", Json(tie_word_embeddings));
  j.set("max_position_embeddings", Json(max_position_embeddings));
  j.set("attention_bias", Json(attention_bias));
  j.set("bos_token_id", bos_token_id >= 0 ? Json(bos_token_id) : Json());
  if (eos_token_ids.empty()) {
    j.set("eos_token_id", Json());
  } else if (eos_token_ids.size() == 1 && !(source.is_object() && source.find("eos_token_id") &&
                                            source.find("eos_token_id")->is_array())) {
    j.set("eos_token_id", Json(eos_token_ids[0]));
  } else {
    Json a = Json::array();
    for (int64_t e : eos_token_ids) a.push_back(Json(e));
    j.set("eos_token_id", a);
  }
  if (!j.has("torch_dtype")) j.set("torch_dtype", Json("float32"));
  return j;
}

void ModelConfig::save(const std::string& path) const {
  validate(path);
  write_file_atomic(path, to_json().dump(2) + "\n");
}

}  // namespace razor
