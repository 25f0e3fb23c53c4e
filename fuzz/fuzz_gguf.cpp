// Fuzz target: the GGUF reader (GgufFile::parse: header, metadata, tensor table, offsets) on an
// arbitrary image, then every tensor of a type razor decodes dequantized row by row and, for
// block types, decoded to codes and block scales (any bytes must decode without a fault).
// Seeds (made by razor): a one-layer qwen3 model from the exporter (TQ2_0, Q4_0, F32 norms,
// gpt2 tokenizer metadata), a llama one with ternary G = 64 widened to Q4_0, and a file with every metadata
// value type and one tensor of each type razor decodes (TQ2_0, TQ1_0, Q4_0, Q8_0, F16, BF16, F32).
#include "fuzz/fuzz_common.h"
#include "gguf/gguf.h"
#include "gguf/blocks.h"
#include "gguf/export.h"
#include "tests/gguf_test_util.h"

using namespace razor;

namespace {

const char* kTokenizer = R"({
  "added_tokens": [{"id": 6, "content": "<|im_end|>", "special": true}],
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120a": 4, "c": 5},
            "merges": ["a b", "\u0120 a"]}
})";

// A one-layer model exported by razor (about 24 KB): hidden 256 (one TQ block per row), one head
// of 32, FFN 32; codes cycle through the grid, scales are powers of two. `group` applies where
// it divides the row (else 32: Q4_0 / Q8_0 for the 32-wide o_proj and down_proj rows).
std::vector<uint8_t> model_image(const std::string& arch, int group, int max_code, GgmlType ternary) {
  Json c = gguf_test::one_layer_config(arch, 256, 32, 1, 1, 32);
  c.set("vocab_size", 8);
  c.set("tie_word_embeddings", true);
  c.set("eos_token_id", 6);
  struct M {
    const char* name;
    int64_t d_out, d_in;
  };
  const M mats[] = {{"model.embed_tokens.weight", 8, 256},          {"model.layers.0.self_attn.q_proj.weight", 32, 256},
                    {"model.layers.0.self_attn.k_proj.weight", 32, 256},  {"model.layers.0.self_attn.v_proj.weight", 32, 256},
                    {"model.layers.0.self_attn.o_proj.weight", 256, 32},  {"model.layers.0.mlp.gate_proj.weight", 32, 256},
                    {"model.layers.0.mlp.up_proj.weight", 32, 256},       {"model.layers.0.mlp.down_proj.weight", 256, 32}};
  std::vector<std::vector<int8_t>> codes;
  std::vector<std::vector<float>> scales;
  std::vector<ExportTensor> ts;
  codes.reserve(8);
  scales.reserve(8);
  for (const M& m : mats) {
    const bool embed = m.d_out == 8;
    const int mx = embed ? 7 : max_code;
    std::vector<int8_t> q(static_cast<size_t>(m.d_out * m.d_in));
    for (size_t i = 0; i < q.size(); ++i) q[i] = int8_t(int((i * 7 + i / 5) % size_t(2 * mx + 1)) - mx);
    const int g = embed ? 32 : m.d_in % group == 0 ? group : 32;
    std::vector<float> s(static_cast<size_t>(m.d_out * (m.d_in / g)));
    for (size_t i = 0; i < s.size(); ++i) s[i] = 1.0f / float(1 << (i % 12));
    codes.push_back(std::move(q));
    scales.push_back(std::move(s));
    ExportTensor t;
    t.name = m.name;
    t.shape = {m.d_out, m.d_in};
    t.codes = codes.back().data();
    t.scales = scales.back().data();
    t.group = g;
    ts.push_back(t);
  }
  static const std::vector<float> ones(256, 1.0f);
  gguf_test::add_one_layer_norms(ts, arch, 256, 32, ones.data());
  ExportOptions opt;
  opt.ternary_type = ternary;
  ExportReport rep;
  return build_gguf(c, kTokenizer, ts, opt, &rep).serialize();
}

// One small tensor of every type razor decodes (razor's block encoders), every metadata type.
std::vector<uint8_t> types_image() {
  GgufWriter w(64);
  w.set("u8", GgufValue::u8(7));
  w.set("i16", GgufValue::i16(-3));
  w.set("u64", GgufValue::u64(1ull << 40));
  w.set("f64", GgufValue::f64(0.5));
  w.set("b", GgufValue::boolean(true));
  w.set("s", GgufValue::str("text"));
  w.set("ai", GgufValue::array_ints(GgufValueType::kInt32, {1, -2, 3}));
  w.set("af", GgufValue::array_floats(GgufValueType::kFloat32, {0.25, 1.5}));
  w.set("as", GgufValue::array_strings({"x", "", "yz"}));
  std::vector<int8_t> q(256);
  for (size_t i = 0; i < q.size(); ++i) q[i] = int8_t(int(i % 3) - 1);
  std::vector<float> s(8, 0.5f);
  const GgmlType types[] = {GgmlType::kTQ2_0, GgmlType::kTQ1_0, GgmlType::kQ4_0, GgmlType::kQ8_0,
                            GgmlType::kF16,   GgmlType::kBF16,  GgmlType::kF32};
  for (GgmlType t : types) {
    const int64_t n = t == GgmlType::kTQ2_0 || t == GgmlType::kTQ1_0 ? 256 : 32;
    std::vector<uint8_t> b(gguf_row_bytes(t, n));
    encode_row(t, q.data(), s.data(), n, int(n), b.data());
    w.add_tensor(ggml_type_name(t), t, {n}, b);
  }
  return w.serialize();
}

void make_seeds(const std::string& dir) {
  auto put = [&](const char* name, const std::vector<uint8_t>& b) {
    razor_fuzz::put_file(dir + "/" + name, b.data(), b.size());
  };
  put("qwen3_tq2_q4.gguf", model_image("qwen3", 256, 1, GgmlType::kTQ2_0));
  put("llama_q4_0_widened.gguf", model_image("llama", 64, 1, GgmlType::kTQ2_0));
  put("all_types_align64.gguf", types_image());
}

}  // namespace

RAZOR_FUZZ_INIT(make_seeds)

RAZOR_FUZZ_ONE_INPUT {
  GgufFile f = GgufFile::parse(data, size, "fuzz.gguf");
  for (const auto& kv : f.metadata()) (void)kv.second.str_short();
  for (const GgufTensorInfo& t : f.tensors()) {
    if (!gguf_type_supported(t.type) || t.ne.empty()) continue;
    const GgmlType type = GgmlType(t.type);
    const int64_t n = t.ne[0], rows = t.rows();
    if (n > (1 << 20)) continue;
    int64_t be = 1, bb = 0;
    ggml_type_size(t.type, &be, &bb);
    const uint64_t rb = gguf_row_bytes(type, n);
    std::vector<float> x(static_cast<size_t>(n)), d(static_cast<size_t>(n / be + 1));
    std::vector<int8_t> q(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows && r < 64; ++r) {
      dequantize_row(type, t.data + uint64_t(r) * rb, n, x.data());
      if (be > 1) decode_row_codes(type, t.data + uint64_t(r) * rb, n, q.data(), d.data());
    }
  }
}
