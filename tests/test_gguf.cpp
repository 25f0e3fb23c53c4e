// GGUF: block encodings against hand-computed bytes, encode/decode round trips, a synthetic
// qwen3 / llama model exported and read back exactly, the reader against broken files, and
// packed models (.razor) exported and read back with identical integers and scales.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "gguf/gguf.h"
#include "gguf/blocks.h"
#include "gguf/export.h"
#include "gguf/export_packed.h"
#include "infer/pack.h"
#include "gguf_test_util.h"

using namespace razor;
using namespace razor::gguf_test;

namespace {

std::string tmp_path(const char* name) {
  return std::string("/tmp/razor_test_") + std::to_string(getpid()) + "_" + name;
}

std::vector<uint8_t> bytes_of(const void* p, size_t n) {
  return std::vector<uint8_t>(static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
}

// A hand-computed block: its bytes are `want`, and decoding it gives back the codes q and the
// scale d_want exactly.
template <class Block, size_t N>
void check_block(const Block& b, const std::vector<uint8_t>& want, void (*decode)(const Block&, int8_t*, float*),
                 const int8_t (&q)[N], float d_want) {
  CHECK(bytes_of(&b, sizeof b) == want);
  int8_t back[N];
  float d = 0;
  decode(b, back, &d);
  CHECK(d == d_want);
  CHECK(std::memcmp(back, q, N) == 0);
}

template <class T>
void put_at(std::vector<uint8_t>& b, size_t off, T v) {
  REQUIRE(off + sizeof v <= b.size());
  std::memcpy(b.data() + off, &v, sizeof v);
}

// Error message of parsing `b`, or "" when it parses.
std::string parse_error(const std::vector<uint8_t>& b) {
  try {
    GgufFile::parse(b.data(), b.size(), "broken.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

size_t find_bytes(const std::vector<uint8_t>& b, const std::string& s) {
  for (size_t i = 0; i + s.size() <= b.size(); ++i)
    if (std::memcmp(b.data() + i, s.data(), s.size()) == 0) return i;
  FAIL("pattern not found: " << s);
  return 0;
}

// Random razor integers with fp16 scales: `max_code` 1 (ternary), 7 (int4) or 127.
struct QuantMatrix {
  int64_t d_out = 0, d_in = 0;
  int group = 0;
  std::vector<int8_t> codes;
  std::vector<float> scales;
  std::vector<uint8_t> row_bits;
};
QuantMatrix random_matrix(Rng& rng, int64_t d_out, int64_t d_in, int group, std::vector<uint8_t> row_bits) {
  QuantMatrix m;
  m.d_out = d_out;
  m.d_in = d_in;
  m.group = group;
  m.row_bits = row_bits;
  m.codes.resize(size_t(d_out * d_in));
  m.scales.resize(size_t(d_out * d_in / group));
  for (int64_t r = 0; r < d_out; ++r) {
    int b = row_bits[size_t(r)];
    int mx = b == 2 ? 1 : b == 4 ? 7 : 127;
    for (int64_t k = 0; k < d_in; ++k) m.codes[size_t(r * d_in + k)] = int8_t(int(rng.below(2 * mx + 1)) - mx);
  }
  for (float& s : m.scales) s = round_to_f16(0.001f + 0.05f * rng.uniform());
  return m;
}
std::vector<uint8_t> rows_of(int64_t n, int bits) { return std::vector<uint8_t>(size_t(n), uint8_t(bits)); }


// A tiny qwen3 / llama model covering every layout the exporter decides between.
struct TestModel {
  Json config;
  std::vector<QuantMatrix> mats;
  std::vector<std::vector<float>> floats;
  std::vector<ExportTensor> tensors;
};

TestModel make_model(const std::string& arch, bool tied) {
  TestModel m;
  Json c = one_layer_config(arch, 256, 512, 4, 2, 64);
  c.set("max_position_embeddings", 1024);
  c.set("rope_theta", 1000000.0);
  c.set("rms_norm_eps", 1e-6);
  c.set("vocab_size", 32);
  c.set("tie_word_embeddings", tied);
  c.set("bos_token_id", 6);
  c.set("eos_token_id", 6);
  m.config = c;
  Rng rng(1234);
  struct Spec {
    const char* name;
    int64_t d_out, d_in;
    int group;
    std::vector<uint8_t> bits;
  };
  std::vector<uint8_t> mixed(512);
  for (size_t i = 0; i < mixed.size(); ++i) mixed[i] = i % 8 == 0 ? 4 : 2;  // rho = 1/8
  std::vector<uint8_t> v_mixed(128);
  for (size_t i = 0; i < v_mixed.size(); ++i) v_mixed[i] = i % 2 == 0 ? 4 : 2;
  std::vector<Spec> specs = {
      {"model.embed_tokens.weight", 32, 256, 64, rows_of(32, 4)},                       // Q4_0
      {"model.layers.0.self_attn.q_proj.weight", 256, 256, 256, rows_of(256, 2)},      // TQ2_0
      {"model.layers.0.self_attn.k_proj.weight", 128, 256, 64, rows_of(128, 2)},       // Q4_0 (widened)
      {"model.layers.0.self_attn.v_proj.weight", 128, 256, 64, v_mixed},               // Q4_0 (mixed)
      {"model.layers.0.self_attn.o_proj.weight", 256, 256, 32, rows_of(256, 8)},       // Q8_0
      {"model.layers.0.mlp.gate_proj.weight", 512, 256, 16, rows_of(512, 2)},          // F16 (widened)
      {"model.layers.0.mlp.up_proj.weight", 512, 256, 16, mixed},                      // F32 (widened)
      {"model.layers.0.mlp.down_proj.weight", 256, 512, 512, rows_of(256, 2)},         // TQ2_0, G = 512
  };
  if (!tied) specs.push_back({"lm_head.weight", 32, 256, 64, rows_of(32, 4)});
  m.mats.reserve(specs.size());
  for (const Spec& s : specs) m.mats.push_back(random_matrix(rng, s.d_out, s.d_in, s.group, s.bits));
  for (size_t i = 0; i < specs.size(); ++i) {
    ExportTensor t;
    t.name = specs[i].name;
    t.shape = {specs[i].d_out, specs[i].d_in};
    t.codes = m.mats[i].codes.data();
    t.scales = m.mats[i].scales.data();
    t.group = specs[i].group;
    t.row_bits = m.mats[i].row_bits;
    m.tensors.push_back(t);
  }
  std::vector<std::pair<std::string, int64_t>> norms = {{"model.layers.0.input_layernorm.weight", 256},
                                                        {"model.layers.0.post_attention_layernorm.weight", 256},
                                                        {"model.norm.weight", 256}};
  if (arch == "qwen3") {
    norms.push_back({"model.layers.0.self_attn.q_norm.weight", 64});
    norms.push_back({"model.layers.0.self_attn.k_norm.weight", 64});
  }
  m.floats.reserve(norms.size());
  for (const auto& n : norms) {
    std::vector<float> v(size_t(n.second));
    for (float& x : v) x = 1.0f + 0.1f * rng.normal();
    m.floats.push_back(v);
    ExportTensor t;
    t.name = n.first;
    t.shape = {n.second};
    t.data = m.floats.back().data();
    m.tensors.push_back(t);
  }
  return m;
}

// Reads a tensor back into razor form and checks codes and scales against the source matrix
// (rows through `src_row`), or the products q*s for the float types.
void check_tensor_exact(const GgufTensorInfo& ti, const QuantMatrix& m, const std::vector<int64_t>& src_row) {
  CAPTURE(ti.name);
  REQUIRE(ti.ne.size() == 2);
  REQUIRE(ti.ne[0] == m.d_in);
  REQUIRE(ti.ne[1] == m.d_out);
  const GgmlType type = GgmlType(ti.type);
  const uint64_t rb = gguf_row_bytes(type, m.d_in);
  REQUIRE(ti.nbytes == rb * uint64_t(m.d_out));
  int64_t be = 0, bb = 0;
  REQUIRE(ggml_type_size(ti.type, &be, &bb));
  std::vector<int8_t> q(size_t(m.d_in));
  std::vector<float> d(size_t(m.d_in / be)), f(size_t(m.d_in));
  int64_t bad = 0;
  for (int64_t r = 0; r < m.d_out; ++r) {
    const int64_t s = src_row.empty() ? r : src_row[size_t(r)];
    const int8_t* want_q = m.codes.data() + s * m.d_in;
    const float* want_s = m.scales.data() + s * (m.d_in / m.group);
    if (be > 1) {
      decode_row_codes(type, ti.data + r * rb, m.d_in, q.data(), d.data());
      for (int64_t k = 0; k < m.d_in; ++k) bad += q[size_t(k)] != want_q[k];
      for (int64_t b = 0; b < m.d_in / be; ++b) bad += d[size_t(b)] != want_s[b * be / m.group];
    } else {
      dequantize_row(type, ti.data + r * rb, m.d_in, f.data());
      for (int64_t k = 0; k < m.d_in; ++k) bad += f[size_t(k)] != float(want_q[k]) * want_s[k / m.group];
    }
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_SUITE("gguf") {
  TEST_CASE("Q4_0 block: hand-computed bytes") {
    // Weight j sits in the low nibble of byte j, weight j + 16 in the high nibble; nibble =
    // q + 8. d = 0.25 is fp16 0x3400, stored little-endian first.
    int8_t q[32] = {0};
    const int8_t lo[8] = {-7, -1, 0, 1, 7, 3, -4, 2}, hi[8] = {7, 6, 5, 4, -3, -2, -1, 0};
    for (int j = 0; j < 8; ++j) q[j] = lo[j], q[16 + j] = hi[j];
    BlockQ4_0 b;
    encode_q4_0(q, 0.25f, &b);
    const std::vector<uint8_t> want = {0x00, 0x34,
                                       0xF1,  // 1 | 15 << 4
                                       0xE7,  // 7 | 14 << 4
                                       0xD8, 0xC9, 0x5F, 0x6B, 0x74, 0x8A,
                                       0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};  // zeros: 8 | 8 << 4
    check_block(b, want, decode_q4_0, q, 0.25f);
    // llama.cpp dequantizes (nibble - 8) * d: weight 0 is -7 * 0.25.
    float f[32];
    dequantize_row(GgmlType::kQ4_0, want.data(), 32, f);
    CHECK(f[0] == -1.75f);
    CHECK(f[16] == 1.75f);
    CHECK(f[20] == -0.75f);
  }

  TEST_CASE("Q8_0 block: hand-computed bytes") {
    int8_t q[32];
    for (int k = 0; k < 32; ++k) q[k] = int8_t(k - 16);
    q[0] = -128;
    q[31] = 127;
    BlockQ8_0 b;
    encode_q8_0(q, 1.5f, &b);  // fp16 1.5 = 0x3E00
    std::vector<uint8_t> got = bytes_of(&b, sizeof b);
    CHECK(got[0] == 0x00);
    CHECK(got[1] == 0x3E);
    CHECK(got[2] == 0x80);   // -128
    CHECK(got[3] == 0xF1);   // -15
    CHECK(got[18] == 0x00);  // weight 16: 0
    CHECK(got[33] == 0x7F);  // 127
    float f[32];
    dequantize_row(GgmlType::kQ8_0, got.data(), 32, f);
    CHECK(f[0] == -192.0f);
    CHECK(f[31] == 190.5f);
  }

  TEST_CASE("TQ2_0 block: hand-computed bytes") {
    // Byte c*32 + m holds weights c*128 + n*32 + m in bits 2n..2n+1, as q + 1.
    int8_t q[256] = {0};
    q[0] = 1, q[32] = -1, q[64] = 1, q[96] = 0;  // byte 0: 2 | 0<<2 | 2<<4 | 1<<6 = 0x62
    q[128 + 5] = -1;                             // byte 37: 0 | 1<<2 | 1<<4 | 1<<6 = 0x54
    q[255] = 1;                                  // c=1 n=3 m=31 -> byte 63: 1 | 1<<2 | 1<<4 | 2<<6 = 0x95
    BlockTQ2_0 b;
    encode_tq2_0(q, 1.0f, &b);
    std::vector<uint8_t> want(66, 0x55);  // all-zero weights: t = 1 in every 2-bit field
    want[0] = 0x62;
    want[37] = 0x54;
    want[63] = 0x95;
    want[64] = 0x00, want[65] = 0x3C;  // fp16 1.0
    check_block(b, want, decode_tq2_0, q, 1.0f);
  }

  TEST_CASE("TQ1_0 block: hand-computed bytes") {
    // 5 trits per byte, most significant first, stored as ceil(v * 256 / 243).
    // All-zero weights: t = 1, v = 11111_3 = 121 -> ceil(30976 / 243) = 128 = 0x80;
    // the 4-trit qh bytes: v = 11110_3 = 120 -> ceil(30720 / 243) = 127 = 0x7F.
    int8_t q[256] = {0};
    q[0] = 1;               // qs[0] trit 0 = 2: v = 21111_3 = 202 -> ceil(51712/243) = 213 = 0xD5
    q[131] = -1;            // 131 = 3 + 32*4: qs[3] trit 4 = 0: v = 11110_3 = 120 -> 0x7F
    q[160 + 2 + 16] = 1;    // qs[32 + 2] trit 1 = 2: v = 12111_3 = 148 -> ceil(37888/243) = 156 = 0x9C
    q[240 + 1 + 4 * 3] = -1;  // qh[1] trit 3 = 0: v = 11100_3 = 117 -> ceil(29952/243) = 124 = 0x7C
    BlockTQ1_0 b;
    encode_tq1_0(q, 0.5f, &b);
    std::vector<uint8_t> want(54, 0x80);
    for (int j = 48; j < 52; ++j) want[size_t(j)] = 0x7F;
    want[0] = 0xD5;
    want[3] = 0x7F;
    want[34] = 0x9C;
    want[49] = 0x7C;
    want[52] = 0x00, want[53] = 0x38;  // fp16 0.5
    check_block(b, want, decode_tq1_0, q, 0.5f);
  }

  TEST_CASE("TQ1_0: every 5-trit byte value decodes to its digits") {
    // The fixed-point base-3 trick must be exact for all 3^5 digit patterns.
    int bad = 0;
    for (int v = 0; v < 243; ++v) {
      int8_t q[256];
      for (int k = 0; k < 256; ++k) q[k] = 0;
      int digits[5], x = v;
      for (int n = 4; n >= 0; --n) digits[n] = x % 3, x /= 3;
      for (int n = 0; n < 5; ++n) q[n * 32] = int8_t(digits[n] - 1);  // byte qs[0]
      for (int n = 0; n < 4; ++n) q[240 + 4 * n] = int8_t(digits[n] - 1);  // byte qh[0]
      BlockTQ1_0 b;
      encode_tq1_0(q, 1.0f, &b);
      int8_t back[256];
      float d;
      decode_tq1_0(b, back, &d);
      bad += std::memcmp(back, q, 256) != 0;
    }
    CHECK(bad == 0);
  }

  TEST_CASE("encode_row / decode round trip is exact for every type") {
    Rng rng(7);
    struct Case {
      GgmlType type;
      int max_code, group;
    };
    const Case cases[] = {{GgmlType::kQ4_0, 7, 32},  {GgmlType::kQ4_0, 1, 64},  {GgmlType::kQ4_0, 8, 128},
                          {GgmlType::kQ8_0, 127, 32}, {GgmlType::kQ8_0, 7, 64},  {GgmlType::kTQ2_0, 1, 256},
                          {GgmlType::kTQ2_0, 1, 512}, {GgmlType::kTQ1_0, 1, 256}, {GgmlType::kTQ1_0, 1, 512},
                          {GgmlType::kF16, 1, 16},   {GgmlType::kF32, 127, 16}};
    const int64_t n = 1024;
    for (const Case& c : cases) {
      CAPTURE(ggml_type_name(c.type));
      CAPTURE(c.group);
      std::vector<int8_t> codes(n);
      std::vector<float> scales(size_t(n / c.group));
      for (auto& q : codes) q = int8_t(int(rng.below(2 * c.max_code + 1)) - c.max_code);
      if (c.max_code == 8)
        for (auto& q : codes) q = std::max<int8_t>(q, -8), q = std::min<int8_t>(q, 7);
      for (float& s : scales) s = round_to_f16(0.5f * rng.uniform() + 1e-3f);
      std::vector<uint8_t> buf(size_t(gguf_row_bytes(c.type, n)));
      encode_row(c.type, codes.data(), scales.data(), n, c.group, buf.data());
      std::vector<float> f(n);
      dequantize_row(c.type, buf.data(), n, f.data());
      int64_t bad = 0;
      for (int64_t k = 0; k < n; ++k) bad += f[size_t(k)] != float(codes[size_t(k)]) * scales[size_t(k / c.group)];
      CHECK(bad == 0);
      int64_t be = 0, bb = 0;
      REQUIRE(ggml_type_size(uint32_t(c.type), &be, &bb));
      if (be > 1) {
        std::vector<int8_t> q(n);
        std::vector<float> d(size_t(n / be));
        decode_row_codes(c.type, buf.data(), n, q.data(), d.data());
        CHECK(q == codes);
        for (int64_t b = 0; b < n / be; ++b) bad += d[size_t(b)] != scales[size_t(b * be / c.group)];
        CHECK(bad == 0);
      }
    }
  }

  TEST_CASE("type choice: lossless in every case, widening reported") {
    auto pick = [](int lo, int hi, int group, bool f16_exact = true, GgmlType tern = GgmlType::kTQ2_0) {
      CodeStats st;
      st.min_code = lo, st.max_code = hi, st.values_f16_exact = f16_exact;
      return choose_gguf_type("w", st, 1024, group, tern);
    };
    CHECK(pick(-1, 1, 256).type == GgmlType::kTQ2_0);
    CHECK(!pick(-1, 1, 256).widened);
    CHECK(pick(-1, 1, 512, true, GgmlType::kTQ1_0).type == GgmlType::kTQ1_0);
    TypeChoice t64 = pick(-1, 1, 64);  // G = 64 ternary: one scale per 64, TQ needs 256
    CHECK(t64.type == GgmlType::kQ4_0);
    CHECK(t64.widened);
    CHECK(t64.reason.find("TQ2_0") != std::string::npos);
    CHECK(pick(-7, 7, 64).type == GgmlType::kQ4_0);
    CHECK(!pick(-7, 7, 64).widened);
    CHECK(pick(-8, 7, 32).type == GgmlType::kQ4_0);
    CHECK(pick(-7, 8, 32).type == GgmlType::kQ8_0);  // +8 does not fit a nibble
    CHECK(pick(-127, 127, 32).type == GgmlType::kQ8_0);
    CHECK(pick(-1, 1, 16).type == GgmlType::kF16);
    CHECK(pick(-7, 7, 16, false).type == GgmlType::kF32);
    CHECK(pick(-7, 7, 16, false).widened);
    CodeStats bad;
    bad.scales_fp16 = false;
    CHECK_THROWS_WITH_AS(choose_gguf_type("blk.w", bad, 64, 32), doctest::Contains("blk.w"), Error);
  }

  TEST_CASE("writer/reader: metadata of every value type round-trips") {
    GgufWriter w(64);
    w.set("u8", GgufValue::u8(200));
    w.set("i8", GgufValue::i8(-100));
    w.set("u16", GgufValue::u16(60000));
    w.set("i16", GgufValue::i16(-30000));
    w.set("u32", GgufValue::u32(4000000000u));
    w.set("i32", GgufValue::i32(-2000000000));
    w.set("f32", GgufValue::f32(0.1f));
    w.set("bool", GgufValue::boolean(true));
    w.set("str", GgufValue::str("h\xc3\xa9llo"));
    w.set("u64", GgufValue::u64(~uint64_t(0) - 5));
    w.set("i64", GgufValue::i64(-(int64_t(1) << 62)));
    w.set("f64", GgufValue::f64(1e300));
    w.set("arr.str", GgufValue::array_strings({"a", "", "b c"}));
    w.set("arr.i32", GgufValue::array_ints(GgufValueType::kInt32, {1, -2, 3}));
    w.set("arr.u8", GgufValue::array_ints(GgufValueType::kUint8, {0, 255}));
    w.set("arr.bool", GgufValue::array_ints(GgufValueType::kBool, {1, 0}));
    w.set("arr.f32", GgufValue::array_floats(GgufValueType::kFloat32, {0.5, -2}));
    w.set("arr.empty", GgufValue::array_strings({}));
    w.set("u32", GgufValue::u32(7));  // replaced in place
    std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
    std::vector<uint8_t> xb(32);
    encode_floats(GgmlType::kF32, x.data(), 8, xb.data());
    w.add_tensor("a", GgmlType::kF32, {8}, xb);
    w.add_tensor("b", GgmlType::kF32, {4, 2}, xb);
    std::string path = tmp_path("meta.gguf");
    w.write(path);
    GgufFile f = GgufFile::open(path);
    CHECK(f.version() == 3);
    CHECK(f.alignment() == 64);
    CHECK(f.get_u32("general.alignment") == 64);
    REQUIRE(f.metadata().size() == 19);
    CHECK(f.metadata()[5].first == "u32");  // order of first insertion kept
    CHECK(f.get_u32("u32") == 7);
    CHECK(f.at("u8").u == 200);
    CHECK(f.at("i8").i == -100);
    CHECK(f.at("u16").u == 60000);
    CHECK(f.at("i16").i == -30000);
    CHECK(f.at("i32").i == -2000000000);
    CHECK(f.get_f32("f32") == 0.1f);
    CHECK(f.get_bool("bool"));
    CHECK(f.get_str("str") == "h\xc3\xa9llo");
    CHECK(f.at("u64").u == ~uint64_t(0) - 5);
    CHECK(f.at("i64").i == -(int64_t(1) << 62));
    CHECK(f.at("f64").f == 1e300);
    CHECK(f.at("arr.str").strings == std::vector<std::string>{"a", "", "b c"});
    CHECK(f.at("arr.i32").ints == std::vector<int64_t>{1, -2, 3});
    CHECK(f.at("arr.u8").ints == std::vector<int64_t>{0, 255});
    CHECK(f.at("arr.bool").array_type == GgufValueType::kBool);
    CHECK(f.at("arr.f32").floats == std::vector<double>{0.5, -2});
    CHECK(f.at("arr.empty").array_size() == 0);
    for (const auto& kv : f.metadata()) CHECK(*w.find(kv.first) == kv.second);
    CHECK_THROWS_WITH_AS(f.get_u32("str"), doctest::Contains("key 'str' is str, expected u32"), Error);
    CHECK_THROWS_WITH_AS(f.get_u32("nope"), doctest::Contains("meta.gguf: key 'nope': missing"), Error);
    REQUIRE(f.tensors().size() == 2);
    CHECK(f.tensors()[1].offset == 64);  // 32 bytes padded to the 64 alignment
    CHECK(f.data_offset() % 64 == 0);
    CHECK(std::memcmp(f.tensor("b").data, xb.data(), 32) == 0);
    CHECK(f.tensor("b").ne == std::vector<int64_t>{4, 2});
    CHECK_THROWS_WITH_AS(f.tensor("zz"), doctest::Contains("tensor 'zz'"), Error);
    // The file equals the in-memory image and no temporary is left behind.
    std::vector<uint8_t> img = w.serialize();
    FILE* fp = std::fopen(path.c_str(), "rb");
    REQUIRE(fp);
    std::vector<uint8_t> disk(img.size() + 1);
    CHECK(std::fread(disk.data(), 1, disk.size(), fp) == img.size());
    std::fclose(fp);
    disk.resize(img.size());
    CHECK(disk == img);
    CHECK(access((path + ".tmp." + std::to_string(getpid())).c_str(), F_OK) != 0);
    std::remove(path.c_str());
    CHECK_THROWS_AS(w.write("/nonexistent_dir_razor/x.gguf"), Error);
  }

  TEST_CASE("reader rejects broken files with a clear error") {
    GgufWriter w;
    w.set("general.architecture", GgufValue::str("qwen3"));
    w.set("tokens", GgufValue::array_strings({"x", "y"}));
    std::vector<uint8_t> tb(18 * 2, 0);
    w.add_tensor("blk.0.some_tensor", GgmlType::kQ4_0, {64}, tb);
    const std::vector<uint8_t> good = w.serialize();
    CHECK(parse_error(good).empty());

    SUBCASE("every truncation fails cleanly") {
      // The last tensor's 36 bytes are followed by 28 bytes of padding the reader does not need.
      int not_rejected = 0;
      for (size_t n = 0; n < good.size() - 28; ++n) {
        std::vector<uint8_t> b(good.begin(), good.begin() + long(n));
        not_rejected += parse_error(b).empty();
      }
      CHECK(not_rejected == 0);
      CHECK(parse_error(std::vector<uint8_t>(good.begin(), good.end() - 28)).empty());
      std::vector<uint8_t> b(good.begin(), good.begin() + 10);
      CHECK(parse_error(b).find("broken.gguf: truncated") != std::string::npos);
    }
    SUBCASE("bad magic") {
      std::vector<uint8_t> b = good;
      b[0] = 'X';
      CHECK(parse_error(b).find("not a GGUF file (magic 'XGUF'") != std::string::npos);
    }
    SUBCASE("version") {
      std::vector<uint8_t> b = good;
      put_at<uint32_t>(b, 4, 2);
      CHECK(parse_error(b).find("version 2 is not supported") != std::string::npos);
    }
    SUBCASE("huge tensor count") {
      std::vector<uint8_t> b = good;
      put_at<uint64_t>(b, 8, uint64_t(1) << 60);
      CHECK(parse_error(b).find("tensor count 1152921504606846976 cannot fit") != std::string::npos);
    }
    SUBCASE("huge metadata count") {
      std::vector<uint8_t> b = good;
      put_at<uint64_t>(b, 16, ~uint64_t(0));
      CHECK(parse_error(b).find("metadata count") != std::string::npos);
    }
    SUBCASE("huge string length") {
      std::vector<uint8_t> b = good;
      put_at<uint64_t>(b, 24, uint64_t(1) << 62);  // length of the first key
      CHECK(parse_error(b).find("string length 4611686018427387904 exceeds") != std::string::npos);
    }
    SUBCASE("huge array length") {
      std::vector<uint8_t> b = good;
      size_t at = find_bytes(b, "tokens") + 6 + 4 + 4;  // key, value type, element type
      put_at<uint64_t>(b, at, uint64_t(1) << 59);
      std::string e = parse_error(b);
      CHECK(e.find("key 'tokens': array of 576460752303423488 str elements cannot fit") != std::string::npos);
    }
    SUBCASE("unknown value type") {
      std::vector<uint8_t> b = good;
      put_at<uint32_t>(b, find_bytes(b, "general.architecture") + 20, 99);
      CHECK(parse_error(b).find("key 'general.architecture': unknown value type 99") != std::string::npos);
    }
    // Tensor info after the name: u32 n_dims, u64 ne[0], u32 type, u64 offset.
    const size_t name_end = find_bytes(good, "blk.0.some_tensor") + 17;
    SUBCASE("tensor offset out of range") {
      std::vector<uint8_t> b = good;
      put_at<uint64_t>(b, name_end + 16, 4096);
      CHECK(parse_error(b).find("tensor 'blk.0.some_tensor': bytes [4096, 4132) of the data section are beyond") !=
            std::string::npos);
    }
    SUBCASE("misaligned offset") {
      std::vector<uint8_t> b = good;
      put_at<uint64_t>(b, name_end + 16, 8);
      CHECK(parse_error(b).find("offset 8 is not a multiple of the alignment 32") != std::string::npos);
    }
    SUBCASE("unknown type id") {
      std::vector<uint8_t> b = good;
      put_at<uint32_t>(b, name_end + 12, 77);
      CHECK(parse_error(b).find("tensor 'blk.0.some_tensor': unknown ggml type id 77") != std::string::npos);
    }
    SUBCASE("row not a multiple of the block") {
      std::vector<uint8_t> b = good;
      put_at<uint64_t>(b, name_end + 4, 48);
      CHECK(parse_error(b).find("row length 48 is not a multiple of the Q4_0 block size 32") != std::string::npos);
    }
    SUBCASE("too many dimensions / huge dimension") {
      std::vector<uint8_t> b = good;
      put_at<uint32_t>(b, name_end, 5);
      CHECK(parse_error(b).find("5 dimensions") != std::string::npos);
      b = good;
      put_at<uint64_t>(b, name_end + 4, uint64_t(1) << 63);
      CHECK(parse_error(b).find("impossibly large") != std::string::npos);
    }
    SUBCASE("bad alignment value") {
      GgufWriter w2;
      w2.set("general.alignment", GgufValue::u32(48));
      std::vector<uint8_t> b = w2.serialize();
      CHECK(parse_error(b).find("'general.alignment' = 48 is not a power of two") != std::string::npos);
      GgufWriter w3;
      w3.set("general.alignment", GgufValue::u64(32));
      b = w3.serialize();
      CHECK(parse_error(b).find("'general.alignment' is u64, expected u32") != std::string::npos);
    }
    SUBCASE("duplicate key") {
      GgufWriter w2;
      w2.set("aaaaaa", GgufValue::u32(1));
      w2.set("bbbbbb", GgufValue::u32(2));
      std::vector<uint8_t> b = w2.serialize();
      std::memcpy(b.data() + find_bytes(b, "bbbbbb"), "aaaaaa", 6);
      CHECK(parse_error(b).find("metadata key 'aaaaaa' appears twice") != std::string::npos);
    }
    SUBCASE("file on disk: error names the path") {
      std::string path = tmp_path("trunc.gguf");
      FILE* fp = std::fopen(path.c_str(), "wb");
      REQUIRE(fp);
      std::fwrite(good.data(), 1, good.size() - 29, fp);
      std::fclose(fp);
      std::string err;
      try {
        GgufFile::open(path);
      } catch (const Error& e) {
        err = e.what();
      }
      CHECK(err.find(path + ": tensor 'blk.0.some_tensor'") == 0);
      std::remove(path.c_str());
    }
  }

  TEST_CASE("rope row permutation for llama") {
    CHECK(rope_interleave_rows(1, 4) == std::vector<int64_t>{0, 2, 1, 3});
    CHECK(rope_interleave_rows(2, 8) == std::vector<int64_t>{0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15});
  }

  TEST_CASE("tensor names") {
    CHECK(gguf_tensor_name("model.embed_tokens.weight") == "token_embd.weight");
    CHECK(gguf_tensor_name("model.layers.12.self_attn.k_norm.weight") == "blk.12.attn_k_norm.weight");
    CHECK(gguf_tensor_name("model.layers.3.mlp.down_proj.weight") == "blk.3.ffn_down.weight");
    CHECK(gguf_tensor_name("model.layers.0.post_attention_layernorm.weight") == "blk.0.ffn_norm.weight");
    CHECK(gguf_tensor_name("lm_head.weight") == "output.weight");
    CHECK(gguf_tensor_name("model.layers.x.mlp.up_proj.weight").empty());
    CHECK(gguf_tensor_name("model.layers.0.self_attn.rotary_emb.inv_freq").empty());
  }

  TEST_CASE("export qwen3: metadata, tokenizer, tensors read back exactly") {
    TestModel m = make_model("qwen3", false);
    Json tc = Json::object();
    tc.set("eos_token", "<|im_end|>");
    tc.set("chat_template", "{{ messages }}");
    ExportOptions opt;
    opt.tokenizer_config = &tc;
    std::string path = tmp_path("qwen3.gguf");
    ExportReport rep = export_gguf(path, m.config, kTokenizer, m.tensors, opt);
    GgufFile f = GgufFile::open(path);
    CHECK(f.get_str("general.architecture") == "qwen3");
    CHECK(f.get_u32("qwen3.block_count") == 1);
    CHECK(f.get_u32("qwen3.context_length") == 1024);
    CHECK(f.get_u32("qwen3.embedding_length") == 256);
    CHECK(f.get_u32("qwen3.feed_forward_length") == 512);
    CHECK(f.get_u32("qwen3.attention.head_count") == 4);
    CHECK(f.get_u32("qwen3.attention.head_count_kv") == 2);
    CHECK(f.get_u32("qwen3.attention.key_length") == 64);
    CHECK(f.get_u32("qwen3.attention.value_length") == 64);
    CHECK(f.get_f32("qwen3.rope.freq_base") == 1000000.0f);
    CHECK(f.get_f32("qwen3.attention.layer_norm_rms_epsilon") == 1e-6f);
    CHECK(f.get_str("tokenizer.ggml.model") == "gpt2");
    CHECK(f.get_str("tokenizer.ggml.pre") == "qwen2");
    const GgufValue& toks = f.at("tokenizer.ggml.tokens");
    REQUIRE(toks.strings.size() == 32);  // one per embedding row
    CHECK(toks.strings[3] == "\xc4\xa0");  // U+0120 in UTF-8
    CHECK(toks.strings[7] == "<|im_end|>");
    CHECK(toks.strings[9] == "[PAD9]");
    const GgufValue& types = f.at("tokenizer.ggml.token_type");
    CHECK(types.array_type == GgufValueType::kInt32);
    CHECK(types.ints[0] == 1);
    CHECK(types.ints[6] == 3);
    CHECK(types.ints[8] == 4);
    CHECK(types.ints[31] == 5);
    CHECK(f.at("tokenizer.ggml.merges").strings == std::vector<std::string>{"a b", "\xc4\xa0 a"});
    CHECK(f.get_u32("tokenizer.ggml.bos_token_id") == 6);
    CHECK(f.get_u32("tokenizer.ggml.eos_token_id") == 7);  // tokenizer_config wins over config.json
    CHECK(!f.find("tokenizer.ggml.padding_token_id"));
    CHECK(!f.get_bool("tokenizer.ggml.add_bos_token"));
    CHECK(f.get_str("tokenizer.chat_template") == "{{ messages }}");

    const char* gnames[] = {"token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                            "blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.ffn_gate.weight",
                            "blk.0.ffn_up.weight", "blk.0.ffn_down.weight", "output.weight"};
    const GgmlType want_types[] = {GgmlType::kQ4_0, GgmlType::kTQ2_0, GgmlType::kQ4_0, GgmlType::kQ4_0, GgmlType::kQ8_0,
                                   GgmlType::kF16,  GgmlType::kF32,   GgmlType::kTQ2_0, GgmlType::kQ4_0};
    for (size_t i = 0; i < 9; ++i) {
      CAPTURE(gnames[i]);
      const GgufTensorInfo& ti = f.tensor(gnames[i]);
      CHECK(ti.type == uint32_t(want_types[i]));
      check_tensor_exact(ti, m.mats[i], {});
    }
    CHECK(f.tensors().size() == 14);
    const GgufTensorInfo& qn = f.tensor("blk.0.attn_q_norm.weight");
    CHECK(qn.type == uint32_t(GgmlType::kF32));
    CHECK(qn.ne == std::vector<int64_t>{64});
    CHECK(std::memcmp(qn.data, m.floats[3].data(), 64 * 4) == 0);
    // Report: k (ternary G=64 -> Q4_0), v (mixed rows G=64 -> Q4_0), gate (G=16 -> F16),
    // up (mixed G=16 -> F32) widened.
    CHECK(rep.n_widened() == 4);
    CHECK(rep.n_inexact() == 0);
    std::string text = rep.text();
    CHECK(text.find("mixed rows (64 of 512 4-bit) G=16") != std::string::npos);
    CHECK(text.find("blk.0.attn_k.weight: ternary G=64: TQ2_0 needs one scale per 256 weights") != std::string::npos);
    std::remove(path.c_str());
  }

  TEST_CASE("export qwen3: TQ1_0 and tied embeddings") {
    TestModel m = make_model("qwen3", true);
    ExportOptions opt;
    opt.ternary_type = GgmlType::kTQ1_0;
    ExportReport rep;
    GgufWriter w = build_gguf(m.config, kTokenizer, m.tensors, opt, &rep);
    std::vector<uint8_t> img = w.serialize();
    GgufFile f = GgufFile::parse(img.data(), img.size(), "mem");
    CHECK(!f.find_tensor("output.weight"));
    CHECK(f.tensor("blk.0.attn_q.weight").type == uint32_t(GgmlType::kTQ1_0));
    check_tensor_exact(f.tensor("blk.0.attn_q.weight"), m.mats[1], {});
    check_tensor_exact(f.tensor("blk.0.ffn_down.weight"), m.mats[7], {});
  }

  TEST_CASE("export llama: q/k rows permuted, everything else as given") {
    TestModel m = make_model("llama", false);
    ExportReport rep;
    GgufWriter w = build_gguf(m.config, kTokenizer, m.tensors, {}, &rep);
    std::vector<uint8_t> img = w.serialize();
    GgufFile f = GgufFile::parse(img.data(), img.size(), "mem");
    CHECK(f.get_str("general.architecture") == "llama");
    CHECK(f.get_u32("llama.rope.dimension_count") == 64);
    CHECK(f.get_bool("tokenizer.ggml.add_bos_token"));
    CHECK(!f.find_tensor("blk.0.attn_q_norm.weight"));
    check_tensor_exact(f.tensor("blk.0.attn_q.weight"), m.mats[1], rope_interleave_rows(4, 64));
    check_tensor_exact(f.tensor("blk.0.attn_k.weight"), m.mats[2], rope_interleave_rows(2, 64));
    check_tensor_exact(f.tensor("blk.0.attn_v.weight"), m.mats[3], {});
    check_tensor_exact(f.tensor("blk.0.attn_output.weight"), m.mats[4], {});
  }

  TEST_CASE("export errors name the tensor or key") {
    TestModel m = make_model("qwen3", false);
    ExportReport rep;
    SUBCASE("missing tensor") {
      m.tensors.erase(m.tensors.begin() + 2);
      CHECK_THROWS_WITH_AS(build_gguf(m.config, kTokenizer, m.tensors, {}, &rep),
                           doctest::Contains("'blk.0.attn_k.weight' (shape [128, 256]) is missing"), Error);
    }
    SUBCASE("q/k/v biases: listed by the tensor table, refused") {
      m.config.set("attention_bias", Json(true));
      CHECK_THROWS_WITH_AS(build_gguf(m.config, kTokenizer, m.tensors, {}, &rep),
                           doctest::Contains("GGUF export: model.layers.0.self_attn.q_proj.bias: q/k/v biases"), Error);
    }
    SUBCASE("wrong shape") {
      m.tensors[4].shape = {128, 512};
      CHECK_THROWS_WITH_AS(build_gguf(m.config, kTokenizer, m.tensors, {}, &rep),
                           doctest::Contains("model.layers.0.self_attn.o_proj.weight: shape [128, 512]"), Error);
    }
    SUBCASE("unknown tensor") {
      m.tensors[0].name = "model.layers.0.self_attn.q_proj.bias";
      CHECK_THROWS_WITH_AS(build_gguf(m.config, kTokenizer, m.tensors, {}, &rep),
                           doctest::Contains("q_proj.bias: not a tensor of a qwen3 model"), Error);
    }
    SUBCASE("code outside the declared row kind") {
      m.mats[1].codes[5] = 3;
      CHECK_THROWS_WITH_AS(build_gguf(m.config, kTokenizer, m.tensors, {}, &rep),
                           doctest::Contains("q_proj.weight: row 0 is declared 2-bit but holds the code 3"), Error);
    }
    SUBCASE("scale not fp16") {
      m.mats[2].scales[0] = 0.1f;
      CHECK_THROWS_WITH_AS(build_gguf(m.config, kTokenizer, m.tensors, {}, &rep),
                           doctest::Contains("k_proj.weight: a group scale is not an fp16 number"), Error);
    }
    SUBCASE("architecture") {
      m.config.set("model_type", "gemma");
      CHECK_THROWS_WITH_AS(build_gguf(m.config, kTokenizer, m.tensors, {}, &rep),
                           doctest::Contains("model_type 'gemma'"), Error);
    }
    SUBCASE("token id beyond the embedding") {
      std::string tok = kTokenizer;
      tok.replace(tok.find("\"id\": 8"), 7, "\"id\": 40");
      CHECK_THROWS_WITH_AS(build_gguf(m.config, tok, m.tensors, {}, &rep),
                           doctest::Contains("token id 40 ('<tool>') is outside the 32 rows"), Error);
    }
    SUBCASE("unknown pre-tokenizer") {
      std::string tok = kTokenizer;
      tok.replace(tok.find("\\\\p{N}|"), 7, "\\\\p{N}+|");
      CHECK_THROWS_WITH_AS(build_gguf(m.config, tok, m.tensors, {}, &rep),
                           doctest::Contains("unknown pre_tokenizer"), Error);
      ExportOptions opt;
      opt.tokenizer_pre = "qwen2";
      CHECK_NOTHROW(build_gguf(m.config, tok, m.tensors, opt, &rep));
    }
  }
}

namespace {

// pm -> .razor -> load -> GGUF; every matrix of pm read back with decode_row_codes (an
// independent path from verify_gguf) must give pm's integers and fp16 scales.
struct PackedRoundTrip {
  ExportReport rep;
  GgufVerify check;
  std::vector<std::pair<std::string, uint32_t>> types;  // GGUF name, type id
  uint32_t file_type = 0;                                // general.file_type
};
PackedRoundTrip packed_round_trip(const PackedModel& pm, const ExportOptions& opt) {
  PackedRoundTrip out;
  const std::string rz = tmp_path("packed.razor"), gg = tmp_path("packed.gguf");
  pm.save(rz);
  const PackedModel loaded = PackedModel::load(rz);
  out.rep = export_packed_gguf(gg, loaded, "", opt, &out.check);
  GgufFile f = GgufFile::open(gg);
  const bool llama = pm.cfg.model_type == "llama";
  for (const auto& e : pm.matrices()) {
    const PackedMatrix& m = *e.second;
    QuantMatrix want;
    want.d_out = m.desc.d_out, want.d_in = m.desc.d_in, want.group = m.desc.G;
    want.codes.resize(size_t(want.d_out * want.d_in));
    want.scales.resize(size_t(want.d_out * (want.d_in / want.group)));
    unpack_matrix(m, want.codes.data(), want.scales.data());
    const std::string gname = gguf_tensor_name(e.first);
    std::vector<int64_t> perm;
    if (llama && gname.find(".attn_q.") != std::string::npos) perm = rope_interleave_rows(4, 64);
    if (llama && gname.find(".attn_k.") != std::string::npos) perm = rope_interleave_rows(2, 64);
    check_tensor_exact(f.tensor(gname), want, perm);
    out.types.push_back({gname, f.tensor(gname).type});
  }
  for (size_t l = 0; l < pm.layers.size(); ++l) {
    const GgufTensorInfo& n = f.tensor("blk." + std::to_string(l) + ".ffn_norm.weight");
    CHECK(n.type == uint32_t(GgmlType::kF32));
    CHECK(std::memcmp(n.data, pm.layers[l].mlp_norm.data(), 256 * 4) == 0);
  }
  CHECK(f.get_str("general.architecture") == pm.cfg.model_type);
  out.file_type = f.get_u32("general.file_type");
  CHECK(f.at("tokenizer.ggml.tokens").strings.size() == 32);
  CHECK(f.get_u32("tokenizer.ggml.eos_token_id") == 7);
  std::remove(rz.c_str());
  std::remove(gg.c_str());
  return out;
}

uint32_t type_of(const PackedRoundTrip& r, const std::string& gname) {
  for (const auto& t : r.types)
    if (t.first == gname) return t.second;
  FAIL("no tensor " << gname);
  return 0;
}

}  // namespace

TEST_SUITE("gguf") {
  TEST_CASE("packed .razor -> GGUF: ternary G=256 is TQ2_0, int4 is Q4_0, identical integers and scales") {
    PackedModel pm = random_packed_model("qwen3", PackedLayout::Ternary2, 256);
    PackedRoundTrip r = packed_round_trip(pm, ExportOptions{});
    CHECK(r.check.exact());
    CHECK(r.check.max_abs_error == 0.0);
    CHECK(r.check.tensors == 16 + 2 * 4 + 1);  // 14 linears + embed + lm_head, norms
    CHECK(type_of(r, "blk.1.ffn_down.weight") == uint32_t(GgmlType::kTQ2_0));
    CHECK(type_of(r, "token_embd.weight") == uint32_t(GgmlType::kQ4_0));
    CHECK(type_of(r, "output.weight") == uint32_t(GgmlType::kQ4_0));
    CHECK(r.file_type == 37);  // LLAMA_FTYPE_MOSTLY_TQ2_0: the linears outweigh the Q4_0 embedding
    CHECK(r.rep.n_widened() == 0);
    CHECK(r.rep.n_inexact() == 0);
    // TQ2_0 is 66 bytes per 256 weights: 2.0625 bits.
    for (const auto& t : r.rep.tensors)
      if (t.gguf_name == "blk.0.attn_q.weight") CHECK(t.bytes == 256 * 66);
  }

  TEST_CASE("packed .razor -> GGUF: 5-trit ternary G=256 is TQ1_0 (auto), or TQ2_0 when asked") {
    PackedModel pm = random_packed_model("qwen3", PackedLayout::Ternary5, 256);
    ExportOptions opt;
    opt.ternary_type = default_ternary_type(pm);
    CHECK(opt.ternary_type == GgmlType::kTQ1_0);
    PackedRoundTrip r = packed_round_trip(pm, opt);
    CHECK(r.check.exact());
    CHECK(type_of(r, "blk.0.attn_k.weight") == uint32_t(GgmlType::kTQ1_0));
    CHECK(r.file_type == 36);  // LLAMA_FTYPE_MOSTLY_TQ1_0
    opt.ternary_type = GgmlType::kTQ2_0;
    r = packed_round_trip(pm, opt);
    CHECK(r.check.exact());
    CHECK(type_of(r, "blk.0.attn_k.weight") == uint32_t(GgmlType::kTQ2_0));
  }

  TEST_CASE("packed .razor -> GGUF: mixed rows and ternary G=64 widen to Q4_0 with a report") {
    SUBCASE("mixed rows, P = 8, G = 256") {
      PackedModel pm = random_packed_model("qwen3", PackedLayout::Mixed, 256, 8);
      PackedRoundTrip r = packed_round_trip(pm, ExportOptions{});
      CHECK(r.check.exact());
      CHECK(type_of(r, "blk.0.ffn_up.weight") == uint32_t(GgmlType::kQ4_0));
      CHECK(r.file_type == 2);  // LLAMA_FTYPE_MOSTLY_Q4_0
      CHECK(r.rep.n_widened() == 14);  // every linear; embed and lm_head are int4 (natural Q4_0)
      CHECK(r.rep.text().find("mixed rows (64 of 512 4-bit) G=256") != std::string::npos);
      CHECK(r.rep.text().find("blk.0.ffn_up.weight: mixed rows G=256: a GGUF tensor has one type; Q4_0 holds the 64 "
                              "int4 rows and the 448 ternary rows exactly") != std::string::npos);
    }
    SUBCASE("ternary, G = 64") {
      PackedModel pm = random_packed_model("qwen3", PackedLayout::Ternary2, 64);
      PackedRoundTrip r = packed_round_trip(pm, ExportOptions{});
      CHECK(r.check.exact());
      CHECK(type_of(r, "blk.1.attn_q.weight") == uint32_t(GgmlType::kQ4_0));
      CHECK(r.rep.n_widened() == 14);
      CHECK(r.rep.text().find("ternary G=64: TQ2_0 needs one scale per 256 weights") != std::string::npos);
    }
    SUBCASE("int4, G = 128: exact, not widened") {
      PackedModel pm = random_packed_model("qwen3", PackedLayout::Int4, 128);
      PackedRoundTrip r = packed_round_trip(pm, ExportOptions{});
      CHECK(r.check.exact());
      CHECK(type_of(r, "blk.0.attn_v.weight") == uint32_t(GgmlType::kQ4_0));
      CHECK(r.rep.n_widened() == 0);
    }
  }

  TEST_CASE("packed .razor -> GGUF: llama q/k rows permuted, verify follows the permutation") {
    PackedModel pm = random_packed_model("llama", PackedLayout::Ternary2, 256);
    PackedRoundTrip r = packed_round_trip(pm, ExportOptions{});
    CHECK(r.check.exact());
    CHECK(r.check.tensors == 16 + 2 * 2 + 1);
  }

  TEST_CASE("verify_gguf detects a changed code, a changed scale and a missing tokenizer") {
    PackedModel pm = random_packed_model("qwen3", PackedLayout::Ternary2, 256);
    const PackedExport ex = packed_export_tensors(pm);
    ExportReport rep;
    std::vector<uint8_t> img = build_gguf(pm.cfg.to_json(), kTokenizer, ex.tensors, {}, &rep).serialize();
    GgufFile f0 = GgufFile::parse(img.data(), img.size(), "mem");
    CHECK(verify_gguf(f0, ex.tensors).exact());
    const GgufTensorInfo& q = f0.tensor("blk.0.attn_q.weight");
    const size_t at = size_t(q.data - img.data());
    SUBCASE("code") {
      img[at + 3] ^= 0x01;  // weight 3 of the first block: 2-bit field 0 of byte 3
      GgufFile f = GgufFile::parse(img.data(), img.size(), "mem");
      GgufVerify v = verify_gguf(f, ex.tensors);
      CHECK(!v.exact());
      CHECK(v.code_mismatch == 1);
      CHECK(v.value_mismatch == 1);
      CHECK(v.text().find("NOT exact") != std::string::npos);
    }
    SUBCASE("scale") {
      img[at + 64] ^= 0x01;  // lowest mantissa bit of the first block's fp16 d
      GgufFile f = GgufFile::parse(img.data(), img.size(), "mem");
      GgufVerify v = verify_gguf(f, ex.tensors);
      CHECK(v.scale_mismatch == 1);
      CHECK(v.max_abs_error > 0.0);
    }
    SUBCASE("no tokenizer") {
      pm.tokenizer_json.clear();
      CHECK_THROWS_WITH_AS(export_packed_gguf(tmp_path("none.gguf"), pm, "", {}, nullptr),
                           doctest::Contains("no tokenizer.json"), Error);
    }
  }
}
