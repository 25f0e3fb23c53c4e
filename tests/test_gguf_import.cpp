// GGUF import (gguf/import, gguf/import_meta): razor -> GGUF -> razor gives back the
// same PackedModel (codes, scales, norms, config, tokenizer, log-probs) for every layout razor
// exports; GGUF tensors that are not razor integers are re-quantized with an error that matches
// a direct computation; llama q/k rows and llama3 rope factors come back; broken files and
// unsupported types give razor::Error naming the file and tensor or key.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <unistd.h>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "gguf_test_util.h"
#include "gguf/import.h"
#include "gguf/export_packed.h"
#include "infer/pack.h"
#include "gguf/gguf.h"
#include "gguf/blocks.h"
#include "gguf/export.h"
#include "gguf/import_meta.h"
#include "io/tokenizer.h"
#include "quant/quantize.h"
#include "train/evaluate_packed.h"

using namespace razor;
using namespace razor::gguf_test;

namespace {

std::string tmp_file(const char* name) {
  return std::string("/tmp/razor_test_") + std::to_string(getpid()) + "_import_" + name;
}

// pm exported to an in-memory GGUF image (the tokenizer_config.json pm carries, when it has one).
std::vector<uint8_t> gguf_image(const PackedModel& pm, ExportOptions opt = {}) {
  const PackedExport ex = packed_export_tensors(pm);
  Json tc;
  if (!pm.tokenizer_config_json.empty()) {
    tc = Json::parse(pm.tokenizer_config_json, "test");
    opt.tokenizer_config = &tc;
  }
  ExportReport rep;
  return build_gguf(pm.cfg.to_json(), pm.tokenizer_json, ex.tensors, opt, &rep).serialize();
}

// The whole user path: pm -> .razor -> load -> razor export (read back, exact) -> GGUF file ->
// import -> .razor -> load.
PackedModel via_gguf_files(const PackedModel& pm, const ExportOptions& eo, const ImportOptions& io,
                           ImportReport* rep) {
  const std::string a = tmp_file("a.razor"), g = tmp_file("a.gguf"), b = tmp_file("b.razor");
  pm.save(a);
  const PackedModel loaded = PackedModel::load(a);
  GgufVerify v;
  export_packed_gguf(g, loaded, "", eo, &v);
  CHECK(v.exact());
  PackedModel imported = import_gguf(GgufFile::open(g), io, rep);
  imported.save(b);
  PackedModel back = PackedModel::load(b);
  std::remove(a.c_str());
  std::remove(g.c_str());
  std::remove(b.c_str());
  return back;
}

PackedModel import_image(const std::vector<uint8_t>& img, const ImportOptions& io, ImportReport* rep) {
  return import_gguf(GgufFile::parse(img.data(), img.size(), "edited.gguf"), io, rep);
}

std::string import_error(const std::vector<uint8_t>& img) {
  ImportReport rep;
  try {
    import_image(img, {}, &rep);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Rebuilds a GGUF image with metadata and tensors edited (an edit returning false drops the
// entry), plus added keys and tensors.
struct TensorData {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;
  std::vector<uint8_t> bytes;
};
struct Rewrite {
  std::function<bool(const std::string&, GgufValue&)> kv;
  std::function<bool(TensorData&)> tensor;
  std::vector<std::pair<std::string, GgufValue>> add_kv;
  std::vector<TensorData> add_tensors;
};
std::vector<uint8_t> rewrite(const std::vector<uint8_t>& img, const Rewrite& rw) {
  GgufFile f = GgufFile::parse(img.data(), img.size(), "in");
  GgufWriter w(f.alignment());
  for (const auto& e : f.metadata()) {
    if (e.first == "general.alignment") continue;
    GgufValue v = e.second;
    if (!rw.kv || rw.kv(e.first, v)) w.set(e.first, v);
  }
  for (const auto& e : rw.add_kv) w.set(e.first, e.second);
  for (const GgufTensorInfo& ti : f.tensors()) {
    TensorData t{ti.name, GgmlType(ti.type), ti.ne, std::vector<uint8_t>(ti.data, ti.data + ti.nbytes)};
    if (!rw.tensor || rw.tensor(t)) w.add_tensor(t.name, t.type, t.ne, t.bytes);
  }
  for (const TensorData& t : rw.add_tensors) w.add_tensor(t.name, t.type, t.ne, t.bytes);
  return w.serialize();
}

// random_packed_model with a tokenizer razor's tokenizer loads (byte_level_tokenizer, 272 rows:
// 261..271 are padding ids) and bos <|endoftext|> / eos <|im_end|>.
PackedModel model(const std::string& arch, PackedLayout lin, int G, int P = 0) {
  PackedModel pm = random_packed_model(arch, lin, G, P, 272, byte_level_tokenizer());
  pm.cfg.bos_token_id = 258;
  pm.cfg.eos_token_ids = {259};
  return pm;
}

const char* kSample = "ab a<|im_end|>c ab<tool>b a a <|endoftext|>abc Hello, w\xc3\xb6rld!\n";

// Every code byte, scale, norm, the config and the tokenizer's ids must agree.
void check_same_model(const PackedModel& a, const PackedModel& b) {
  CHECK(a.cfg.to_json().dump() == b.cfg.to_json().dump());
  CHECK(a.opt.plan.group == b.opt.plan.group);
  CHECK(a.opt.ternary5 == b.opt.ternary5);
  const auto ma = a.matrices(), mb = b.matrices();
  REQUIRE(ma.size() == mb.size());
  for (size_t i = 0; i < ma.size(); ++i) {
    CAPTURE(ma[i].first);
    CHECK(ma[i].first == mb[i].first);
    const PackedMatrix &x = *ma[i].second, &y = *mb[i].second;
    CHECK(x.desc.layout == y.desc.layout);
    CHECK(x.desc.P == y.desc.P);
    CHECK(x.desc.G == y.desc.G);
    CHECK(x.desc.d_out == y.desc.d_out);
    CHECK(x.desc.d_in == y.desc.d_in);
    REQUIRE(x.codes.size() == y.codes.size());
    REQUIRE(x.scales.size() == y.scales.size());
    CHECK(std::memcmp(x.codes.data(), y.codes.data(), x.codes.size()) == 0);
    CHECK(std::memcmp(x.scales.data(), y.scales.data(), x.scales.size()) == 0);
  }
  const auto na = a.norms(), nb = b.norms();
  REQUIRE(na.size() == nb.size());
  for (size_t i = 0; i < na.size(); ++i) {
    CAPTURE(na[i].first);
    CHECK(na[i].first == nb[i].first);
    CHECK(*na[i].second == *nb[i].second);
  }
  const Tokenizer ta = Tokenizer::from_json(a.tokenizer_json, "a"), tb = Tokenizer::from_json(b.tokenizer_json, "b");
  CHECK(ta.encode(kSample) == tb.encode(kSample));
  CHECK(ta.vocab_size() == tb.vocab_size());
  for (int32_t id = 0; id < ta.vocab_size(); ++id) {
    CHECK(ta.id_to_token(id) == tb.id_to_token(id));
    CHECK(ta.is_special(id) == tb.is_special(id));
  }
}

const std::vector<int32_t> kIds = {258, 97, 98, 256, 257, 32, 99, 260, 259, 10, 65, 66, 0, 255, 256, 97, 271, 98, 258, 100};

// Exact round trip of pm through the files, plus the same log-probs from the packed forward.
ImportReport check_round_trip(const PackedModel& pm, const ExportOptions& eo = {}, const ImportOptions& io = {}) {
  ImportReport rep;
  const PackedModel back = via_gguf_files(pm, eo, io, &rep);
  check_same_model(pm, back);
  CHECK(rep.n_requantized() == 0);
  for (const auto& t : rep.tensors) {
    CAPTURE(t.gguf_name);
    CHECK(t.exact);
    CHECK(t.max_abs_error == 0.0);
  }
  CHECK(packed_next_token_logprobs(pm, kIds) == packed_next_token_logprobs(back, kIds));
  return rep;
}

const ImportTensorReport& row_of(const ImportReport& rep, const std::string& gname) {
  for (const auto& t : rep.tensors)
    if (t.gguf_name == gname) return t;
  FAIL("no tensor " << gname);
  return rep.tensors.front();
}

// The error figures of re-quantizing the GGUF tensor `gname` with layout l, computed directly:
// llama.cpp's dequantized values (rows through perm) against razor's quantizer.
struct Direct {
  QuantizedWeight qw;
  double max_abs = 0, rel_rms = 0;
};
Direct direct_requant(const GgufFile& f, const std::string& gname, const WeightLayout& l) {
  const GgufTensorInfo& ti = f.tensor(gname);
  const int64_t d_in = ti.ne[0], d_out = ti.ne[1];
  Tensor w = Tensor::empty(Shape{d_out, d_in});
  const uint64_t rb = gguf_row_bytes(GgmlType(ti.type), d_in);
  for (int64_t r = 0; r < d_out; ++r) dequantize_row(GgmlType(ti.type), ti.data + r * rb, d_in, w.data() + r * d_in);
  Direct d;
  d.qw = quantize_weight(gname, w, l);
  const std::vector<float> deq = [&] {
    Tensor t = d.qw.dequantize();
    return std::vector<float>(t.data(), t.data() + t.numel());
  }();
  double se = 0, sw = 0;
  for (int64_t i = 0; i < d_out * d_in; ++i) {
    const double e = double(deq[size_t(i)]) - double(w.data()[i]);
    d.max_abs = std::max(d.max_abs, std::fabs(e));
    se += e * e;
    sw += double(w.data()[i]) * double(w.data()[i]);
  }
  d.rel_rms = std::sqrt(se / sw);
  return d;
}

void check_codes(const PackedMatrix& m, const QuantizedWeight& qw) {
  std::vector<int8_t> q(size_t(m.desc.d_out * m.desc.d_in));
  std::vector<float> s(size_t(m.desc.d_out * m.groups()));
  unpack_matrix(m, q.data(), s.data());
  CHECK(q == qw.codes);
  CHECK(s == qw.scales);
}

}  // namespace

TEST_SUITE("gguf_import") {
  TEST_CASE("razor -> GGUF -> razor: ternary G=256 via TQ2_0 and TQ1_0 is the same packed model") {
    SUBCASE("TQ2_0") {
      const PackedModel pm = model("qwen3", PackedLayout::Ternary2, 256);
      const ImportReport rep = check_round_trip(pm);
      CHECK(rep.group == 256);
      CHECK(row_of(rep, "blk.0.attn_q.weight").gguf_type == uint32_t(GgmlType::kTQ2_0));
      CHECK(row_of(rep, "blk.0.attn_q.weight").layout == "ternary2 G=256");
      CHECK(row_of(rep, "token_embd.weight").layout == "int4 G=256");
      CHECK(rep.text().find("16 matrices: 16 exact, 0 re-quantized") != std::string::npos);
    }
    SUBCASE("TQ1_0 (5-trit storage comes back)") {
      const PackedModel pm = model("qwen3", PackedLayout::Ternary5, 256);
      ExportOptions eo;
      eo.ternary_type = GgmlType::kTQ1_0;
      const ImportReport rep = check_round_trip(pm, eo);
      CHECK(row_of(rep, "blk.1.ffn_down.weight").gguf_type == uint32_t(GgmlType::kTQ1_0));
      CHECK(row_of(rep, "blk.1.ffn_down.weight").layout == "ternary5 G=256");
    }
    SUBCASE("TQ1_0 into 2-bit storage when asked: same codes, other layout") {
      const PackedModel pm = model("qwen3", PackedLayout::Ternary5, 256);
      const PackedModel p2 = model("qwen3", PackedLayout::Ternary2, 256);  // same random codes
      ExportOptions eo;
      eo.ternary_type = GgmlType::kTQ1_0;
      ImportOptions io;
      io.ternary = ImportOptions::Ternary::k2bit;
      ImportReport rep;
      check_same_model(p2, via_gguf_files(pm, eo, io, &rep));
    }
  }

  TEST_CASE("razor -> GGUF -> razor: int4 G=64 and G=256 via Q4_0 is the same packed model") {
    for (int G : {64, 256}) {
      CAPTURE(G);
      const PackedModel pm = model("qwen3", PackedLayout::Int4, G);
      const ImportReport rep = check_round_trip(pm);
      CHECK(rep.group == G);
      CHECK(row_of(rep, "blk.1.attn_output.weight").gguf_type ==
            uint32_t(GgmlType::kQ4_0));
      CHECK(row_of(rep, "blk.1.attn_output.weight").layout == "int4 G=" + std::to_string(G));
    }
  }

  TEST_CASE("razor -> GGUF -> razor: layouts exported widened to Q4_0 come back (mixed rows, ternary G=64)") {
    SUBCASE("mixed rows P = 8, G = 256") {
      const ImportReport rep = check_round_trip(model("qwen3", PackedLayout::Mixed, 256, 8));
      CHECK(row_of(rep, "blk.0.ffn_up.weight").layout == "mixed8 G=256");
    }
    SUBCASE("ternary G = 64") {
      const ImportReport rep = check_round_trip(model("qwen3", PackedLayout::Ternary2, 64));
      CHECK(rep.group == 64);
      CHECK(row_of(rep, "blk.0.ffn_up.weight").layout == "ternary2 G=64");
    }
  }

  TEST_CASE("llama: the q/k row permutation is undone; tied embeddings") {
    PackedModel pm = model("llama", PackedLayout::Ternary2, 256);
    // The GGUF really holds permuted rows: GGUF row 1 of attn_q is razor row D/2 = 32.
    {
      const std::vector<uint8_t> img = gguf_image(pm);
      const GgufFile f = GgufFile::parse(img.data(), img.size(), "mem");
      const GgufTensorInfo& q = f.tensor("blk.0.attn_q.weight");
      std::vector<int8_t> got(256), want(256 * 256);
      std::vector<float> d(1), s(256);
      decode_row_codes(GgmlType::kTQ2_0, q.data + gguf_row_bytes(GgmlType::kTQ2_0, 256), 256, got.data(), d.data());
      unpack_matrix(pm.layers[0].q, want.data(), s.data());
      CHECK(std::memcmp(got.data(), want.data() + 32 * 256, 256) == 0);
      CHECK(std::memcmp(got.data(), want.data() + 1 * 256, 256) != 0);
    }
    check_round_trip(pm);
    pm.cfg.tie_word_embeddings = true;
    pm.lm_head = PackedMatrix();
    const ImportReport rep = check_round_trip(pm);
    for (const auto& t : rep.tensors) CHECK(t.gguf_name != "output.weight");
  }

  TEST_CASE("Q4_0 that is not razor's (differing d in a 64-group, a -8 code) is re-quantized with its error") {
    const PackedModel pm = model("qwen3", PackedLayout::Int4, 64);
    Rewrite rw;
    rw.tensor = [](TensorData& t) {
      if (t.name == "blk.0.attn_v.weight") {
        // Row 0, second 32-block of the first 64-group: d doubled (bytes 18..19 of the row).
        uint16_t h;
        std::memcpy(&h, t.bytes.data() + 18, 2);
        h = f32_to_f16(2.0f * f16_to_f32(h));
        std::memcpy(t.bytes.data() + 18, &h, 2);
      }
      if (t.name == "blk.1.ffn_up.weight") {
        // Row 3, weight 0: low nibble of the first code byte = 0, i.e. the code -8.
        const size_t at = 3 * size_t(gguf_row_bytes(GgmlType::kQ4_0, 256)) + 2;
        t.bytes[at] = uint8_t(t.bytes[at] & 0xF0);
      }
      return true;
    };
    const std::vector<uint8_t> img = rewrite(gguf_image(pm), rw);
    const GgufFile f = GgufFile::parse(img.data(), img.size(), "edited.gguf");
    ImportReport rep;
    const PackedModel back = import_gguf(f, {}, &rep);
    CHECK(rep.group == 64);
    CHECK(rep.n_requantized() == 2);
    const ImportTensorReport& v = row_of(rep, "blk.0.attn_v.weight");
    const ImportTensorReport& u = row_of(rep, "blk.1.ffn_up.weight");
    CHECK(!v.exact);
    CHECK(!u.exact);
    CHECK(v.note.find("block scales differ inside a 64-weight group (row 0") != std::string::npos);
    CHECK(u.note.find("row 3, weight 0 has the code -8") != std::string::npos);
    CHECK(v.layout == "int4 G=64");
    const Direct dv = direct_requant(f, "blk.0.attn_v.weight", WeightLayout::uniform(4, 64));
    const Direct du = direct_requant(f, "blk.1.ffn_up.weight", WeightLayout::uniform(4, 64));
    CHECK(v.max_abs_error > 0);
    CHECK(u.max_abs_error > 0);
    CHECK(v.max_abs_error == doctest::Approx(dv.max_abs).epsilon(1e-12));
    CHECK(v.rel_rms_error == doctest::Approx(dv.rel_rms).epsilon(1e-12));
    CHECK(u.max_abs_error == doctest::Approx(du.max_abs).epsilon(1e-12));
    CHECK(u.rel_rms_error == doctest::Approx(du.rel_rms).epsilon(1e-12));
    check_codes(back.layers[0].v, dv.qw);
    check_codes(back.layers[1].up, du.qw);
    // Everything else stays exact: the same integers as the original.
    CHECK(std::memcmp(back.layers[1].down.codes.data(), pm.layers[1].down.codes.data(), pm.layers[1].down.codes.size()) == 0);
    CHECK(rep.text().find("16 matrices: 14 exact, 2 re-quantized") != std::string::npos);
  }

  TEST_CASE("F32 / F16 / BF16 and Q8_0 matrices are re-quantized (int4, or ternary when asked)") {
    PackedModel pm = model("qwen3", PackedLayout::Int4, 64);
    PackedExport ex = packed_export_tensors(pm);
    // q_proj as floats, o_proj as int8 codes with G = 32 (-> Q8_0).
    Rng rng(5);
    std::vector<float> wq(256 * 256);
    for (float& x : wq) x = 0.02f * rng.normal();
    std::vector<int8_t> qo(256 * 256);
    std::vector<float> so(256 * 8);
    for (int8_t& q : qo) q = int8_t(int(rng.below(255)) - 127);
    for (float& s : so) s = round_to_f16(1e-4f + 1e-3f * rng.uniform());
    for (ExportTensor& t : ex.tensors) {
      if (t.name == "model.layers.0.self_attn.q_proj.weight") {
        t.codes = nullptr, t.scales = nullptr, t.row_bits.clear(), t.group = 0;
        t.data = wq.data();
      }
      if (t.name == "model.layers.0.self_attn.o_proj.weight") {
        t.codes = qo.data(), t.scales = so.data(), t.group = 32;
        t.row_bits.assign(256, 8);
      }
    }
    for (GgmlType ft : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16}) {
      for (bool tern : {false, true}) {
        CAPTURE(ggml_type_name(ft));
        CAPTURE(tern);
        ExportOptions eo;
        eo.float_matrix_type = ft;
        ExportReport er;
        const std::vector<uint8_t> img = build_gguf(pm.cfg.to_json(), pm.tokenizer_json, ex.tensors, eo, &er).serialize();
        const GgufFile f = GgufFile::parse(img.data(), img.size(), "floats.gguf");
        CHECK(f.tensor("blk.0.attn_q.weight").type == uint32_t(ft));
        CHECK(f.tensor("blk.0.attn_output.weight").type == uint32_t(GgmlType::kQ8_0));
        ImportOptions io;
        io.requant_ternary = tern;
        ImportReport rep;
        const PackedModel back = import_gguf(f, io, &rep);
        CHECK(rep.group == 64);
        CHECK(rep.n_requantized() == 2);
        const WeightLayout l = tern ? WeightLayout::ternary(64) : WeightLayout::uniform(4, 64);
        for (const char* g : {"blk.0.attn_q.weight", "blk.0.attn_output.weight"}) {
          CAPTURE(g);
          const ImportTensorReport& r = row_of(rep, g);
          const Direct d = direct_requant(f, g, l);
          CHECK(!r.exact);
          CHECK(r.layout == (tern ? "ternary2 G=64" : "int4 G=64"));
          CHECK(r.max_abs_error > 0);
          CHECK(r.rel_rms_error == doctest::Approx(d.rel_rms).epsilon(1e-12));
          CHECK(r.max_abs_error == doctest::Approx(d.max_abs).epsilon(1e-12));
        }
        check_codes(back.layers[0].q, direct_requant(f, "blk.0.attn_q.weight", l).qw);
        CHECK(row_of(rep, "blk.0.attn_q.weight").note.find("holds floats") != std::string::npos);
        CHECK(row_of(rep, "blk.0.attn_output.weight").note.find("has the code") != std::string::npos);
        // The rest is exact and the model runs.
        CHECK(std::memcmp(back.layers[0].k.codes.data(), pm.layers[0].k.codes.data(), pm.layers[0].k.codes.size()) == 0);
        for (double lp : packed_next_token_logprobs(back, kIds)) CHECK(std::isfinite(lp));
      }
    }
  }

  TEST_CASE("--group picks a smaller G: exact tensors keep their values with replicated scales") {
    const PackedModel pm = model("qwen3", PackedLayout::Ternary2, 256);
    const std::vector<uint8_t> img = gguf_image(pm);
    ImportOptions io;
    io.group = 64;
    ImportReport rep;
    const PackedModel back = import_image(img, io, &rep);
    CHECK(rep.group == 64);
    CHECK(rep.n_requantized() == 0);
    // Same weights, each 256-block's scale repeated over its four 64-groups. (The log-probs differ:
    // activations are quantized in groups of G too.)
    const auto ma = pm.matrices(), mb = back.matrices();
    REQUIRE(ma.size() == mb.size());
    for (size_t i = 0; i < ma.size(); ++i) {
      CAPTURE(ma[i].first);
      const PackedDesc& d = ma[i].second->desc;
      CHECK(mb[i].second->desc.G == 64);
      CHECK(mb[i].second->desc.layout == d.layout);
      std::vector<int8_t> qa(size_t(d.d_out * d.d_in)), qb(qa.size());
      std::vector<float> sa(size_t(d.d_out * d.d_in / 256)), sb(size_t(d.d_out * d.d_in / 64));
      unpack_matrix(*ma[i].second, qa.data(), sa.data());
      unpack_matrix(*mb[i].second, qb.data(), sb.data());
      CHECK(qa == qb);
      int64_t bad = 0;
      for (size_t k = 0; k < qa.size(); ++k) bad += float(qa[k]) * sa[k / 256] != float(qb[k]) * sb[k / 64];
      CHECK(bad == 0);
    }
    // A G above what the blocks allow re-quantizes, saying so.
    const std::vector<uint8_t> img64 = gguf_image(model("qwen3", PackedLayout::Int4, 64));
    io.group = 128;
    ImportReport rep2;
    import_image(img64, io, &rep2);
    CHECK(rep2.n_requantized() == 16);
    CHECK(row_of(rep2, "blk.0.attn_q.weight").note.find("exact only at G = 64, below --group 128") != std::string::npos);
  }

  TEST_CASE("llama3 rope scaling: rope_freqs.weight exported and recovered") {
    PackedModel pm = model("llama", PackedLayout::Ternary2, 256);
    RopeScaling& r = pm.cfg.rope_scaling;
    r.type = "llama3";
    SUBCASE("Llama 3.1 parameters come back as they were") {
      r.factor = 8, r.low_freq_factor = 1, r.high_freq_factor = 4, r.original_max_position_embeddings = 8192;
      const std::vector<uint8_t> img = gguf_image(pm);
      const GgufFile f = GgufFile::parse(img.data(), img.size(), "mem");
      const GgufTensorInfo& rf = f.tensor("rope_freqs.weight");
      CHECK(rf.type == uint32_t(GgmlType::kF32));
      CHECK(rf.ne == std::vector<int64_t>{32});
      // llama.cpp's convert_hf_to_gguf formula for the factors, written out independently.
      const double kPi = 3.14159265358979323846;
      for (int i = 0; i < 32; ++i) {
        const double freq = std::pow(1e6, -2.0 * i / 64), wl = 2 * kPi / freq;
        double want = wl < 8192 / 4.0 ? 1 : wl > 8192 ? 8 : 0;
        if (want == 0) {
          const double smooth = (8192 / wl - 1) / 3;
          want = 1 / ((1 - smooth) / 8 + smooth);
        }
        float got;
        std::memcpy(&got, rf.data + 4 * i, 4);
        CHECK(got == doctest::Approx(want).epsilon(1e-6));
      }
      check_round_trip(pm);
    }
    SUBCASE("other parameters: an equivalent set with the same frequencies") {
      r.factor = 16, r.low_freq_factor = 2, r.high_freq_factor = 8, r.original_max_position_embeddings = 4096;
      ImportReport rep;
      const PackedModel back = import_image(gguf_image(pm), {}, &rep);
      CHECK(back.cfg.rope_scaling.type == "llama3");
      CHECK(back.cfg.rope_scaling.factor == 16);
      CHECK(back.cfg.rope_scaling.original_max_position_embeddings == 2048);  // low = 1, high = 4: the same curve
      const std::vector<double> a = pm.cfg.rope_inv_freq(), b = back.cfg.rope_inv_freq();
      for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i]).epsilon(1e-6));
    }
    SUBCASE("qwen3 has no rope_freqs in llama.cpp: export refuses") {
      pm.cfg.model_type = "qwen3";
      CHECK_THROWS_WITH_AS(gguf_image(pm), doctest::Contains("llama.cpp applies rope_freqs.weight to 'llama' models only"),
                           Error);
    }
  }

  TEST_CASE("tokenizer: special tokens, chat template and tokenizer_config.json through .razor, GGUF and back") {
    PackedModel pm = model("qwen3", PackedLayout::Ternary2, 256);
    pm.tokenizer_config_json =
        R"({"chat_template": "{% for m in messages %}{{ m.content }}<|im_end|>{% endfor %}", "eos_token": "<|im_end|>",
            "add_bos_token": false})";
    const std::string path = tmp_file("tc.razor");
    pm.save(path);
    const PackedModel loaded = PackedModel::load(path);
    std::remove(path.c_str());
    CHECK(loaded.tokenizer_config_json == pm.tokenizer_config_json);
    // export_packed_gguf takes the template from the .razor when no --tokenizer-config is given.
    const std::string g = tmp_file("tc.gguf");
    export_packed_gguf(g, loaded, "", {}, nullptr);
    const GgufFile f = GgufFile::open(g);
    CHECK(f.get_str("tokenizer.chat_template") == "{% for m in messages %}{{ m.content }}<|im_end|>{% endfor %}");
    CHECK(f.get_u32("tokenizer.ggml.eos_token_id") == 259);
    ImportReport rep;
    const PackedModel back = import_gguf(f, {}, &rep);
    std::remove(g.c_str());
    const Json tc = Json::parse(back.tokenizer_config_json, "imported");
    CHECK(tc.get_string("chat_template", "") == "{% for m in messages %}{{ m.content }}<|im_end|>{% endfor %}");
    CHECK(tc.get_string("eos_token", "") == "<|im_end|>");
    CHECK(tc.get_string("bos_token", "") == "<|endoftext|>");
    CHECK(!tc.get_bool("add_bos_token", true));
    CHECK(back.cfg.eos_token_ids == std::vector<int64_t>{259});
    CHECK(rep.text().find("chat template: yes") != std::string::npos);
    const Tokenizer t = Tokenizer::from_json(back.tokenizer_json, "imported");
    CHECK(t.is_special(259));
    CHECK(!t.is_special(260));
    CHECK(t.vocab_size() == 261);  // [PAD261] .. [PAD271] are left out, as before export
  }

  TEST_CASE("import errors name the file and the tensor or key") {
    static const std::vector<uint8_t> good = gguf_image(model("qwen3", PackedLayout::Ternary2, 256));  // once
    REQUIRE(import_error(good).empty());
    auto set_kv = [&](const std::string& key, GgufValue v) {
      Rewrite rw;
      rw.add_kv.push_back({key, std::move(v)});
      return import_error(rewrite(good, rw));
    };
    auto edit_tensor = [&](std::function<bool(TensorData&)> fn) {
      Rewrite rw;
      rw.tensor = std::move(fn);
      return import_error(rewrite(good, rw));
    };
    SUBCASE("truncated file") {
      const std::string p = tmp_file("trunc.gguf");
      std::FILE* fp = std::fopen(p.c_str(), "wb");
      REQUIRE(fp);
      std::fwrite(good.data(), 1, good.size() / 2, fp);
      std::fclose(fp);
      CHECK_THROWS_WITH_AS(GgufFile::open(p), doctest::Contains(p.c_str()), Error);
      std::remove(p.c_str());
    }
    SUBCASE("unsupported type (a K-quant)") {
      const std::string e = edit_tensor([](TensorData& t) {
        if (t.name == "blk.0.ffn_down.weight") {
          t.type = GgmlType(12);  // Q4_K
          t.bytes.assign(size_t(ggml_nbytes(t.type, t.ne)), 0);
        }
        return true;
      });
      CHECK(e.find("edited.gguf: tensor blk.0.ffn_down.weight: type Q4_K is not importable") != std::string::npos);
    }
    SUBCASE("missing tensor") {
      CHECK(edit_tensor([](TensorData& t) { return t.name != "blk.1.ffn_gate.weight"; })
                .find("edited.gguf: tensor blk.1.ffn_gate.weight is missing") != std::string::npos);
    }
    SUBCASE("tensor of another model") {
      Rewrite rw;
      rw.add_tensors.push_back({"blk.0.attn_q.bias", GgmlType::kF32, {256}, std::vector<uint8_t>(1024, 0)});
      CHECK(import_error(rewrite(good, rw)).find("tensor blk.0.attn_q.bias (F32 [256]) is not part of a qwen3 model") !=
            std::string::npos);
    }
    SUBCASE("wrong shape") {
      const std::string e = edit_tensor([](TensorData& t) {
        if (t.name == "blk.0.attn_norm.weight") t.ne = {128}, t.bytes.resize(512);
        return true;
      });
      CHECK(e.find("tensor blk.0.attn_norm.weight has shape [128], the metadata implies [256]") != std::string::npos);
    }
    SUBCASE("quantized norm") {
      const std::string e = edit_tensor([](TensorData& t) {
        if (t.name == "output_norm.weight") t.type = GgmlType::kQ8_0, t.bytes.assign(8 * 34, 0);
        return true;
      });
      CHECK(e.find("tensor output_norm.weight: type Q8_0; razor reads norm weights as F32") != std::string::npos);
    }
    SUBCASE("non-finite block scale") {
      const std::string e = edit_tensor([](TensorData& t) {
        if (t.name == "blk.1.attn_k.weight") {
          const uint16_t nan = 0x7E00;
          std::memcpy(t.bytes.data() + 2 * 66 + 64, &nan, 2);  // row 2's d
        }
        return true;
      });
      CHECK(e.find("tensor blk.1.attn_k.weight: row 2, block 0: the scale d is nan") != std::string::npos);
    }
    SUBCASE("TQ2_0 field that is not a trit") {
      const std::string e = edit_tensor([](TensorData& t) {
        if (t.name == "blk.0.ffn_gate.weight") t.bytes[5] = 0xFF;  // row 0: weights 5, 37, 69, 101 -> field 3
        return true;
      });
      CHECK(e.find("tensor blk.0.ffn_gate.weight: row 0, weight 5: the 2-bit field holds 3") != std::string::npos);
    }
    SUBCASE("architecture") {
      CHECK(set_kv("general.architecture", GgufValue::str("gemma"))
                .find("edited.gguf: general.architecture 'gemma': razor imports 'qwen3' and 'llama'") !=
            std::string::npos);
    }
    SUBCASE("missing hparam") {
      Rewrite rw;
      rw.kv = [](const std::string& k, GgufValue&) { return k != "qwen3.block_count"; };
      CHECK(import_error(rewrite(good, rw)).find("edited.gguf: key 'qwen3.block_count': missing") != std::string::npos);
    }
    SUBCASE("per-layer head counts") {
      CHECK(set_kv("qwen3.attention.head_count_kv", GgufValue::array_ints(GgufValueType::kUint32, {2, 2}))
                .find("key 'qwen3.attention.head_count_kv' is an array") != std::string::npos);
    }
    SUBCASE("rope scaling other than llama3") {
      CHECK(set_kv("qwen3.rope.scaling.type", GgufValue::str("yarn")).find("key 'qwen3.rope.scaling.type' = ") !=
            std::string::npos);
      CHECK(set_kv("qwen3.rope.scaling.type", GgufValue::str("none")).empty());
    }
    SUBCASE("SentencePiece tokenizer") {
      CHECK(set_kv("tokenizer.ggml.model", GgufValue::str("llama"))
                .find("key 'tokenizer.ggml.model' = str \"llama\": razor reads byte-level BPE") != std::string::npos);
    }
    SUBCASE("unknown pre-tokenizer") {
      CHECK(set_kv("tokenizer.ggml.pre", GgufValue::str("falcon")).find("key 'tokenizer.ggml.pre' = 'falcon'") !=
            std::string::npos);
    }
    SUBCASE("special id beyond the vocabulary") {
      CHECK(set_kv("tokenizer.ggml.eos_token_id", GgufValue::u32(400))
                .find("key 'tokenizer.ggml.eos_token_id' = 400 is outside the 272 rows") != std::string::npos);
    }
    SUBCASE("duplicate token") {
      Rewrite rw;
      rw.kv = [](const std::string& k, GgufValue& v) {
        if (k == "tokenizer.ggml.tokens") v.strings[5] = "ab";  // "ab" is id 256
        return true;
      };
      CHECK(import_error(rewrite(good, rw)).find("token 'ab' appears at ids 5 and 256") != std::string::npos);
    }
  }
}
