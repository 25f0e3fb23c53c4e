#include "gguf/export_packed.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "gguf/blocks.h"

namespace razor {

PackedExport packed_export_tensors(const PackedModel& pm) {
  PackedExport out;
  const auto mats = pm.matrices();
  out.codes.resize(mats.size());
  out.scales.resize(mats.size());
  for (size_t i = 0; i < mats.size(); ++i) {
    const PackedMatrix& m = *mats[i].second;
    const PackedDesc& d = m.desc;
    out.codes[i].resize(size_t(d.d_out * d.d_in));
    out.scales[i].resize(size_t(d.d_out * (d.d_in / d.G)));
    unpack_matrix(m, out.codes[i].data(), out.scales[i].data());
    ExportTensor t;
    t.name = mats[i].first;
    t.shape = {d.d_out, d.d_in};
    t.codes = out.codes[i].data();
    t.scales = out.scales[i].data();
    t.group = d.G;
    t.row_bits.resize(size_t(d.d_out));
    for (int64_t r = 0; r < d.d_out; ++r) t.row_bits[size_t(r)] = m.row_kind(r) == RowKind::Int4 ? 4 : 2;
    out.tensors.push_back(std::move(t));
  }
  for (const auto& e : pm.norms()) {
    ExportTensor t;
    t.name = e.first;
    t.shape = {int64_t(e.second->size())};
    t.data = e.second->data();
    out.tensors.push_back(std::move(t));
  }
  return out;
}

GgmlType default_ternary_type(const PackedModel& pm) {
  return pm.opt.ternary5 ? GgmlType::kTQ1_0 : GgmlType::kTQ2_0;
}

std::string GgufVerify::text() const {
  return strfmt("read back: %d tensors, %lld weights; %lld codes, %lld block scales and %lld values differ from "
                "razor's; max |dequantized - q*s| = %g (%s)",
                tensors, (long long)values, (long long)code_mismatch, (long long)scale_mismatch,
                (long long)value_mismatch, max_abs_error, exact() ? "exact" : "NOT exact");
}

GgufVerify verify_gguf(const GgufFile& f, const std::vector<ExportTensor>& tensors) {
  GgufVerify v;
  const GgufValue* arch_v = f.find("general.architecture");
  const std::string arch = arch_v && arch_v->type == GgufValueType::kString ? arch_v->s : "";
  const int64_t head_dim = arch == "llama" ? int64_t(f.get_u32("llama.attention.key_length")) : 0;
  for (const ExportTensor& t : tensors) {
    const std::string gname = gguf_tensor_name(t.name);
    const GgufTensorInfo* ti = f.find_tensor(gname);
    if (!ti && gname == "output.weight") continue;  // tied: llama.cpp reuses token_embd
    RZ_CHECK(ti, "%s: tensor %s (%s) is missing", f.source().c_str(), gname.c_str(), t.name.c_str());
    const int64_t d_out = t.shape.size() == 2 ? t.shape[0] : 1, d_in = t.shape.back();
    RZ_CHECK(ti->ne[0] == d_in && ti->rows() == d_out, "%s: tensor %s has another shape than %s", f.source().c_str(),
             gname.c_str(), t.name.c_str());
    const GgmlType type = GgmlType(ti->type);
    RZ_CHECK(gguf_type_supported(ti->type), "%s: tensor %s: type %s is not one razor decodes", f.source().c_str(),
             gname.c_str(), ggml_type_name(ti->type));
    std::vector<int64_t> src_row;
    if (arch == "llama" && t.codes &&
        (gname.find(".attn_q.weight") != std::string::npos || gname.find(".attn_k.weight") != std::string::npos))
      src_row = rope_interleave_rows(d_out / head_dim, head_dim);
    int64_t be = 1, bb = 0;
    ggml_type_size(ti->type, &be, &bb);
    const uint64_t rb = gguf_row_bytes(type, d_in);
    std::vector<float> x(static_cast<size_t>(d_in)), bs(static_cast<size_t>(std::max<int64_t>(1, d_in / be)));
    std::vector<int8_t> q(static_cast<size_t>(d_in));
    for (int64_t r = 0; r < d_out; ++r) {
      const uint8_t* row = ti->data + uint64_t(r) * rb;
      dequantize_row(type, row, d_in, x.data());
      if (!t.codes) {
        const float* want = t.data + r * d_in;
        for (int64_t k = 0; k < d_in; ++k) {
          const double e = std::fabs(double(x[size_t(k)]) - double(want[k]));
          v.value_mismatch += x[size_t(k)] != want[k];
          v.max_abs_error = std::max(v.max_abs_error, e);
        }
        continue;
      }
      const int64_t s = src_row.empty() ? r : src_row[size_t(r)];
      const int8_t* wq = t.codes + s * d_in;
      const float* ws = t.scales + s * (d_in / t.group);
      for (int64_t k = 0; k < d_in; ++k) {
        const float want = float(wq[k]) * ws[k / t.group];
        v.value_mismatch += x[size_t(k)] != want;
        v.max_abs_error = std::max(v.max_abs_error, std::fabs(double(x[size_t(k)]) - double(want)));
      }
      if (be > 1) {
        decode_row_codes(type, row, d_in, q.data(), bs.data());
        for (int64_t k = 0; k < d_in; ++k) v.code_mismatch += q[size_t(k)] != wq[k];
        for (int64_t b = 0; b < d_in / be; ++b) v.scale_mismatch += bs[size_t(b)] != ws[b * be / t.group];
      }
    }
    v.tensors += 1;
    v.values += d_out * d_in;
  }
  return v;
}

ExportReport export_packed_gguf(const std::string& path, const PackedModel& pm, std::string tokenizer_json,
                                const ExportOptions& opt, GgufVerify* check) {
  if (tokenizer_json.empty()) tokenizer_json = pm.tokenizer_json;
  RZ_CHECK(!tokenizer_json.empty(),
           "%s: the packed model has no tokenizer.json and none was given; GGUF needs the tokenizer (--tokenizer FILE)",
           path.c_str());
  const PackedExport ex = packed_export_tensors(pm);
  // The tokenizer_config.json the .razor carries (chat template, special tokens), unless the caller gave one.
  ExportOptions o = opt;
  Json tok_cfg;
  if (!o.tokenizer_config && !pm.tokenizer_config_json.empty()) {
    tok_cfg = Json::parse(pm.tokenizer_config_json, "packed model: tokenizer_config.json");
    o.tokenizer_config = &tok_cfg;
  }
  ExportReport rep = export_gguf(path, pm.cfg.to_json(), tokenizer_json, ex.tensors, o);
  if (check) *check = verify_gguf(GgufFile::open(path), ex.tensors);
  return rep;
}

}  // namespace razor
