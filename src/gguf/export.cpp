#include "gguf/export.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "core/tensor.h"
#include "gguf/blocks.h"

namespace razor {

namespace {

// The pre-tokenizer regexes llama.cpp knows under these tokenizer.ggml.pre names (the same
// strings Hugging Face tokenizer.json files carry; razor's own trained tokenizer uses Qwen2's).
const char* const kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// llama.cpp token types (llama_token_type).
enum TokenType : int32_t { kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5 };

struct HParams {
  std::string arch;
  int64_t n_layer = 0, n_ctx = 0, n_embd = 0, n_ff = 0, n_head = 0, n_kv = 0, head_dim = 0, n_vocab = 0;
  double rope_theta = 10000, rms_eps = 1e-6;
  bool tied = false;
  bool attention_bias = false;  // q/k/v biases: listed by the tensor table, refused
  std::vector<float> rope_factors;  // llama3 rope scaling: rope_freqs.weight; empty without scaling
};

int64_t positive(const Json& c, const char* key) {
  int64_t v = c.at(key, "config.json").as_int(key);
  RZ_CHECK(v > 0 && v < (int64_t(1) << 31), "config.json: %s = %lld must be a positive 32-bit integer", key,
           (long long)v);
  return v;
}

HParams read_hparams(const Json& c, const ExportOptions& opt) {
  RZ_CHECK(c.is_object(), "config.json: not a JSON object");
  HParams h;
  h.arch = opt.arch.empty() ? c.get_string("model_type", "") : opt.arch;
  RZ_CHECK(h.arch == "qwen3" || h.arch == "llama",
           "config.json: model_type '%s': GGUF export supports 'qwen3' and 'llama' (set the architecture explicitly "
           "for a compatible model)",
           h.arch.c_str());
  h.n_layer = positive(c, "num_hidden_layers");
  h.n_embd = positive(c, "hidden_size");
  h.n_ff = positive(c, "intermediate_size");
  h.n_head = positive(c, "num_attention_heads");
  h.n_kv = c.has("num_key_value_heads") ? positive(c, "num_key_value_heads") : h.n_head;
  RZ_CHECK(h.n_head % h.n_kv == 0, "config.json: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
           (long long)h.n_head, (long long)h.n_kv);
  const Json* hd = c.find("head_dim");
  if (hd && !hd->is_null()) {
    h.head_dim = positive(c, "head_dim");
  } else {
    RZ_CHECK(h.n_embd % h.n_head == 0, "config.json: hidden_size %lld is not divisible by num_attention_heads %lld",
             (long long)h.n_embd, (long long)h.n_head);
    h.head_dim = h.n_embd / h.n_head;
  }
  RZ_CHECK(h.head_dim % 2 == 0, "config.json: head_dim %lld must be even for RoPE", (long long)h.head_dim);
  h.n_ctx = c.has("max_position_embeddings") ? positive(c, "max_position_embeddings") : 2048;
  h.n_vocab = positive(c, "vocab_size");
  h.rms_eps = c.get_double("rms_norm_eps", 1e-6);
  RZ_CHECK(h.rms_eps > 0 && std::isfinite(h.rms_eps), "config.json: rms_norm_eps must be positive");
  // transformers >= 4.5x moved rope_theta into rope_parameters.
  h.rope_theta = c.get_double("rope_theta", 0);
  if (h.rope_theta == 0) {
    const Json* rp = c.find("rope_parameters");
    h.rope_theta = rp && rp->is_object() ? rp->get_double("rope_theta", 10000) : 10000;
  }
  RZ_CHECK(h.rope_theta > 0 && std::isfinite(h.rope_theta), "config.json: rope_theta must be positive");
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const Json* rs = c.find(key);
    if (!rs || !rs->is_object()) continue;
    std::string type = rs->get_string("rope_type", rs->get_string("type", "default"));
    if (type == "default") continue;
    RZ_CHECK(type == "llama3",
             "config.json: %s type '%s' is not supported by GGUF export (plain RoPE and llama3 scaling only)", key,
             type.c_str());
    RZ_CHECK(h.arch == "llama",
             "config.json: %s type 'llama3': llama.cpp applies rope_freqs.weight to 'llama' models only, not '%s'", key,
             h.arch.c_str());
    // The same parameters and formula as the forward (ModelConfig::rope_inv_freq): llama.cpp divides each
    // frequency by its factor, which is the ratio of plain to scaled frequency.
    Json cj = c;
    cj.set("model_type", h.arch);
    h.rope_factors = rope_freq_factors(ModelConfig::from_json(cj, "config.json"));
    if (h.rope_factors.size() != size_t(h.head_dim / 2)) h.rope_factors.clear();
    RZ_CHECK(!h.rope_factors.empty(), "config.json: head_dim %lld disagrees with the rope scaling's", (long long)h.head_dim);
  }
  h.tied = c.get_bool("tie_word_embeddings", false);  // LlamaConfig / Qwen3Config default
  h.attention_bias = c.get_bool("attention_bias", false);
  return h;
}

// config.json token ids may be an int, a list (first wins) or null.
int64_t config_token_id(const Json& c, const char* key) {
  const Json* v = c.find(key);
  if (!v || v->is_null()) return -1;
  if (v->is_array()) return v->size() > 0 && (*v)[0].is_int() ? (*v)[0].as_int(key) : -1;
  return v->is_int() ? v->as_int(key) : -1;
}

// tokenizer_config.json special tokens: "bos_token": "<s>" or {"content": "<s>", ...}.
std::string config_token_text(const Json* tc, const char* key) {
  if (!tc) return "";
  const Json* v = tc->find(key);
  if (!v) return "";
  if (v->is_string()) return v->as_string();
  if (v->is_object()) return v->get_string("content", "");
  return "";
}

void add_tokenizer(GgufWriter& w, const Json& config, const std::string& tokenizer_text, const HParams& h,
                   int64_t n_vocab, const ExportOptions& opt, ExportReport* rep) {
  Json tok = Json::parse(tokenizer_text, "tokenizer.json");
  const Json& model = tok.at("model", "tokenizer.json");
  std::string mtype = model.get_string("type", "BPE");
  RZ_CHECK(mtype == "BPE", "tokenizer.json: model type '%s': GGUF export writes byte-level BPE (gpt2) tokenizers only",
           mtype.c_str());
  std::vector<std::string> tokens(static_cast<size_t>(n_vocab));
  std::vector<int64_t> types(size_t(n_vocab), 0);
  const Json& vocab = model.at("vocab", "tokenizer.json: model");
  RZ_CHECK(vocab.is_object(), "tokenizer.json: model.vocab is not an object");
  auto place = [&](const std::string& text, int64_t id, int64_t type) {
    RZ_CHECK(id >= 0 && id < n_vocab,
             "tokenizer.json: token id %lld ('%s') is outside the %lld rows of the embedding (token_embd)",
             (long long)id, text.c_str(), (long long)n_vocab);
    tokens[size_t(id)] = text;
    types[size_t(id)] = type;
  };
  for (const auto& kv : vocab.members()) place(kv.first, kv.second.as_int("tokenizer.json: model.vocab id"), kNormal);
  if (const Json* added = tok.find("added_tokens"); added && added->is_array())
    for (const Json& a : added->items()) {
      std::string content = a.at("content", "tokenizer.json: added_tokens").as_string("content");
      place(content, a.at("id", "tokenizer.json: added_tokens").as_int("id"),
            a.get_bool("special", false) ? kControl : kUserDefined);
    }
  int64_t n_pad = 0;
  for (int64_t i = 0; i < n_vocab; ++i)
    if (types[size_t(i)] == 0) {
      // llama.cpp's converter fills ids the tokenizer never produces the same way.
      tokens[size_t(i)] = strfmt("[PAD%lld]", (long long)i);
      types[size_t(i)] = kUnused;
      ++n_pad;
    }
  if (n_pad) rep->notes.push_back(strfmt("%lld embedding rows have no token; written as [PADn] (unused)", (long long)n_pad));

  std::vector<std::string> merges;
  if (const Json* m = model.find("merges"); m && m->is_array()) {
    merges.reserve(m->size());
    for (const Json& e : m->items()) {
      if (e.is_string()) {
        merges.push_back(e.as_string());
      } else {
        RZ_CHECK(e.is_array() && e.size() == 2, "tokenizer.json: model.merges entries must be \"a b\" or [a, b]");
        merges.push_back(e[0].as_string("merge") + " " + e[1].as_string("merge"));
      }
    }
  }
  RZ_CHECK(!merges.empty(), "tokenizer.json: no merges; llama.cpp's gpt2 tokenizer needs them");

  std::string pre = opt.tokenizer_pre.empty() ? detect_tokenizer_pre(tok) : opt.tokenizer_pre;
  RZ_CHECK(!pre.empty(),
           "tokenizer.json: unknown pre_tokenizer (not the Qwen2, Llama 3 or GPT-2 split); name llama.cpp's "
           "tokenizer.ggml.pre explicitly");
  rep->notes.push_back("tokenizer: gpt2 BPE, pre '" + pre + "', " + std::to_string(n_vocab) + " tokens, " +
                       std::to_string(merges.size()) + " merges");

  w.set("tokenizer.ggml.model", GgufValue::str("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::str(pre));
  w.set("tokenizer.ggml.tokens", GgufValue::array_strings(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", GgufValue::array_ints(GgufValueType::kInt32, std::move(types)));
  w.set("tokenizer.ggml.merges", GgufValue::array_strings(std::move(merges)));

  const std::vector<std::string>& toks = w.find("tokenizer.ggml.tokens")->strings;
  auto id_of = [&](const std::string& text) -> int64_t {
    if (text.empty()) return -1;
    for (size_t i = 0; i < toks.size(); ++i)
      if (toks[i] == text) return int64_t(i);
    return -1;
  };
  const Json* tc = opt.tokenizer_config;
  struct Special {
    const char* gguf_key;
    const char* config_key;
    const char* text_key;
  };
  const Special specials[] = {{"tokenizer.ggml.bos_token_id", "bos_token_id", "bos_token"},
                              {"tokenizer.ggml.eos_token_id", "eos_token_id", "eos_token"},
                              {"tokenizer.ggml.padding_token_id", "pad_token_id", "pad_token"}};
  int64_t bos = -1;
  for (const Special& s : specials) {
    // tokenizer_config.json names the token the chat format uses (Qwen3: eos <|im_end|>);
    // config.json's id is the fallback (as llama.cpp's converter does).
    int64_t id = id_of(config_token_text(tc, s.text_key));
    if (id < 0) id = config_token_id(config, s.config_key);
    if (id < 0 || id >= n_vocab) continue;
    w.set(s.gguf_key, GgufValue::u32(uint32_t(id)));
    if (s.gguf_key == specials[0].gguf_key) bos = id;
  }
  bool add_bos = h.arch == "llama" && bos >= 0;  // Llama prepends <s>; Qwen has no BOS
  if (tc && tc->find("add_bos_token") && tc->find("add_bos_token")->is_bool()) add_bos = tc->get_bool("add_bos_token", add_bos);
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(add_bos));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
  if (tc)
    if (const Json* ct = tc->find("chat_template"); ct && ct->is_string())
      w.set("tokenizer.chat_template", GgufValue::str(ct->as_string()));
}

std::string layout_name(const ExportTensor& t, const CodeStats& st, int64_t d_out) {
  if (!t.row_bits.empty()) {
    int64_t n2 = 0, n4 = 0, n8 = 0;
    for (uint8_t b : t.row_bits) (b == 2 ? n2 : b == 4 ? n4 : n8)++;
    if (n2 == d_out) return strfmt("ternary G=%d", t.group);
    if (n4 == d_out) return strfmt("int4 G=%d", t.group);
    if (n8 == d_out) return strfmt("int8 G=%d", t.group);
    if (n8 == 0) return strfmt("mixed rows (%lld of %lld 4-bit) G=%d", (long long)n4, (long long)d_out, t.group);
    return strfmt("mixed rows (%lld ternary, %lld int4, %lld int8) G=%d", (long long)n2, (long long)n4, (long long)n8,
                  t.group);
  }
  return strfmt("codes %d..%d G=%d", st.min_code, st.max_code, t.group);
}

struct Expected {
  std::vector<int64_t> shape;
  bool required;
  int64_t rope_heads;  // q / k: heads whose rows the `llama` layout permutes
};

// Shapes llama.cpp will ask for, keyed by GGUF name (HF order [d_out, d_in]): the tensor table
// (nn/tensor_table.h) of the config these hparams describe; a tied output.weight is optional.
std::vector<std::pair<std::string, Expected>> expected_tensors(const HParams& h, int64_t n_vocab) {
  ModelConfig c;
  c.model_type = h.arch;
  c.vocab_size = n_vocab;
  c.hidden_size = h.n_embd;
  c.num_hidden_layers = h.n_layer;
  c.num_attention_heads = h.n_head;
  c.num_key_value_heads = h.n_kv;
  c.head_dim = h.head_dim;
  c.intermediate_size = h.n_ff;
  c.tie_word_embeddings = false;
  c.attention_bias = h.attention_bias;
  std::vector<std::pair<std::string, Expected>> e;
  for (const TensorSpec& t : model_tensors(c)) {
    refuse_unsupported(t, "GGUF export");
    e.push_back({t.gguf, {t.shape, t.kind != TensorKind::Head || !h.tied, t.rope_heads}});
  }
  return e;
}

}  // namespace

uint32_t llama_ftype_of(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return 0;    // LLAMA_FTYPE_ALL_F32
    case GgmlType::kF16: return 1;    // LLAMA_FTYPE_MOSTLY_F16
    case GgmlType::kQ4_0: return 2;   // LLAMA_FTYPE_MOSTLY_Q4_0
    case GgmlType::kQ8_0: return 7;   // LLAMA_FTYPE_MOSTLY_Q8_0
    case GgmlType::kBF16: return 32;  // LLAMA_FTYPE_MOSTLY_BF16
    case GgmlType::kTQ1_0: return 36; // LLAMA_FTYPE_MOSTLY_TQ1_0
    case GgmlType::kTQ2_0: return 37; // LLAMA_FTYPE_MOSTLY_TQ2_0
  }
  return 0;
}

std::vector<int64_t> rope_interleave_rows(int64_t n_head, int64_t head_dim) {
  // HF rotate-half pairs element i with i + D/2 inside a head; llama.cpp's `llama` rope pairs
  // 2i with 2i + 1. Destination row h*D + 2i + j takes source row h*D + j*D/2 + i.
  std::vector<int64_t> src(static_cast<size_t>(n_head * head_dim));
  const int64_t half = head_dim / 2;
  for (int64_t hh = 0; hh < n_head; ++hh)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) src[size_t(hh * head_dim + 2 * i + j)] = hh * head_dim + j * half + i;
  return src;
}

std::vector<float> rope_freq_factors(const ModelConfig& c) {
  ModelConfig plain = c;
  plain.rope_scaling = RopeScaling();
  const std::vector<double> a = plain.rope_inv_freq(), b = c.rope_inv_freq();
  std::vector<float> f(a.size());
  for (size_t i = 0; i < a.size(); ++i) f[i] = float(a[i] / b[i]);
  return f;
}

std::string detect_tokenizer_pre(const Json& tok) {
  const Json* pre = tok.find("pre_tokenizer");
  if (!pre || !pre->is_object()) return "";
  std::vector<const Json*> parts;
  if (pre->get_string("type", "") == "Sequence") {
    if (const Json* list = pre->find("pretokenizers"); list && list->is_array())
      for (const Json& p : list->items()) parts.push_back(&p);
  } else {
    parts.push_back(pre);
  }
  for (const Json* p : parts) {
    std::string type = p->get_string("type", "");
    if (type == "Split") {
      const Json* pat = p->find("pattern");
      if (!pat || !pat->is_object()) continue;
      std::string re = pat->get_string("Regex", "");
      if (re == kQwen2Split) return "qwen2";
      if (re == kLlama3Split) return "llama-bpe";
    } else if (type == "ByteLevel" && p->get_bool("use_regex", true) && parts.size() == 1) {
      return "gpt-2";
    }
  }
  return "";
}

int ExportReport::n_widened() const {
  int n = 0;
  for (const auto& t : tensors) n += t.widened;
  return n;
}
int ExportReport::n_inexact() const {
  int n = 0;
  for (const auto& t : tensors) n += !t.exact;
  return n;
}

std::string ExportReport::text() const {
  std::string s;
  s += strfmt("%-26s %-6s %-44s %12s  %s\n", "tensor", "type", "razor layout", "bytes", "exact");
  for (const auto& t : tensors) {
    s += strfmt("%-26s %-6s %-44s %12llu  %s%s\n", t.gguf_name.c_str(), ggml_type_name(t.type), t.layout.c_str(),
                (unsigned long long)t.bytes, t.exact ? "yes" : "NO", t.widened ? " (widened)" : "");
  }
  for (const auto& t : tensors)
    if (!t.note.empty()) s += "  " + t.gguf_name + ": " + t.note + "\n";
  for (const auto& n : notes) s += "  " + n + "\n";
  s += strfmt("%s: arch %s, %zu tensors, %lld parameters, %llu tensor bytes (%.3f bits/parameter), %d widened, %d "
              "not exact\n",
              path.c_str(), arch.c_str(), tensors.size(), (long long)params, (unsigned long long)tensor_bytes,
              params ? 8.0 * double(tensor_bytes) / double(params) : 0.0, n_widened(), n_inexact());
  return s;
}

GgufWriter build_gguf(const Json& config, const std::string& tokenizer_json, const std::vector<ExportTensor>& tensors,
                      const ExportOptions& opt, ExportReport* rep) {
  RZ_ASSERT(rep);
  RZ_CHECK(opt.ternary_type == GgmlType::kTQ1_0 || opt.ternary_type == GgmlType::kTQ2_0,
           "GGUF export: ternary type must be TQ1_0 or TQ2_0");
  RZ_CHECK(opt.float_matrix_type == GgmlType::kF32 || opt.float_matrix_type == GgmlType::kF16 ||
               opt.float_matrix_type == GgmlType::kBF16,
           "GGUF export: float matrix type must be F32, F16 or BF16");
  HParams h = read_hparams(config, opt);
  rep->arch = h.arch;

  // Map names and index the input.
  std::vector<std::string> gnames(tensors.size());
  const ExportTensor* embed = nullptr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    gnames[i] = gguf_tensor_name(tensors[i].name, h.attention_bias);
    RZ_CHECK(!gnames[i].empty(), "%s: not a tensor of a %s model (no GGUF name for it)", tensors[i].name.c_str(),
             h.arch.c_str());
    for (size_t j = 0; j < i; ++j)
      RZ_CHECK(gnames[j] != gnames[i], "%s: given twice", tensors[i].name.c_str());
    if (gnames[i] == "token_embd.weight") embed = &tensors[i];
  }
  RZ_CHECK(embed && embed->shape.size() == 2, "model.embed_tokens.weight: missing or not 2-D");
  const int64_t n_vocab = embed->shape[0];
  if (n_vocab != h.n_vocab)
    rep->notes.push_back(strfmt("config.json vocab_size %lld differs from the embedding's %lld rows; using the rows",
                                (long long)h.n_vocab, (long long)n_vocab));
  h.n_vocab = n_vocab;

  auto expected = expected_tensors(h, n_vocab);
  for (const auto& e : expected) {
    bool found = false;
    for (const auto& g : gnames) found = found || g == e.first;
    RZ_CHECK(found || !e.second.required, "GGUF export: tensor for '%s' (shape %s) is missing", e.first.c_str(),
             shape_str(e.second.shape).c_str());
  }

  GgufWriter w(opt.alignment);
  const std::string a = h.arch;
  w.set("general.architecture", GgufValue::str(a));
  w.set("general.name", GgufValue::str(opt.model_name));
  w.set("general.quantization_version", GgufValue::u32(2));
  w.set(a + ".vocab_size", GgufValue::u32(uint32_t(n_vocab)));
  w.set(a + ".context_length", GgufValue::u32(uint32_t(h.n_ctx)));
  w.set(a + ".embedding_length", GgufValue::u32(uint32_t(h.n_embd)));
  w.set(a + ".block_count", GgufValue::u32(uint32_t(h.n_layer)));
  w.set(a + ".feed_forward_length", GgufValue::u32(uint32_t(h.n_ff)));
  w.set(a + ".attention.head_count", GgufValue::u32(uint32_t(h.n_head)));
  w.set(a + ".attention.head_count_kv", GgufValue::u32(uint32_t(h.n_kv)));
  w.set(a + ".attention.key_length", GgufValue::u32(uint32_t(h.head_dim)));
  w.set(a + ".attention.value_length", GgufValue::u32(uint32_t(h.head_dim)));
  w.set(a + ".rope.dimension_count", GgufValue::u32(uint32_t(h.head_dim)));
  w.set(a + ".rope.freq_base", GgufValue::f32(float(h.rope_theta)));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(float(h.rms_eps)));
  add_tokenizer(w, config, tokenizer_json, h, n_vocab, opt, rep);

  for (size_t i = 0; i < tensors.size(); ++i) {
    const ExportTensor& t = tensors[i];
    const std::string& gname = gnames[i];
    const Expected* exp = nullptr;
    for (const auto& e : expected)
      if (e.first == gname) exp = &e.second;
    if (!exp) {
      RZ_CHECK(gname.compare(0, 4, "blk.") != 0,
               "%s: layer index beyond num_hidden_layers = %lld, or a tensor %s does not have", t.name.c_str(),
               (long long)h.n_layer, h.arch.c_str());
      fail("%s: unexpected tensor for %s", t.name.c_str(), h.arch.c_str());
    }
    if (gname == "output.weight" && h.tied) {
      rep->notes.push_back("lm_head.weight: tie_word_embeddings is set; llama.cpp reuses token_embd, not written");
      continue;
    }
    RZ_CHECK(t.shape == exp->shape, "%s: shape %s, but config.json implies %s", t.name.c_str(),
             shape_str(t.shape).c_str(), shape_str(exp->shape).c_str());

    ExportTensorReport r;
    r.hf_name = t.name;
    r.gguf_name = gname;
    const int64_t d_out = t.shape.size() == 2 ? t.shape[0] : 1, d_in = t.shape.back();
    r.params = d_out * d_in;
    // llama.cpp's `llama` graph applies rope to adjacent pairs: permute q/k rows (exact).
    std::vector<int64_t> src_row;
    if (h.arch == "llama" && exp->rope_heads > 0) {
      src_row = rope_interleave_rows(exp->rope_heads, h.head_dim);
      r.note = "rows permuted from HF rotate-half to llama.cpp interleaved rope order";
    }
    auto row_of = [&](int64_t dst) { return src_row.empty() ? dst : src_row[size_t(dst)]; };

    std::vector<int64_t> ne = {d_in};
    if (t.shape.size() == 2) ne.push_back(d_out);
    std::vector<uint8_t> bytes;
    if (t.codes) {
      RZ_CHECK(t.shape.size() == 2, "%s: integer codes given for a 1-D tensor", t.name.c_str());
      RZ_CHECK(t.scales && t.group > 0 && d_in % t.group == 0,
               "%s: group size %d must divide the row length %lld (and scales must be given)", t.name.c_str(), t.group,
               (long long)d_in);
      const int64_t gpr = d_in / t.group;
      if (!t.row_bits.empty()) {
        RZ_CHECK(int64_t(t.row_bits.size()) == d_out, "%s: %zu row kinds for %lld rows", t.name.c_str(),
                 t.row_bits.size(), (long long)d_out);
        for (int64_t row = 0; row < d_out; ++row) {
          int b = t.row_bits[size_t(row)];
          RZ_CHECK(b == 2 || b == 4 || b == 8, "%s: row %lld: kind %d bits (2, 4 or 8)", t.name.c_str(),
                   (long long)row, b);
          const int m = b == 2 ? 1 : b == 4 ? 7 : 127;
          for (int64_t k = 0; k < d_in; ++k) {
            int q = t.codes[row * d_in + k];
            RZ_CHECK(q >= -m && q <= m, "%s: row %lld is declared %d-bit but holds the code %d", t.name.c_str(),
                     (long long)row, b, q);
          }
        }
      }
      CodeStats st = code_stats(t.codes, t.scales, d_out, d_in, t.group);
      TypeChoice c = choose_gguf_type(t.name, st, d_in, t.group, opt.ternary_type);
      r.layout = layout_name(t, st, d_out);
      // Mixed rows: a GGUF tensor has one type, so the ternary rows take the int4 rows' Q4_0
      // (exact, but 4.5 bits per weight where TQ2_0 / TQ1_0 would spend 2.06 / 1.69).
      int64_t n_tern = 0, n_wide = 0;
      for (uint8_t b : t.row_bits) (b == 2 ? n_tern : n_wide)++;
      if (n_tern > 0 && n_wide > 0 && c.type == GgmlType::kQ4_0) {
        c.widened = true;
        c.reason = strfmt("mixed rows G=%d: a GGUF tensor has one type; Q4_0 holds the %lld int4 rows and the %lld "
                          "ternary rows exactly, the ternary rows at 4.5 bits per weight instead of %s's %.2f",
                          t.group, (long long)n_wide, (long long)n_tern, ggml_type_name(opt.ternary_type),
                          opt.ternary_type == GgmlType::kTQ1_0 ? 54 * 8 / 256.0 : 66 * 8 / 256.0);
      }
      r.type = c.type;
      r.widened = c.widened;
      if (!c.reason.empty()) r.note = r.note.empty() ? c.reason : c.reason + "; " + r.note;
      const uint64_t rb = gguf_row_bytes(c.type, d_in);
      bytes.resize(size_t(rb * uint64_t(d_out)));
      for (int64_t row = 0; row < d_out; ++row) {
        int64_t s = row_of(row);
        encode_row(c.type, t.codes + s * d_in, t.scales + s * gpr, d_in, t.group, bytes.data() + row * rb);
      }
    } else {
      RZ_CHECK(t.data, "%s: neither codes nor float data given", t.name.c_str());
      const bool vec = t.shape.size() == 1;
      r.type = vec ? GgmlType::kF32 : opt.float_matrix_type;
      r.layout = vec ? "norm (float)" : "float";
      const uint64_t rb = gguf_row_bytes(r.type, d_in);
      bytes.resize(size_t(rb * uint64_t(d_out)));
      int64_t changed = 0;
      for (int64_t row = 0; row < d_out; ++row) {
        const float* x = t.data + row_of(row) * d_in;
        encode_floats(r.type, x, d_in, bytes.data() + row * rb);
        if (r.type != GgmlType::kF32) {
          std::vector<float> back(static_cast<size_t>(d_in));
          dequantize_row(r.type, bytes.data() + row * rb, d_in, back.data());
          for (int64_t k = 0; k < d_in; ++k) changed += back[size_t(k)] != x[k];
        }
      }
      if (changed) {
        r.exact = false;
        std::string n = strfmt("%lld of %lld values rounded to %s", (long long)changed, (long long)r.params,
                               ggml_type_name(r.type));
        r.note = r.note.empty() ? n : n + "; " + r.note;
      }
    }
    r.bytes = bytes.size();
    rep->params += r.params;
    rep->tensor_bytes += r.bytes;
    w.add_tensor(gname, r.type, ne, std::move(bytes));
    rep->tensors.push_back(std::move(r));
  }
  if (!h.rope_factors.empty()) {
    ExportTensorReport r;
    r.hf_name = "(rope_scaling)";
    r.gguf_name = "rope_freqs.weight";
    r.layout = "llama3 rope factors";
    r.params = int64_t(h.rope_factors.size());
    r.note = "llama3 rope scaling: frequency i divided by factor i (llama.cpp's rope_freqs)";
    std::vector<uint8_t> bytes(h.rope_factors.size() * 4);
    encode_floats(GgmlType::kF32, h.rope_factors.data(), int64_t(h.rope_factors.size()), bytes.data());
    r.bytes = bytes.size();
    rep->tensor_bytes += r.bytes;
    w.add_tensor(r.gguf_name, GgmlType::kF32, {int64_t(h.rope_factors.size())}, std::move(bytes));
    rep->tensors.push_back(std::move(r));
  }
  // general.file_type (llama_ftype): the type holding most matrix bytes, as llama.cpp's
  // converter records its output type; without it llama.cpp prints a "(guessed)" type.
  uint64_t best = 0;
  GgmlType main_type = GgmlType::kF32;
  for (GgmlType t : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ4_0, GgmlType::kQ8_0,
                     GgmlType::kTQ1_0, GgmlType::kTQ2_0}) {
    uint64_t b = 0;
    for (const auto& r : rep->tensors)
      if (r.type == t && r.layout != "norm (float)") b += r.bytes;
    if (b > best) best = b, main_type = t;
  }
  w.set("general.file_type", GgufValue::u32(llama_ftype_of(main_type)));
  return w;
}

ExportReport export_gguf(const std::string& path, const Json& config, const std::string& tokenizer_json,
                         const std::vector<ExportTensor>& tensors, const ExportOptions& opt) {
  ExportReport rep;
  rep.path = path;
  GgufWriter w = build_gguf(config, tokenizer_json, tensors, opt, &rep);
  w.write(path);
  return rep;
}

}  // namespace razor
