// Packing a Model into PackedMatrix form and the .razor round trip of a PackedModel.
#include "infer/pack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "io/razor_file.h"
#include "kernels/qgemm.h"
#include "nn/model.h"
#include "quant/quantize.h"

namespace razor {

namespace {

const char* kFormat = "razor-packed";

// Visits every matrix slot of a PackedModel (mutable, for loading) with its tensor-table row.
template <class F>
void for_each_matrix(PackedModel& pm, F f) {
  for (const TensorSpec& t : model_tensors(pm.cfg))
    if (PackedMatrix* m = pm.matrix_slot(t, "packed model")) f(t, *m);
}

template <class F>
void for_each_norm(PackedModel& pm, F f) {
  for (const TensorSpec& t : model_tensors(pm.cfg))
    if (std::vector<float>* v = pm.norm_slot(t, "packed model")) f(t, *v);
}

void copy_bytes(AlignedBytes& dst, const uint8_t* src, size_t n) {
  dst = AlignedBytes(n);
  std::memcpy(dst.data(), src, n);
}

// Drops the page-aligned interior of [p, p + n) from the page cache mapping once copied, so
// loading does not hold the file and its copy resident at the same time.
void release_pages(const uint8_t* p, size_t n) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t a = (uintptr_t(p) + page - 1) / page * page, b = (uintptr_t(p) + n) / page * page;
  if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}

}  // namespace

PackedMatrix* PackedModel::matrix_slot(const TensorSpec& t, const std::string& what) {
  refuse_unsupported(t, what);
  PackedLayer* ly = t.layer >= 0 ? &layers.at(size_t(t.layer)) : nullptr;
  switch (t.role) {
    case TensorRole::Embed: return &embed;
    case TensorRole::Q: return &ly->q;
    case TensorRole::K: return &ly->k;
    case TensorRole::V: return &ly->v;
    case TensorRole::O: return &ly->o;
    case TensorRole::Gate: return &ly->gate;
    case TensorRole::Up: return &ly->up;
    case TensorRole::Down: return &ly->down;
    case TensorRole::LmHead: return &lm_head;
    default: return nullptr;
  }
}

std::vector<float>* PackedModel::norm_slot(const TensorSpec& t, const std::string& what) {
  refuse_unsupported(t, what);
  PackedLayer* ly = t.layer >= 0 ? &layers.at(size_t(t.layer)) : nullptr;
  switch (t.role) {
    case TensorRole::AttnNorm: return &ly->attn_norm;
    case TensorRole::QNorm: return &ly->q_norm;
    case TensorRole::KNorm: return &ly->k_norm;
    case TensorRole::MlpNorm: return &ly->mlp_norm;
    case TensorRole::FinalNorm: return &final_norm;
    default: return nullptr;
  }
}

std::vector<std::pair<std::string, const PackedMatrix*>> PackedModel::matrices() const {
  std::vector<std::pair<std::string, const PackedMatrix*>> out;
  for_each_matrix(const_cast<PackedModel&>(*this),
                  [&](const TensorSpec& t, PackedMatrix& m) { out.emplace_back(t.hf, &m); });
  return out;
}

std::vector<std::pair<std::string, const std::vector<float>*>> PackedModel::norms() const {
  std::vector<std::pair<std::string, const std::vector<float>*>> out;
  for_each_norm(const_cast<PackedModel&>(*this),
                [&](const TensorSpec& t, std::vector<float>& v) { out.emplace_back(t.hf, &v); });
  return out;
}

int64_t PackedModel::decode_bytes_per_token() const {
  int64_t b = 0;
  for (const auto& e : matrices())
    if (e.second != &embed) b += e.second->stream_bytes();
  if (cfg.tie_word_embeddings) b += embed.stream_bytes();  // the tied lm_head
  b += embed.stream_bytes() / embed.desc.d_out;           // one embedding row
  return b;
}

int64_t PackedModel::packed_bytes() const {
  int64_t b = 0;
  for (const auto& e : matrices()) b += e.second->stream_bytes();
  for (const auto& e : norms()) b += int64_t(e.second->size() * sizeof(float));
  return b;
}

PackedModel pack_model(const Model& m, const PackOptions& opt) {
  PackedModel pm;
  pm.cfg = m.cfg;
  pm.opt = opt;
  pm.layers.resize(size_t(m.cfg.num_hidden_layers));
  const WeightLayout lin = opt.plan.linear_layout(), emb = opt.plan.embedding_layout();
  lin.validate("--rho/--group");
  for (const auto& o : opt.overrides) {
    o.second.validate(o.first.c_str());
    RZ_CHECK(o.second.group == opt.plan.group,
             "%s: planned group size %d differs from the model's G = %d (one activation group size per model)",
             o.first.c_str(), o.second.group, opt.plan.group);
  }
  for_each_matrix(pm, [&](const TensorSpec& t, PackedMatrix& dst) {
    const std::string& name = t.hf;
    const Param* p = m.find(name);
    RZ_ASSERT_MSG(p, "model lacks a matrix the packed model needs");
    const bool is_emb = t.kind == TensorKind::Embedding || t.kind == TensorKind::Head;
    const WeightLayout* l_ptr = is_emb ? &emb : &lin;
    for (const auto& o : opt.overrides)
      if (o.first == name) l_ptr = &o.second;
    const WeightLayout& l = *l_ptr;
    const QuantizedWeight qw = quantize_weight(name, p->value, l);
    const PackedDesc d = packed_desc_for(l, qw.d_out, qw.d_in, opt.ternary5, name);
    dst = pack_matrix(d, qw.codes.data(), qw.scales.data(), name.c_str());
  });
  for_each_norm(pm, [&](const TensorSpec& t, std::vector<float>& dst) {
    const Param* p = m.find(t.hf);
    RZ_ASSERT_MSG(p, "model lacks a norm the packed model needs");
    dst.assign(p->value.data(), p->value.data() + p->value.numel());
  });
  return pm;
}

void PackedModel::prepare_for_engine() {
  for_each_matrix(*this, [&](const TensorSpec&, PackedMatrix& m) {
    if (&m == &embed && !cfg.tie_word_embeddings) return;  // only looked up by row
    qgemm_prepare(m);
    qgemm_release_rows(m);
  });
}

void PackedModel::save(const std::string& path) const {
  for (const auto& e : matrices())
    RZ_CHECK(e.second->codes.size() > 0, "%s: cannot save: the packed rows of %s were released for the engine",
             path.c_str(), e.first.c_str());
  RazorFileWriter w;
  w.set("config", cfg.to_json());
  Json lay = Json::object();
  lay.set("format", kFormat);
  lay.set("rho", opt.plan.rho);
  lay.set("P", int64_t(opt.plan.period()));
  lay.set("G", int64_t(opt.plan.group));
  lay.set("beta", double(opt.plan.beta));
  lay.set("ternary", opt.ternary5 ? "5trit" : "2bit");
  lay.set("a8", opt.a8);
  lay.set("kv8", opt.kv8);
  Json per = Json::object();
  for (const auto& e : matrices()) {
    const PackedDesc& d = e.second->desc;
    std::string ln = layout_name(d.layout);
    if (d.layout == PackedLayout::Mixed) ln += std::to_string(d.P);
    per.set(e.first, ln);
    Json extra = Json::object();
    extra.set("layout", ln);
    extra.set("P", int64_t(d.P));
    extra.set("G", int64_t(d.G));
    extra.set("d_out", d.d_out);
    extra.set("d_in", d.d_in);
    w.add(e.first + ".codes", "u8", {int64_t(e.second->codes.size())}, e.second->codes.data(), e.second->codes.size(),
          extra);
    w.add(e.first + ".scales", "f16", {d.d_out, d.d_in / d.G}, e.second->scales.data(), e.second->scales.size());
  }
  lay.set("tensors", per);
  w.set("layout", lay);
  for (const auto& e : norms())
    w.add(e.first, "f32", {int64_t(e.second->size())}, e.second->data(), e.second->size() * sizeof(float));
  if (!tokenizer_json.empty())
    w.add("tokenizer.json", "u8", {int64_t(tokenizer_json.size())}, tokenizer_json.data(), tokenizer_json.size());
  if (!tokenizer_config_json.empty())
    w.add("tokenizer_config.json", "u8", {int64_t(tokenizer_config_json.size())}, tokenizer_config_json.data(),
          tokenizer_config_json.size());
  w.write(path);
}

PackedModel PackedModel::load(const std::string& path) {
  RazorFile f = RazorFile::open(path, true);
  const Json& h = f.header();
  const Json* cj = h.find("config");
  const Json* lj = h.find("layout");
  RZ_CHECK(cj && lj && lj->is_object() && lj->get_string("format", "") == kFormat,
           "%s: not a packed model (the .razor header lacks the \"config\" / \"layout\" sections of %s)",
           path.c_str(), kFormat);
  PackedModel pm;
  pm.cfg = ModelConfig::from_json(*cj, path + ": config");
  pm.file_bytes = f.file_size();
  const std::string tern = lj->get_string("ternary", "2bit");
  RZ_CHECK(tern == "2bit" || tern == "5trit", "%s: layout.ternary must be \"2bit\" or \"5trit\", got \"%s\"",
           path.c_str(), tern.c_str());
  pm.opt.ternary5 = tern == "5trit";
  pm.opt.plan.rho = lj->get_double("rho", 0.125);
  pm.opt.plan.group = int(lj->get_int("G", 64));
  pm.opt.plan.beta = float(lj->get_double("beta", 2.0));
  pm.opt.a8 = lj->get_bool("a8", false);
  pm.opt.kv8 = lj->get_bool("kv8", false);
  RZ_CHECK(pm.opt.plan.rho >= 0 && pm.opt.plan.rho <= 1, "%s: layout.rho %g outside [0, 1]", path.c_str(),
           pm.opt.plan.rho);
  RZ_CHECK(pm.cfg.num_hidden_layers <= 4096, "%s: config: %lld layers is not plausible", path.c_str(),
           (long long)pm.cfg.num_hidden_layers);
  pm.layers.resize(size_t(pm.cfg.num_hidden_layers));
  // The hash pass made every page resident; drop them and copy tensor by tensor.
  release_pages(f.mapped()->data(), f.file_size());

  for_each_matrix(pm, [&](const TensorSpec& t, PackedMatrix& dst) {
    const std::string& name = t.hf;
    const std::string cn = name + ".codes";
    const RazorTensor* ct = f.find(cn);
    RZ_CHECK(ct, "%s: tensor %s is missing", path.c_str(), cn.c_str());
    const Json& m = ct->meta;
    PackedDesc d;
    const std::string ln = m.get_string("layout", "");
    try {
      d = parse_layout(ln.c_str());
    } catch (const Error&) {
      fail("%s: tensor %s: bad layout \"%s\"", path.c_str(), cn.c_str(), ln.c_str());
    }
    d.G = int(m.get_int("G", 0));
    d.d_out = m.get_int("d_out", 0);
    d.d_in = m.get_int("d_in", 0);
    const int64_t eo = t.shape[0], ei = t.shape[1];
    RZ_CHECK(d.d_out == eo && d.d_in == ei, "%s: tensor %s is [%lld, %lld], the config implies [%lld, %lld]",
             path.c_str(), cn.c_str(), (long long)d.d_out, (long long)d.d_in, (long long)eo, (long long)ei);
    check_packed_desc(d, (path + ": " + cn).c_str());
    PackedMatrix probe;
    probe.desc = d;
    const int64_t last = d.d_out - 1;
    const uint64_t code_bytes = uint64_t(probe.row_offset(last) + row_code_bytes(probe.row_kind(last), d.G, d.d_in));
    const RazorTensor& c = f.get(cn, "u8", code_bytes);
    RZ_CHECK(c.shape.size() == 1 && c.shape[0] == int64_t(code_bytes), "%s: tensor %s: shape does not match %llu bytes",
             path.c_str(), cn.c_str(), (unsigned long long)code_bytes);
    const std::string sn = name + ".scales";
    const RazorTensor& s = f.get(sn, "f16", uint64_t(d.d_out * (d.d_in / d.G) * 2));
    RZ_CHECK(s.shape.size() == 2 && s.shape[0] == d.d_out && s.shape[1] == d.d_in / d.G,
             "%s: tensor %s: shape is not [%lld, %lld]", path.c_str(), sn.c_str(), (long long)d.d_out,
             (long long)(d.d_in / d.G));
    probe.desc = d;
    copy_bytes(probe.codes, f.data(c), c.nbytes);
    copy_bytes(probe.scales, f.data(s), s.nbytes);
    release_pages(f.data(c), c.nbytes);
    release_pages(f.data(s), s.nbytes);
    // Scales must be positive finite fp16 (the kernels trust them).
    const uint16_t* sc = reinterpret_cast<const uint16_t*>(probe.scales.data());
    for (int64_t i = 0; i < d.d_out * (d.d_in / d.G); ++i) {
      const float v = f16_to_f32(sc[i]);
      RZ_CHECK(v > 0.0f && v <= 65504.0f, "%s: tensor %s: scale %lld is %g (must be positive and finite)",
               path.c_str(), sn.c_str(), (long long)i, double(v));
    }
    dst = std::move(probe);
  });
  for_each_norm(pm, [&](const TensorSpec& spec, std::vector<float>& dst) {
    const std::string& name = spec.hf;
    const int64_t n = spec.shape[0];
    const RazorTensor& t = f.get(name, "f32", uint64_t(n) * 4);
    RZ_CHECK(t.shape.size() == 1 && t.shape[0] == n, "%s: tensor %s: shape is not [%lld]", path.c_str(), name.c_str(),
             (long long)n);
    dst.resize(size_t(n));
    std::memcpy(dst.data(), f.data(t), size_t(n) * 4);
  });
  if (const RazorTensor* t = f.find("tokenizer.json")) {
    RZ_CHECK(t->dtype == "u8", "%s: tensor tokenizer.json has dtype %s, expected u8", path.c_str(), t->dtype.c_str());
    pm.tokenizer_json.assign(reinterpret_cast<const char*>(f.data(*t)), size_t(t->nbytes));
  }
  if (const RazorTensor* t = f.find("tokenizer_config.json")) {
    RZ_CHECK(t->dtype == "u8", "%s: tensor tokenizer_config.json has dtype %s, expected u8", path.c_str(),
             t->dtype.c_str());
    pm.tokenizer_config_json.assign(reinterpret_cast<const char*>(f.data(*t)), size_t(t->nbytes));
    Json::parse(pm.tokenizer_config_json, path + ": tokenizer_config.json");  // refuse a damaged one at load
  }
  return pm;
}

}  // namespace razor
