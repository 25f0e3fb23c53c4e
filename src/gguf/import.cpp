#include "gguf/import.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/half.h"
#include "core/tensor.h"
#include "gguf/blocks.h"
#include "gguf/export.h"
#include "gguf/import_meta.h"
#include "quant/quantize.h"

namespace razor {

namespace {

// Scale given to a group none of whose blocks has a non-zero code or a non-zero d: any positive
// fp16 reproduces its zeros; 2^-14 is the smallest normal one.
const float kFreeScale = 6.103515625e-05f;
const int kGroups[3] = {64, 128, 256};

bool is_block_type(uint32_t t) {
  return t == uint32_t(GgmlType::kQ4_0) || t == uint32_t(GgmlType::kQ8_0) || t == uint32_t(GgmlType::kTQ1_0) ||
         t == uint32_t(GgmlType::kTQ2_0);
}
bool is_float_type(uint32_t t) {
  return t == uint32_t(GgmlType::kF32) || t == uint32_t(GgmlType::kF16) || t == uint32_t(GgmlType::kBF16);
}
bool is_ternary_type(uint32_t t) { return t == uint32_t(GgmlType::kTQ1_0) || t == uint32_t(GgmlType::kTQ2_0); }

// One matrix of the model: where it lives in the GGUF and in the PackedModel.
struct Slot {
  std::string gguf, hf;
  const GgufTensorInfo* ti = nullptr;
  PackedMatrix* dst = nullptr;
  bool embed_like = false;    // token_embd / output: always int4
  int64_t d_out = 0, d_in = 0;
  std::vector<int64_t> perm;  // llama q/k: GGUF row r holds razor row perm[r]
  int exact_g = 0;            // largest G at which the blocks are razor integers (0: none)
  std::string why;            // why not exact (at the G that failed first)
};

// One decoded GGUF row: codes, per-block |d| and whether the block carries a non-zero value.
// A block with d < 0 has its codes negated (d * q = |d| * -q, exactly); a block with d = 0
// has its codes zeroed (its values are 0 either way).
struct RowBuf {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<uint8_t> live;
};

void decode_row(const GgufFile& f, const Slot& s, int64_t r, int64_t be, RowBuf& b) {
  const GgmlType type = GgmlType(s.ti->type);
  const uint64_t rb = gguf_row_bytes(type, s.d_in);
  decode_row_codes(type, s.ti->data + uint64_t(r) * rb, s.d_in, b.q.data(), b.d.data());
  const bool tern = is_ternary_type(s.ti->type);
  for (int64_t k = 0; k < s.d_in / be; ++k) {
    float& d = b.d[size_t(k)];
    int8_t* q = b.q.data() + k * be;
    RZ_CHECK(std::isfinite(d), "%s: tensor %s: row %lld, block %lld: the scale d is %g", f.source().c_str(),
             s.gguf.c_str(), (long long)r, (long long)k, double(d));
    bool any = false;
    for (int64_t j = 0; j < be; ++j) {
      RZ_CHECK(!tern || (q[j] >= -1 && q[j] <= 1),
               "%s: tensor %s: row %lld, weight %lld: the 2-bit field holds 3, which is not a trit (damaged file?)",
               f.source().c_str(), s.gguf.c_str(), (long long)r, (long long)(k * be + j));
      any = any || q[j] != 0;
    }
    if (d < 0) {
      for (int64_t j = 0; j < be; ++j) q[j] = int8_t(q[j] == -128 ? 127 : -q[j]);  // -128 never fits int4 anyway
      d = -d;
    }
    if (d == 0) {
      std::memset(q, 0, size_t(be));
      any = false;
    }
    b.live[size_t(k)] = any;
  }
}

// Scans a block tensor once: do the codes fit -7..7, and at which G do the live blocks of every
// group share one scale?
void scan_blocks(const GgufFile& f, Slot& s) {
  int64_t be = 0, bb = 0;
  ggml_type_size(s.ti->type, &be, &bb);
  RowBuf b{std::vector<int8_t>(size_t(s.d_in)), std::vector<float>(size_t(s.d_in / be)),
           std::vector<uint8_t>(size_t(s.d_in / be))};
  bool fits = true, agree[3] = {true, true, true};
  std::string why_fit, why_g[3];
  for (int gi = 0; gi < 3; ++gi)
    if (s.d_in % kGroups[gi] != 0) {
      agree[gi] = false;
      why_g[gi] = strfmt("the row length %lld is not a multiple of %d", (long long)s.d_in, kGroups[gi]);
    }
  for (int64_t r = 0; r < s.d_out && fits && (agree[0] || agree[1] || agree[2]); ++r) {
    decode_row(f, s, r, be, b);
    for (int64_t k = 0; k < s.d_in; ++k)
        if (b.q[size_t(k)] > 7 || b.q[size_t(k)] < -7) {
          fits = false;
          why_fit = strfmt("row %lld, weight %lld has the code %d (after the sign of d); razor's int4 grid is -7..7%s",
                           (long long)r, (long long)k, int(b.q[size_t(k)]),
                           s.ti->type == uint32_t(GgmlType::kQ4_0)
                               ? " (llama.cpp's Q4_0 quantizer gives the largest weight of each block the code -8)"
                               : "");
          break;
        }
    for (int gi = 0; gi < 3; ++gi) {
      const int64_t G = kGroups[gi];
      if (!agree[gi] || G <= be) continue;
      for (int64_t g = 0; g < s.d_in / G && agree[gi]; ++g) {
        float first = 0;
        for (int64_t k = g * G / be; k < (g + 1) * G / be; ++k) {
          if (!b.live[size_t(k)]) continue;
          if (first == 0) {
            first = b.d[size_t(k)];
          } else if (b.d[size_t(k)] != first) {
            agree[gi] = false;
            why_g[gi] = strfmt("block scales differ inside a %lld-weight group (row %lld, weights %lld..%lld: d = %g "
                               "and %g)",
                               (long long)G, (long long)r, (long long)(g * G), (long long)((g + 1) * G - 1),
                               double(first), double(b.d[size_t(k)]));
            break;
          }
        }
      }
    }
  }
  s.exact_g = 0;
  if (!fits) {
    s.why = why_fit;
    return;
  }
  for (int gi = 2; gi >= 0 && s.exact_g == 0; --gi)
    if (agree[gi]) s.exact_g = kGroups[gi];
  if (s.exact_g == 0) s.why = why_g[0];
}

std::string layout_str(const PackedDesc& d) {
  std::string ln = layout_name(d.layout);
  if (d.layout == PackedLayout::Mixed) ln += std::to_string(d.P);
  return ln + " G=" + std::to_string(d.G);
}

// The packed layout of exact codes [d_out, d_in] (see the header).
PackedDesc exact_desc(const Slot& s, const std::vector<int8_t>& codes, int G, bool ternary5) {
  PackedDesc d;
  d.G = G, d.d_out = s.d_out, d.d_in = s.d_in;
  d.layout = PackedLayout::Int4;
  if (s.embed_like) return d;
  std::vector<int64_t> wide;  // rows with a code outside -1..1
  for (int64_t r = 0; r < s.d_out; ++r)
    for (int64_t k = 0; k < s.d_in; ++k) {
      const int q = codes[size_t(r * s.d_in + k)];
      if (q > 1 || q < -1) {
        wide.push_back(r);
        break;
      }
    }
  if (wide.empty()) {
    d.layout = ternary5 ? PackedLayout::Ternary5 : PackedLayout::Ternary2;
    return d;
  }
  int64_t P = 0;
  for (int64_t r : wide) P = std::gcd(P, r);
  if (P >= 2 && P <= 1024 && int64_t(wide.size()) < s.d_out) {
    d.layout = PackedLayout::Mixed;
    d.P = int32_t(P);
  }
  return d;
}

void build_exact(const GgufFile& f, Slot& s, int G, bool ternary5, ImportTensorReport& r) {
  int64_t be = 0, bb = 0;
  ggml_type_size(s.ti->type, &be, &bb);
  const int64_t gpr = s.d_in / G;
  std::vector<int8_t> codes(size_t(s.d_out * s.d_in));
  std::vector<float> scales(size_t(s.d_out * gpr));
  RowBuf b{std::vector<int8_t>(size_t(s.d_in)), std::vector<float>(size_t(s.d_in / be)),
           std::vector<uint8_t>(size_t(s.d_in / be))};
  std::vector<float> ref(size_t(s.d_in));
  const GgmlType type = GgmlType(s.ti->type);
  const uint64_t rb = gguf_row_bytes(type, s.d_in);
  double max_err = 0;
  for (int64_t r = 0; r < s.d_out; ++r) {
    decode_row(f, s, r, be, b);
    const int64_t dst = s.perm.empty() ? r : s.perm[size_t(r)];
    int8_t* q = codes.data() + dst * s.d_in;
    float* sc = scales.data() + dst * gpr;
    std::memcpy(q, b.q.data(), size_t(s.d_in));
    for (int64_t g = 0; g < gpr; ++g) {
      const int64_t k0 = g * G / be, k1 = std::max(k0 + 1, (g + 1) * G / be);
      float scale = 0;
      for (int64_t k = k0; k < k1 && scale == 0; ++k)
        if (b.live[size_t(k)]) scale = b.d[size_t(k)];
      if (scale == 0) scale = b.d[size_t(k0)] > 0 ? b.d[size_t(k0)] : kFreeScale;  // no value to reproduce but 0
      sc[g] = scale;
    }
    // What llama.cpp computes for this row against razor's q * s: must be identical.
    dequantize_row(type, s.ti->data + uint64_t(r) * rb, s.d_in, ref.data());
    for (int64_t k = 0; k < s.d_in; ++k)
      max_err = std::max(max_err, std::fabs(double(float(q[k]) * sc[k / G]) - double(ref[size_t(k)])));
  }
  RZ_ASSERT_MSG(max_err == 0, "exact GGUF import changed a value");
  const PackedDesc d = exact_desc(s, codes, G, ternary5);
  *s.dst = pack_matrix(d, codes.data(), scales.data(), (f.source() + ": " + s.gguf).c_str());
  r.layout = layout_str(d);
}

void build_requantized(const GgufFile& f, Slot& s, const WeightLayout& l, bool ternary5, ImportTensorReport& r) {
  const GgmlType type = GgmlType(s.ti->type);
  const uint64_t rb = gguf_row_bytes(type, s.d_in);
  Tensor w = Tensor::empty(Shape{s.d_out, s.d_in});
  for (int64_t row = 0; row < s.d_out; ++row) {
    const int64_t dst = s.perm.empty() ? row : s.perm[size_t(row)];
    dequantize_row(type, s.ti->data + uint64_t(row) * rb, s.d_in, w.data() + dst * s.d_in);
  }
  const QuantizedWeight qw = quantize_weight(f.source() + ": " + s.gguf, w, l);
  double max_err = 0, se = 0, sw = 0;
  const int64_t gpr = s.d_in / l.group;
  for (int64_t row = 0; row < s.d_out; ++row)
    for (int64_t k = 0; k < s.d_in; ++k) {
      const double x = w.data()[row * s.d_in + k];
      const double y = float(qw.codes[size_t(row * s.d_in + k)]) * qw.scales[size_t(row * gpr + k / l.group)];
      max_err = std::max(max_err, std::fabs(y - x));
      se += (y - x) * (y - x);
      sw += x * x;
    }
  r.exact = false;
  r.max_abs_error = max_err;
  r.rel_rms_error = sw > 0 ? std::sqrt(se / sw) : (se > 0 ? INFINITY : 0.0);
  const PackedDesc d = packed_desc_for(l, s.d_out, s.d_in, ternary5, s.gguf);
  *s.dst = pack_matrix(d, qw.codes.data(), qw.scales.data(), (f.source() + ": " + s.gguf).c_str());
  r.layout = layout_str(d);
}

std::vector<float> read_floats(const GgufFile& f, const GgufTensorInfo& t, const char* what) {
  RZ_CHECK(is_float_type(t.type), "%s: tensor %s: type %s; razor reads %s as F32, F16 or BF16", f.source().c_str(),
           t.name.c_str(), ggml_type_name(t.type), what);
  std::vector<float> v(size_t(t.numel()));
  dequantize_row(GgmlType(t.type), t.data, t.numel(), v.data());
  return v;
}

}  // namespace

int ImportReport::n_requantized() const {
  int n = 0;
  for (const auto& t : tensors) n += !t.exact;
  return n;
}

std::string ImportReport::text() const {
  std::string s = strfmt("%-26s %-6s %-18s %-6s %12s %12s\n", "tensor", "gguf", "razor layout", "exact", "max |err|",
                         "rel RMS err");
  for (const auto& t : tensors)
    s += strfmt("%-26s %-6s %-18s %-6s %12.4g %12.4g\n", t.gguf_name.c_str(), ggml_type_name(t.gguf_type),
                t.layout.c_str(), t.exact ? "yes" : "NO", t.max_abs_error, t.rel_rms_error);
  const ImportTensorReport* worst = nullptr;
  int matrices = 0, norms = 0;
  for (const auto& t : tensors) {
    if (!t.note.empty()) s += "  " + t.gguf_name + ": " + t.note + "\n";
    if (t.layout == "f32") {
      ++norms;
      continue;
    }
    ++matrices;
    if (!t.exact && (!worst || t.rel_rms_error > worst->rel_rms_error)) worst = &t;
  }
  for (const auto& n : notes) s += "  " + n + "\n";
  s += strfmt("%s: arch %s, G = %d, %d matrices: %d exact, %d re-quantized", source.c_str(), arch.c_str(), group,
              matrices, matrices - n_requantized(), n_requantized());
  if (worst)
    s += strfmt(" (worst relative RMS error %.4g, %s)", worst->rel_rms_error, worst->gguf_name.c_str());
  s += strfmt("; %d norms f32\n", norms);
  return s;
}

PackedModel import_gguf(const GgufFile& f, const ImportOptions& opt, ImportReport* rep) {
  RZ_ASSERT(rep);
  const std::string& src = f.source();
  RZ_CHECK(opt.group == 0 || opt.group == 64 || opt.group == 128 || opt.group == 256,
           "--group: %d not supported by the packed kernels (64, 128 or 256)", opt.group);
  rep->source = src;
  const GgufTensorInfo& emb = f.tensor("token_embd.weight");
  RZ_CHECK(emb.ne.size() == 2, "%s: tensor token_embd.weight has %zu dimensions, expected 2", src.c_str(),
           emb.ne.size());
  const bool tied = f.find_tensor("output.weight") == nullptr;
  std::vector<float> rope_freqs;
  if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
    RZ_CHECK(rf->ne.size() == 1, "%s: tensor rope_freqs.weight has shape %s, expected 1-D", src.c_str(),
             shape_str(rf->ne).c_str());
    rope_freqs = read_floats(f, *rf, "rope factors");
  }
  PackedModel pm;
  pm.cfg = gguf_model_config(f, emb.ne[1], tied, rope_freqs);
  const ModelConfig& c = pm.cfg;
  rep->arch = c.model_type;
  if (c.rope_scaling.type == "llama3")
    rep->notes.push_back(strfmt("rope_freqs.weight: llama3 rope scaling, factor %g, low/high frequency factors %g / "
                                "%g, original context %lld",
                                c.rope_scaling.factor, c.rope_scaling.low_freq_factor, c.rope_scaling.high_freq_factor,
                                (long long)c.rope_scaling.original_max_position_embeddings));

  // The tensors a qwen3 / llama model has (nn/tensor_table.h), with their shapes; anything else
  // is refused.
  const int64_t D = c.head_dim, V = c.vocab_size;
  pm.layers.resize(size_t(c.num_hidden_layers));
  std::vector<Slot> slots;
  std::vector<std::pair<std::string, std::pair<std::vector<float>*, int64_t>>> norms;
  for (const TensorSpec& t : model_tensors(c)) {
    if (std::vector<float>* v = pm.norm_slot(t, src)) {
      norms.push_back({t.gguf, {v, t.shape[0]}});
      continue;
    }
    Slot s;
    s.gguf = t.gguf;
    s.hf = t.hf;
    s.dst = pm.matrix_slot(t, src);
    RZ_ASSERT(s.dst);
    s.d_out = t.shape[0], s.d_in = t.shape[1];
    s.embed_like = t.kind == TensorKind::Embedding || t.kind == TensorKind::Head;
    // llama.cpp's `llama` graph ropes adjacent pairs: the converter permuted q/k rows (gguf/export).
    if (c.model_type == "llama" && t.rope_heads > 0) s.perm = rope_interleave_rows(t.rope_heads, D);
    slots.push_back(std::move(s));
  }

  for (const GgufTensorInfo& t : f.tensors()) {
    bool known = t.name == "rope_freqs.weight";
    for (size_t i = 0; i < slots.size() && !known; ++i) known = slots[i].gguf == t.name;
    for (size_t i = 0; i < norms.size() && !known; ++i) known = norms[i].first == t.name;
    RZ_CHECK(known,
             "%s: tensor %s (%s %s) is not part of a %s model with the metadata's %lld layers; razor imports "
             "token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,%s ffn_norm, ffn_gate, ffn_up, "
             "ffn_down}, output_norm, output and rope_freqs",
             src.c_str(), t.name.c_str(), ggml_type_name(t.type), shape_str(t.ne).c_str(), c.model_type.c_str(),
             (long long)c.num_hidden_layers, c.qk_norm() ? " attn_q_norm, attn_k_norm," : "");
  }
  for (Slot& s : slots) {
    s.ti = f.find_tensor(s.gguf);
    RZ_CHECK(s.ti, "%s: tensor %s is missing", src.c_str(), s.gguf.c_str());
    RZ_CHECK(s.ti->ne == (std::vector<int64_t>{s.d_in, s.d_out}),
             "%s: tensor %s has ne %s, the metadata implies [%lld, %lld] (row length, rows)", src.c_str(),
             s.gguf.c_str(), shape_str(s.ti->ne).c_str(), (long long)s.d_in, (long long)s.d_out);
    RZ_CHECK(is_block_type(s.ti->type) || is_float_type(s.ti->type),
             "%s: tensor %s: type %s is not importable; razor imports TQ2_0, TQ1_0 and Q4_0 (exact where the blocks "
             "are razor integers), Q8_0, F16, BF16 and F32 (re-quantized); convert other types with llama-quantize "
             "first",
             src.c_str(), s.gguf.c_str(), ggml_type_name(s.ti->type));
  }
  for (auto& n : norms) {
    const GgufTensorInfo* t = f.find_tensor(n.first);
    RZ_CHECK(t, "%s: tensor %s is missing", src.c_str(), n.first.c_str());
    RZ_CHECK(t->ne == std::vector<int64_t>{n.second.second}, "%s: tensor %s has shape %s, the metadata implies [%lld]",
             src.c_str(), n.first.c_str(), shape_str(t->ne).c_str(), (long long)n.second.second);
    *n.second.first = read_floats(f, *t, "norm weights");
  }

  // Tokenizer first: cheap, and a file razor cannot tokenize is refused before the weights.
  const GgufTokenizer tok = gguf_tokenizer(f);
  RZ_CHECK(tok.n_tokens <= V, "%s: %lld tokens but token_embd has %lld rows", src.c_str(), (long long)tok.n_tokens,
           (long long)V);
  pm.tokenizer_json = tok.tokenizer_json;
  pm.tokenizer_config_json = tok.tokenizer_config_json;
  rep->notes.push_back(tok.summary());

  // One G for the model.
  bool any_requant = false;
  int G = 256;
  for (Slot& s : slots) {
    if (is_block_type(s.ti->type)) scan_blocks(f, s);
    if (s.exact_g > 0) G = std::min(G, s.exact_g);
    else any_requant = true;
  }
  if (any_requant) G = std::min(G, 64);
  if (opt.group) G = opt.group;
  for (const Slot& s : slots)
    RZ_CHECK(s.d_in % G == 0, "%s: tensor %s: the row length %lld is not a multiple of G = %d%s", src.c_str(),
             s.gguf.c_str(), (long long)s.d_in, G, opt.group ? " (--group)" : "");
  rep->group = G;

  bool any5 = false;
  int64_t lin_params = 0, lin4_params = 0;
  std::string uniform;  // the one layout of every linear, if there is one
  bool same = true;
  for (Slot& s : slots) {
    ImportTensorReport r;
    r.gguf_name = s.gguf;
    r.hf_name = s.hf;
    r.gguf_type = s.ti->type;
    r.params = s.d_out * s.d_in;
    const bool five = opt.ternary == ImportOptions::Ternary::k5trit ||
                      (opt.ternary == ImportOptions::Ternary::kAuto && s.ti->type == uint32_t(GgmlType::kTQ1_0));
    if (s.exact_g >= G) {
      build_exact(f, s, G, five, r);
    } else {
      if (is_float_type(s.ti->type)) r.note = strfmt("%s holds floats, not razor integers", ggml_type_name(s.ti->type));
      else if (s.exact_g > 0) r.note = strfmt("exact only at G = %d, below --group %d", s.exact_g, G);
      else r.note = s.why;
      const bool tern = opt.requant_ternary && !s.embed_like;
      const WeightLayout l = tern ? WeightLayout::ternary(G, opt.beta) : WeightLayout::uniform(4, G);
      build_requantized(f, s, l, opt.ternary == ImportOptions::Ternary::k5trit, r);
      r.note = "re-quantized to " + l.str() + ": " + r.note;
    }
    if (!s.embed_like) {
      const PackedDesc& d = s.dst->desc;
      any5 = any5 || d.layout == PackedLayout::Ternary5;
      int64_t rows4 = 0;
      for (int64_t i = 0; i < d.d_out; ++i) rows4 += s.dst->row_kind(i) == RowKind::Int4;
      lin_params += r.params;
      lin4_params += rows4 * d.d_in;
      const std::string ln = layout_str(d);
      if (uniform.empty()) uniform = ln;
      same = same && uniform == ln;
    }
    rep->tensors.push_back(std::move(r));
  }
  for (const auto& n : norms) {
    ImportTensorReport r;
    r.gguf_name = n.first;
    r.hf_name = hf_tensor_name(n.first);
    r.gguf_type = f.find_tensor(n.first)->type;
    r.layout = "f32";
    r.params = n.second.second;
    // F16 / BF16 norms widen to f32 exactly.
    rep->tensors.push_back(std::move(r));
  }

  pm.opt.plan.group = G;
  pm.opt.plan.beta = opt.beta;
  pm.opt.ternary5 = any5;
  const PackedDesc& first = pm.layers.empty() ? pm.embed.desc : pm.layers[0].q.desc;
  if (same && !pm.layers.empty()) {
    pm.opt.plan.rho = first.layout == PackedLayout::Int4    ? 1.0
                      : first.layout == PackedLayout::Mixed ? 1.0 / double(first.P)
                                                            : 0.0;
  } else {
    pm.opt.plan.rho = lin_params > 0 ? double(lin4_params) / double(lin_params) : 1.0;
    rep->notes.push_back(strfmt("the linears have different layouts; layout.rho records the 4-bit share %.4f",
                                pm.opt.plan.rho));
  }
  return pm;
}

}  // namespace razor
