#include "gguf/import_meta.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "core/error.h"
#include "gguf/export.h"
#include "io/json.h"
#include "io/pretokenize.h"
#include "io/tokenizer.h"

namespace razor {

namespace {

// llama.cpp token types (llama_token_type).
enum TokenType : int64_t { kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
                           kByte = 6 };

bool is_integer_type(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64: return true;
    default: return false;
  }
}
bool is_unsigned(GgufValueType t) {
  return t == GgufValueType::kUint8 || t == GgufValueType::kUint16 || t == GgufValueType::kUint32 ||
         t == GgufValueType::kUint64;
}

// The value of an hparam; nullptr when it is missing and not required (the caller's default).
static const GgufValue* find_hparam(const GgufFile& f, const std::string& key, bool required) {
  const GgufValue* v = f.find(key);
  RZ_CHECK(v || !required, "%s: key '%s': missing (razor needs it to rebuild the model config)", f.source().c_str(),
           key.c_str());
  return v;
}

// An integer hparam of any integer type (converters differ: u32 is usual, some write i32/u64).
int64_t meta_int(const GgufFile& f, const std::string& key, int64_t def, bool required) {
  const GgufValue* v = find_hparam(f, key, required);
  if (!v) return def;
  RZ_CHECK(v->type != GgufValueType::kArray,
           "%s: key '%s' is an array (per-layer values); razor's models use one value for every layer",
           f.source().c_str(), key.c_str());
  RZ_CHECK(is_integer_type(v->type), "%s: key '%s' is %s, expected an integer", f.source().c_str(), key.c_str(),
           gguf_value_type_name(v->type));
  if (is_unsigned(v->type)) {
    RZ_CHECK(v->u <= uint64_t(INT64_MAX), "%s: key '%s': %llu is out of range", f.source().c_str(), key.c_str(),
             (unsigned long long)v->u);
    return int64_t(v->u);
  }
  return v->i;
}

// A float hparam: f32 values come back as their shortest decimal (see the header).
double meta_float(const GgufFile& f, const std::string& key, double def, bool required) {
  const GgufValue* v = find_hparam(f, key, required);
  if (!v) return def;
  if (v->type == GgufValueType::kFloat32) return shortest_decimal(float(v->f));
  if (v->type == GgufValueType::kFloat64) return v->f;
  fail("%s: key '%s' is %s, expected a float", f.source().c_str(), key.c_str(), gguf_value_type_name(v->type));
}

// The tokenizer.ggml.pre names llama.cpp maps to the three pre-tokenizers razor implements.
bool pre_tokenizer_of(const std::string& name, SplitPattern* p, std::string* canonical) {
  static const struct {
    const char* name;
    SplitPattern pattern;
    const char* canonical;
  } kNames[] = {
      {"qwen2", SplitPattern::Qwen2, "qwen2"},          {"deepseek-r1-qwen", SplitPattern::Qwen2, "qwen2"},
      {"llama-bpe", SplitPattern::Llama3, "llama-bpe"}, {"llama3", SplitPattern::Llama3, "llama-bpe"},
      {"llama-v3", SplitPattern::Llama3, "llama-bpe"},  {"gpt-2", SplitPattern::Gpt2, "gpt-2"},
  };
  for (const auto& n : kNames)
    if (name == n.name) {
      *p = n.pattern;
      *canonical = n.canonical;
      return true;
    }
  return false;
}

}  // namespace

double shortest_decimal(float v) {
  if (!std::isfinite(v)) return double(v);
  char buf[48];
  for (int p = 1; p <= 9; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, double(v));
    if (std::strtof(buf, nullptr) == v) return std::strtod(buf, nullptr);
  }
  return double(v);
}

RopeScaling llama3_scaling_from_factors(const std::vector<float>& fac, double theta, int64_t head_dim,
                                        const std::string& what) {
  const int64_t half = head_dim / 2;
  RZ_CHECK(int64_t(fac.size()) == half, "%s: %zu factors, expected head_dim / 2 = %lld", what.c_str(), fac.size(),
           (long long)half);
  float fmax = 1.0f;
  for (size_t i = 0; i < fac.size(); ++i) {
    RZ_CHECK(std::isfinite(fac[i]) && fac[i] >= 1.0f - 1e-6f,
             "%s: factor %zu is %g; llama3 rope scaling divides frequencies by factors >= 1", what.c_str(), i,
             double(fac[i]));
    fmax = std::max(fmax, fac[i]);
  }
  if (fmax <= 1.0f + 1e-6f) return RopeScaling();  // every factor 1: plain RoPE
  auto matches = [&](const RopeScaling& r) {
    ModelConfig c;
    c.head_dim = head_dim;
    c.rope_theta = theta;
    c.rope_scaling = r;
    const std::vector<float> g = rope_freq_factors(c);
    for (size_t i = 0; i < fac.size(); ++i)
      if (std::fabs(double(g[i]) - double(fac[i])) > 1e-5 * std::max(1.0, std::fabs(double(fac[i])))) return false;
    return true;
  };
  std::vector<RopeScaling> cands;
  RopeScaling r;
  r.type = "llama3";
  r.factor = shortest_decimal(fmax);
  r.low_freq_factor = 1.0, r.high_freq_factor = 4.0, r.original_max_position_embeddings = 8192;  // Llama 3.1 / 3.2
  cands.push_back(r);
  // In the blend band the factor is 1 / ((1 - s) / factor + s) with s = (orig / wavelen - low) / (high - low),
  // linear in 1 / wavelen: s = a / wavelen + b. (a, b) fix the factors completely (low, high and orig share one
  // free scale), so fit them and take low_freq_factor = 1.
  const double kPi = 3.14159265358979323846;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (int64_t i = 0; i < half; ++i) {
    const double fi = fac[size_t(i)];
    if (!(fi > 1.0 + 1e-4 && fi < double(fmax) * (1.0 - 1e-4))) continue;
    const double inv = std::pow(theta, -double(2 * i) / double(head_dim));
    const double x = inv / (2 * kPi);  // 1 / wavelen
    const double s = (1.0 / fi - 1.0 / r.factor) / (1.0 - 1.0 / r.factor);
    sx += x, sy += s, sxx += x * x, sxy += x * s, ++n;
  }
  if (n >= 2 && std::fabs(n * sxx - sx * sx) > 0) {
    const double a = (n * sxy - sx * sy) / (n * sxx - sx * sx), b = (sy - a * sx) / n;
    if (b < 0 && a > 0) {
      RopeScaling fit = r;
      const double k = -1.0 / b;  // high - low with low = 1
      fit.high_freq_factor = std::round((1.0 + k) * 1e4) / 1e4;
      const double orig = std::round(a * k);
      if (orig >= 1 && orig <= 1e9) {
        fit.original_max_position_embeddings = int64_t(orig);
        cands.push_back(fit);
      }
    }
  }
  for (const RopeScaling& c : cands)
    if (matches(c)) return c;
  fail("%s: the %zu factors are not llama3 rope scaling razor can reproduce (tried factor %g with low/high frequency "
       "factors 1 / 4 and original context 8192, and a fit of the blend band)",
       what.c_str(), fac.size(), r.factor);
}

ModelConfig gguf_model_config(const GgufFile& f, int64_t vocab, bool tied, const std::vector<float>& rope_freqs) {
  const std::string& src = f.source();
  const std::string arch = f.get_str("general.architecture");
  RZ_CHECK(arch == "qwen3" || arch == "llama",
           "%s: general.architecture '%s': razor imports 'qwen3' and 'llama' models", src.c_str(), arch.c_str());
  const std::string a = arch + ".";
  ModelConfig c;
  c.model_type = arch;
  c.vocab_size = vocab;
  c.num_hidden_layers = meta_int(f, a + "block_count", 0, true);
  c.hidden_size = meta_int(f, a + "embedding_length", 0, true);
  c.intermediate_size = meta_int(f, a + "feed_forward_length", 0, true);
  c.num_attention_heads = meta_int(f, a + "attention.head_count", 0, true);
  c.num_key_value_heads = meta_int(f, a + "attention.head_count_kv", c.num_attention_heads, false);
  const int64_t def_hd = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  c.head_dim = meta_int(f, a + "attention.key_length", def_hd, false);
  const int64_t vlen = meta_int(f, a + "attention.value_length", c.head_dim, false);
  RZ_CHECK(vlen == c.head_dim, "%s: key '%sattention.value_length' = %lld differs from key_length %lld; razor's "
           "attention needs them equal", src.c_str(), a.c_str(), (long long)vlen, (long long)c.head_dim);
  const int64_t rot = meta_int(f, a + "rope.dimension_count", c.head_dim, false);
  RZ_CHECK(rot == c.head_dim, "%s: key '%srope.dimension_count' = %lld is not head_dim %lld; partial rotary "
           "embeddings are not supported", src.c_str(), a.c_str(), (long long)rot, (long long)c.head_dim);
  c.max_position_embeddings = meta_int(f, a + "context_length", 0, true);
  c.rope_theta = meta_float(f, a + "rope.freq_base", 10000.0, false);
  c.rms_norm_eps = meta_float(f, a + "attention.layer_norm_rms_epsilon", 0, true);
  c.tie_word_embeddings = tied;
  if (const GgufValue* st = f.find(a + "rope.scaling.type")) {
    RZ_CHECK(st->type == GgufValueType::kString && st->s == "none",
             "%s: key '%srope.scaling.type' = %s: razor implements plain RoPE and llama3 scaling (rope_freqs.weight), "
             "not linear / YaRN / LongRoPE",
             src.c_str(), a.c_str(), st->str_short().c_str());
  }
  auto token_id = [&](const char* key) -> int64_t {
    const GgufValue* v = f.find(key);
    if (!v) return -1;
    const int64_t id = meta_int(f, key, -1, false);
    RZ_CHECK(id >= 0 && id < vocab, "%s: key '%s' = %lld is outside the %lld rows of token_embd", src.c_str(), key,
             (long long)id, (long long)vocab);
    return id;
  };
  c.bos_token_id = token_id("tokenizer.ggml.bos_token_id");
  const int64_t eos = token_id("tokenizer.ggml.eos_token_id"), eot = token_id("tokenizer.ggml.eot_token_id");
  if (eos >= 0) c.eos_token_ids.push_back(eos);
  if (eot >= 0 && eot != eos) c.eos_token_ids.push_back(eot);
  c.validate(src + ": metadata");
  if (!rope_freqs.empty()) {
    RZ_CHECK(arch == "llama", "%s: tensor rope_freqs.weight: llama.cpp applies it to 'llama' models only, this is '%s'",
             src.c_str(), arch.c_str());
    c.rope_scaling = llama3_scaling_from_factors(rope_freqs, c.rope_theta, c.head_dim, src + ": rope_freqs.weight");
  }
  return c;
}

std::string GgufTokenizer::summary() const {
  return strfmt("tokenizer: gpt2 BPE, pre '%s', %lld tokens (%lld in the BPE vocabulary, %lld added, %lld unused "
                "padding ids left out), %lld merges, chat template: %s",
                pre.c_str(), (long long)n_tokens, (long long)n_vocab, (long long)n_added, (long long)n_unused,
                (long long)n_merges, chat_template ? "yes" : "no");
}

GgufTokenizer gguf_tokenizer(const GgufFile& f) {
  const char* src = f.source().c_str();
  GgufTokenizer out;
  const GgufValue* mv = f.find("tokenizer.ggml.model");
  RZ_CHECK(mv, "%s: key 'tokenizer.ggml.model': missing; razor's packed model needs the tokenizer", src);
  RZ_CHECK(mv->type == GgufValueType::kString && mv->s == "gpt2",
           "%s: key 'tokenizer.ggml.model' = %s: razor reads byte-level BPE tokenizers ('gpt2') only, not "
           "SentencePiece ('llama') or others",
           src, mv->str_short().c_str());
  const GgufValue& tv = f.at("tokenizer.ggml.tokens");
  RZ_CHECK(tv.type == GgufValueType::kArray && tv.array_type == GgufValueType::kString,
           "%s: key 'tokenizer.ggml.tokens' is %s, expected an array of strings", src, tv.str_short().c_str());
  const std::vector<std::string>& tokens = tv.strings;
  RZ_CHECK(!tokens.empty() && tokens.size() <= (size_t(1) << 26), "%s: key 'tokenizer.ggml.tokens': %zu tokens",
           src, tokens.size());
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (const GgufValue* ty = f.find("tokenizer.ggml.token_type")) {
    RZ_CHECK(ty->type == GgufValueType::kArray && !ty->ints.empty() && ty->array_type != GgufValueType::kBool,
             "%s: key 'tokenizer.ggml.token_type' is %s, expected an array of integers", src, ty->str_short().c_str());
    RZ_CHECK(ty->ints.size() == tokens.size(), "%s: key 'tokenizer.ggml.token_type' has %zu entries for %zu tokens",
             src, ty->ints.size(), tokens.size());
    types = ty->ints;
  }
  const GgufValue& mg = f.at("tokenizer.ggml.merges");
  RZ_CHECK(mg.type == GgufValueType::kArray && mg.array_type == GgufValueType::kString,
           "%s: key 'tokenizer.ggml.merges' is %s, expected an array of strings", src, mg.str_short().c_str());
  std::string pre_name = "default";
  if (const GgufValue* pv = f.find("tokenizer.ggml.pre")) {
    RZ_CHECK(pv->type == GgufValueType::kString, "%s: key 'tokenizer.ggml.pre' is %s, expected a string", src,
             pv->str_short().c_str());
    pre_name = pv->s;
  }
  SplitPattern pattern = SplitPattern::Qwen2;
  RZ_CHECK(pre_tokenizer_of(pre_name, &pattern, &out.pre),
           "%s: key 'tokenizer.ggml.pre' = '%s': razor's tokenizer implements the qwen2, llama-bpe (llama3) and "
           "gpt-2 pre-tokenizers only",
           src, pre_name.c_str());

  Json vocab = Json::object();
  Json added = Json::array();
  std::unordered_map<std::string, int64_t> seen;
  seen.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) {
    const std::string& t = tokens[id];
    const int64_t ty = types[id];
    RZ_CHECK(ty >= kUndefined && ty <= kUnused,
             "%s: key 'tokenizer.ggml.token_type': token %zu ('%s') has type %lld (byte tokens belong to SentencePiece "
             "vocabularies, which razor does not read)",
             src, id, t.c_str(), (long long)ty);
    if (ty == kControl || ty == kUserDefined) {
      Json a = Json::object();
      a.set("id", int64_t(id));
      a.set("content", t);
      a.set("single_word", false);
      a.set("lstrip", false);
      a.set("rstrip", false);
      a.set("normalized", ty == kUserDefined);
      a.set("special", ty == kControl);
      added.push_back(std::move(a));
      ++out.n_added;
      continue;
    }
    if (ty == kUnused && t == "[PAD" + std::to_string(id) + "]") {  // a hole the converter filled (gguf_export)
      ++out.n_unused;
      continue;
    }
    auto ins = seen.emplace(t, int64_t(id));
    RZ_CHECK(ins.second, "%s: key 'tokenizer.ggml.tokens': token '%s' appears at ids %lld and %zu", src, t.c_str(),
             (long long)ins.first->second, id);
    vocab.set_unchecked(t, int64_t(id));
    ++out.n_vocab;
  }
  out.n_tokens = int64_t(tokens.size());
  Json merges = Json::array();
  for (const std::string& m : mg.strings) merges.push_back(Json(m));
  out.n_merges = int64_t(mg.strings.size());
  RZ_CHECK(out.n_merges > 0, "%s: key 'tokenizer.ggml.merges' is empty; a BPE tokenizer needs merges", src);

  Json root = Json::object();
  root.set("version", "1.0");
  root.set("truncation", nullptr);
  root.set("padding", nullptr);
  root.set("added_tokens", std::move(added));
  if (pattern == SplitPattern::Qwen2) {  // Qwen2 / Qwen3 tokenizers NFC-normalize
    Json norm = Json::object();
    norm.set("type", "NFC");
    root.set("normalizer", std::move(norm));
  } else {
    root.set("normalizer", nullptr);
  }
  root.set("pre_tokenizer",
           pattern == SplitPattern::Gpt2 ? hf_byte_level(true) : hf_split_pre_tokenizer(split_pattern_regex(pattern)));
  root.set("post_processor", hf_byte_level(false));
  root.set("decoder", hf_byte_level(false));
  // llama.cpp: ignore_merges for llama3
  root.set("model", hf_bpe_model(std::move(vocab), std::move(merges), pattern == SplitPattern::Llama3));
  out.tokenizer_json = root.dump(2) + "\n";
  // Refuse here what razor's tokenizer could not load later (bad merges, holes in the byte alphabet).
  Tokenizer::from_json(out.tokenizer_json, f.source() + ": tokenizer.ggml.*");

  Json tc = Json::object();
  for (const char* key : {"add_bos_token", "add_eos_token"})
    if (const GgufValue* v = f.find(std::string("tokenizer.ggml.") + key)) {
      RZ_CHECK(v->type == GgufValueType::kBool, "%s: key 'tokenizer.ggml.%s' is %s, expected a bool", src, key,
               v->str_short().c_str());
      tc.set(key, v->u != 0);
    }
  static const char* const kSpecials[][2] = {{"tokenizer.ggml.bos_token_id", "bos_token"},
                                             {"tokenizer.ggml.eos_token_id", "eos_token"},
                                             {"tokenizer.ggml.padding_token_id", "pad_token"}};
  for (const auto& s : kSpecials)
    if (f.find(s[0])) {
      const int64_t id = meta_int(f, s[0], -1, false);
      RZ_CHECK(id >= 0 && id < out.n_tokens, "%s: key '%s' = %lld is outside the %lld tokens", src, s[0],
               (long long)id, (long long)out.n_tokens);
      tc.set(s[1], tokens[size_t(id)]);
    }
  if (const GgufValue* ct = f.find("tokenizer.chat_template")) {
    RZ_CHECK(ct->type == GgufValueType::kString, "%s: key 'tokenizer.chat_template' is %s, expected a string", src,
             ct->str_short().c_str());
    tc.set("chat_template", ct->s);
    out.chat_template = true;
  }
  out.tokenizer_config_json = tc.dump(2) + "\n";
  return out;
}

}  // namespace razor
