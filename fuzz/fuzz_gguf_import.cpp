// Fuzz target: GGUF import (gguf/import, gguf/import_meta) of an arbitrary image: the
// reader, the config and tokenizer rebuild, the block scan, the exact and the re-quantizing
// paths and the report. Any input must end in a PackedModel or razor::Error.
// Seeds (made by razor's exporter): one-layer models with a byte-level BPE tokenizer (256 bytes,
// one merge, two added tokens; vocabulary 260 rows), hidden 64, one head of 64, FFN 256:
//   qwen3: int4 embedding (Q4_0), mixed rows P = 2 (Q4_0), ternary G = 256 down_proj (TQ2_0);
//   llama: the same with TQ1_0, an F16 gate_proj (re-quantized) and llama3 rope_freqs.
#include "fuzz/fuzz_common.h"
#include "gguf/import.h"
#include "gguf/gguf.h"
#include "gguf/export.h"
#include "io/json.h"
#include "io/tokenizer.h"
#include "tests/gguf_test_util.h"

using namespace razor;

namespace {

std::string tokenizer_json() {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab.set_unchecked(byte_level_char(uint8_t(b)), int64_t(b));
  vocab.set_unchecked("ab", int64_t(256));
  return std::string(R"({"added_tokens": [{"id": 257, "content": "<|endoftext|>", "special": true},
    {"id": 258, "content": "<tool>", "special": false}],
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "model": {"type": "BPE", "merges": ["a b"], "vocab": )") +
         vocab.dump() + "}}";
}

std::vector<uint8_t> model_image(const std::string& arch, GgmlType ternary, bool float_gate) {
  Json c = gguf_test::one_layer_config(arch, 64, 256, 1, 1, 64);
  c.set("vocab_size", 260);
  c.set("max_position_embeddings", 64);
  c.set("tie_word_embeddings", true);
  c.set("bos_token_id", 257);
  c.set("eos_token_id", 257);
  if (arch == "llama") {
    Json rs = Json::object();
    rs.set("rope_type", "llama3");
    rs.set("factor", 8.0);
    rs.set("low_freq_factor", 1.0);
    rs.set("high_freq_factor", 4.0);
    rs.set("original_max_position_embeddings", 8192);
    c.set("rope_scaling", rs);
  }
  struct M {
    const char* name;
    int64_t d_out, d_in;
    int group, kind;  // kind: 4 int4, 2 ternary, 3 mixed rows P = 2
  };
  const M mats[] = {{"model.embed_tokens.weight", 260, 64, 64, 4},         {"model.layers.0.self_attn.q_proj.weight", 64, 64, 64, 3},
                    {"model.layers.0.self_attn.k_proj.weight", 64, 64, 64, 3}, {"model.layers.0.self_attn.v_proj.weight", 64, 64, 64, 3},
                    {"model.layers.0.self_attn.o_proj.weight", 64, 64, 64, 3}, {"model.layers.0.mlp.gate_proj.weight", 256, 64, 64, 3},
                    {"model.layers.0.mlp.up_proj.weight", 256, 64, 64, 3},     {"model.layers.0.mlp.down_proj.weight", 64, 256, 256, 2}};
  std::vector<std::vector<int8_t>> codes;
  std::vector<std::vector<float>> scales, floats;
  std::vector<ExportTensor> ts;
  codes.reserve(8), scales.reserve(8), floats.reserve(8);
  for (const M& m : mats) {
    std::vector<int8_t> q(static_cast<size_t>(m.d_out * m.d_in));
    std::vector<uint8_t> bits(static_cast<size_t>(m.d_out));
    for (int64_t r = 0; r < m.d_out; ++r) {
      const int b = m.kind == 3 ? (r % 2 == 0 ? 4 : 2) : m.kind;
      const int mx = b == 4 ? 7 : 1;
      bits[size_t(r)] = uint8_t(b);
      for (int64_t k = 0; k < m.d_in; ++k)
        q[size_t(r * m.d_in + k)] = int8_t(int((r * 7 + k * 3 + k / 5) % (2 * mx + 1)) - mx);
    }
    std::vector<float> s(static_cast<size_t>(m.d_out * (m.d_in / m.group)));
    for (size_t i = 0; i < s.size(); ++i) s[i] = 1.0f / float(1 << (3 + i % 9));
    codes.push_back(std::move(q));
    scales.push_back(std::move(s));
    ExportTensor t;
    t.name = m.name;
    t.shape = {m.d_out, m.d_in};
    if (float_gate && m.d_out == 256 && std::strstr(m.name, "gate")) {
      std::vector<float> w(codes.back().size());
      for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * float(int(i * 37 % 101) - 50);
      floats.push_back(std::move(w));
      t.data = floats.back().data();
    } else {
      t.codes = codes.back().data();
      t.scales = scales.back().data();
      t.group = m.group;
      t.row_bits = bits;
    }
    ts.push_back(t);
  }
  static const std::vector<float> ones(64, 1.0f);
  gguf_test::add_one_layer_norms(ts, arch, 64, 64, ones.data());
  ExportOptions opt;
  opt.ternary_type = ternary;
  opt.float_matrix_type = GgmlType::kF16;
  ExportReport rep;
  return build_gguf(c, tokenizer_json(), ts, opt, &rep).serialize();
}

void make_seeds(const std::string& dir) {
  auto put = [&](const char* name, const std::vector<uint8_t>& b) {
    razor_fuzz::put_file(dir + "/" + name, b.data(), b.size());
  };
  put("qwen3_q4_mixed_tq2.gguf", model_image("qwen3", GgmlType::kTQ2_0, false));
  put("llama_tq1_f16_rope.gguf", model_image("llama", GgmlType::kTQ1_0, true));
}

}  // namespace

RAZOR_FUZZ_INIT(make_seeds)

RAZOR_FUZZ_ONE_INPUT {
  const GgufFile f = GgufFile::parse(data, size, "fuzz.gguf");
  ImportReport rep;
  const PackedModel pm = import_gguf(f, {}, &rep);
  (void)rep.text();
  (void)pm.packed_bytes();
}
