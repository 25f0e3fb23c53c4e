// Weight quantizers: group kernels, rows, matrices, and the per-tensor layout record.
#include "quant/quantize.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/half.h"

namespace razor {

namespace {

constexpr float kF16Max = 65504.0f;
// Below this many elements a matrix is quantized on the calling thread (a parallel region
// costs more than the work).
constexpr int64_t kParallelMin = 16384;

// sum |w[0..n)| in a fixed order: lane j accumulates k = j, j+8, j+16, ..., then a fixed
// tree. The order does not depend on the ISA or vector width, so the ternary scale (and
// hence every code) is bit-identical in every build; the 8 lanes still vectorise.
inline float abs_sum_fixed(const float* w, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] += std::fabs(w[k + j]);
  for (int j = 0; k + j < n; ++j) acc[j] += std::fabs(w[k + j]);
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// max |w[0..n)| (order-independent; NaN elements are skipped by the comparison).
inline float abs_max(const float* w, int n) {
  float m = 0.0f;
#pragma omp simd reduction(max : m)
  for (int k = 0; k < n; ++k) m = std::max(m, std::fabs(w[k]));
  return m;
}

}  // namespace

float group_scale(const float* w, const QuantGroupFormat& f) {
  float s;
  if (f.kind == QuantGroupFormat::Kind::kTernary) {
    const float mean = abs_sum_fixed(w, f.group) / float(f.group);
    s = std::max(f.beta * mean, kQuantEps);
  } else {
    s = std::max(abs_max(w, f.group), kQuantEps) / float(f.qmax());
  }
  return round_to_f16(s);
}

// ---------------------------------------------------------------- QuantGroupFormat

QuantGroupFormat QuantGroupFormat::ternary(int group, float beta) {
  QuantGroupFormat f;
  f.kind = Kind::kTernary;
  f.bits = 2;
  f.group = group;
  f.beta = beta;
  return f;
}

QuantGroupFormat QuantGroupFormat::absmax(int bits, int group) {
  QuantGroupFormat f;
  f.kind = Kind::kAbsmax;
  f.bits = bits;
  f.group = group;
  return f;
}

double QuantGroupFormat::weight_bits() const {
  return kind == Kind::kTernary ? std::log2(3.0) : double(bits);
}

void QuantGroupFormat::validate(const char* what) const {
  RZ_CHECK(group >= 1, "%s: group size must be at least 1 (got %d)", what, group);
  if (kind == Kind::kAbsmax)
    RZ_CHECK(bits >= 2 && bits <= 8, "%s: absmax quantizer needs 2..8 bits (got %d)", what, bits);
  else
    RZ_CHECK(beta > 0.0f && std::isfinite(beta), "%s: ternary beta must be positive (got %g)", what, double(beta));
}

std::string QuantGroupFormat::str() const {
  if (kind == Kind::kTernary) return strfmt("ternary G=%d", group);
  return strfmt("int%d G=%d", bits, group);
}

// ---------------------------------------------------------------- group and row kernels

float quantize_group(const float* w, const QuantGroupFormat& f, int8_t* codes) {
  const float s = group_scale(w, f);
  const float m = float(f.qmax());
  const int n = f.group;
#pragma omp simd
  for (int k = 0; k < n; ++k) {
    float q = std::nearbyint(w[k] / s);
    // Written so NaN maps to -m (maxps semantics): a code is always in range.
    q = q > -m ? q : -m;
    q = q < m ? q : m;
    codes[k] = int8_t(q);
  }
  return s;
}

float fake_quant_group(const float* w, const QuantGroupFormat& f, float* out) {
  const float s = group_scale(w, f);
  const float m = float(f.qmax());
  const int n = f.group;
#pragma omp simd
  for (int k = 0; k < n; ++k) {
    float q = std::nearbyint(w[k] / s);
    // Written so NaN propagates to the output.
    q = q < -m ? -m : q;
    q = q > m ? m : q;
    out[k] = (q + 0.0f) * s;  // + 0: -0 codes become +0, bit-equal to int8 0 * s
  }
  return s;
}

void quantize_row(const float* w, int64_t n, const QuantGroupFormat& f, int8_t* codes, float* scales) {
  RZ_CHECK(f.group >= 1 && n % f.group == 0, "quantizer: row length %lld is not divisible by group size %d",
           (long long)n, f.group);
  const int64_t ng = n / f.group;
  for (int64_t g = 0; g < ng; ++g) scales[g] = quantize_group(w + g * f.group, f, codes + g * f.group);
}

void fake_quant_row(const float* w, int64_t n, const QuantGroupFormat& f, float* out) {
  RZ_CHECK(f.group >= 1 && n % f.group == 0, "quantizer: row length %lld is not divisible by group size %d",
           (long long)n, f.group);
  const int64_t ng = n / f.group;
  for (int64_t g = 0; g < ng; ++g) fake_quant_group(w + g * f.group, f, out + g * f.group);
}

void dequantize_row(const int8_t* codes, const float* scales, int64_t n, int group, float* out) {
  RZ_ASSERT(group >= 1 && n % group == 0);
  const int64_t ng = n / group;
  for (int64_t g = 0; g < ng; ++g) {
    const float s = scales[g];
    const int8_t* c = codes + g * group;
    float* o = out + g * group;
#pragma omp simd
    for (int k = 0; k < group; ++k) o[k] = float(c[k]) * s;
  }
}

// ---------------------------------------------------------------- WeightLayout

WeightLayout WeightLayout::none() { return WeightLayout{}; }

WeightLayout WeightLayout::ternary(int group, float beta) {
  WeightLayout l;
  l.kind = LayoutKind::kTernary;
  l.group = group;
  l.bits = 2;
  l.beta = beta;
  return l;
}

WeightLayout WeightLayout::uniform(int bits, int group) {
  WeightLayout l;
  l.kind = bits == 4 ? LayoutKind::kInt4 : bits == 8 ? LayoutKind::kInt8 : LayoutKind::kUniform;
  l.group = group;
  l.bits = bits;
  return l;
}

WeightLayout WeightLayout::mixed_rows(int64_t period, int group, float beta) {
  if (period == 0) return ternary(group, beta);
  if (period == 1) return uniform(4, group);
  WeightLayout l;
  l.kind = LayoutKind::kMixedRows;
  l.group = group;
  l.bits = 2;
  l.period = period;
  l.beta = beta;
  return l;
}

bool WeightLayout::row_is_4bit(int64_t row) const {
  if (kind == LayoutKind::kInt4) return true;
  return kind == LayoutKind::kMixedRows && row % period == 0;
}

QuantGroupFormat WeightLayout::row_format(int64_t row) const {
  switch (kind) {
    case LayoutKind::kTernary: return QuantGroupFormat::ternary(group, beta);
    case LayoutKind::kInt4:
    case LayoutKind::kInt8:
    case LayoutKind::kUniform: return QuantGroupFormat::absmax(bits, group);
    case LayoutKind::kMixedRows:
      return row % period == 0 ? QuantGroupFormat::absmax(4, group) : QuantGroupFormat::ternary(group, beta);
    case LayoutKind::kNone: break;
  }
  RZ_ASSERT_MSG(false, "row_format of an unquantized layout");
  return {};
}

int64_t WeightLayout::rows_4bit(int64_t d_out) const {
  if (kind == LayoutKind::kInt4) return d_out;
  if (kind == LayoutKind::kMixedRows) return (d_out + period - 1) / period;
  return 0;
}

double WeightLayout::weight_bits(int64_t d_out) const {
  switch (kind) {
    case LayoutKind::kNone: return 16.0;
    case LayoutKind::kTernary: return std::log2(3.0);
    case LayoutKind::kInt4:
    case LayoutKind::kInt8:
    case LayoutKind::kUniform: return double(bits);
    case LayoutKind::kMixedRows: {
      if (d_out <= 0) return 0.0;
      const int64_t r4 = rows_4bit(d_out);
      return (double(r4) * 4.0 + double(d_out - r4) * std::log2(3.0)) / double(d_out);
    }
  }
  return 0.0;
}

double WeightLayout::weight_bits_with_scales(int64_t d_out) const {
  if (kind == LayoutKind::kNone) return 16.0;
  return weight_bits(d_out) + 16.0 / double(group);
}

std::string WeightLayout::str() const {
  switch (kind) {
    case LayoutKind::kNone: return "none";
    case LayoutKind::kTernary: return strfmt("ternary G=%d", group);
    case LayoutKind::kInt4:
    case LayoutKind::kInt8:
    case LayoutKind::kUniform: return strfmt("int%d G=%d", bits, group);
    case LayoutKind::kMixedRows: return strfmt("mixed-rows P=%lld G=%d", (long long)period, group);
  }
  return "?";
}

void WeightLayout::validate(const char* what) const {
  if (kind == LayoutKind::kNone) return;
  RZ_CHECK(group >= 1, "%s: group size must be at least 1 (got %d)", what, group);
  switch (kind) {
    case LayoutKind::kInt4: RZ_CHECK(bits == 4, "%s: int4 layout with bits=%d", what, bits); break;
    case LayoutKind::kInt8: RZ_CHECK(bits == 8, "%s: int8 layout with bits=%d", what, bits); break;
    case LayoutKind::kUniform:
      RZ_CHECK(bits >= 2 && bits <= 8, "%s: uniform absmax layout needs 2..8 bits (got %d)", what, bits);
      break;
    case LayoutKind::kMixedRows:
      RZ_CHECK(period >= 2, "%s: mixed-rows layout needs a period of at least 2 (got %lld)", what,
               (long long)period);
      break;
    default: break;
  }
  if (kind == LayoutKind::kTernary || kind == LayoutKind::kMixedRows)
    RZ_CHECK(beta > 0.0f && std::isfinite(beta), "%s: ternary beta must be positive (got %g)", what, double(beta));
}

// ---------------------------------------------------------------- matrices

void check_quantizable(const std::string& name, const Tensor& w, const WeightLayout& layout) {
  layout.validate(name.c_str());
  RZ_CHECK(w.defined() && (w.dim() == 1 || w.dim() == 2), "%s: a weight to quantize must be 1-D or 2-D (got %s)",
           name.c_str(), w.shape_str().c_str());
  if (!layout.quantized()) return;
  const int64_t d_in = w.size(-1);
  RZ_CHECK(d_in % layout.group == 0,
           "%s: input dimension %lld is not divisible by the quantization group size %d (shape %s)", name.c_str(),
           (long long)d_in, layout.group, w.shape_str().c_str());
}

namespace {
inline int64_t rows_of(const Tensor& w) { return w.dim() == 2 ? w.size(0) : 1; }

// Fake quant of row i of src [.., d_in] into dst; false when a scale is not a finite fp16.
inline bool fake_quant_matrix_row(const float* src, float* dst, int64_t i, int64_t d_in, const WeightLayout& layout) {
  const QuantGroupFormat f = layout.row_format(i);
  bool ok = true;
  for (int64_t off = i * d_in; off < (i + 1) * d_in; off += f.group)
    ok &= fake_quant_group(src + off, f, dst + off) <= kF16Max;  // false for inf and NaN
  return ok;
}
}  // namespace

QuantizedWeight quantize_weight(const std::string& name, const Tensor& w, const WeightLayout& layout) {
  check_quantizable(name, w, layout);
  RZ_CHECK(layout.quantized(), "%s: quantize_weight needs a quantized layout (got none)", name.c_str());
  QuantizedWeight q;
  q.d_out = rows_of(w);
  q.d_in = w.size(-1);
  q.layout = layout;
  const int64_t ng = q.d_in / layout.group;
  q.codes.resize(size_t(q.d_out * q.d_in));
  q.scales.resize(size_t(q.d_out * ng));
  const float* src = w.data();
  int64_t bad_row = -1;  // first row with a non-finite value or an fp16-overflowing scale
#pragma omp parallel for schedule(static) reduction(max : bad_row) if (w.numel() >= kParallelMin)
  for (int64_t i = 0; i < q.d_out; ++i) {
    const float* row = src + i * q.d_in;
    bool ok = true;
    for (int64_t k = 0; k < q.d_in; ++k) ok &= std::isfinite(row[k]);
    if (!ok) {
      bad_row = std::max(bad_row, i);
      continue;
    }
    const QuantGroupFormat f = layout.row_format(i);
    quantize_row(row, q.d_in, f, q.codes.data() + i * q.d_in, q.scales.data() + i * ng);
    for (int64_t g = 0; g < ng; ++g)
      if (!(q.scales[size_t(i * ng + g)] <= kF16Max)) bad_row = std::max(bad_row, i);
  }
  RZ_CHECK(bad_row < 0,
           "%s: row %lld has a non-finite value or a scale beyond the fp16 range (|w| too large); cannot quantize",
           name.c_str(), (long long)bad_row);
  return q;
}

// out: allocated with w's shape when it has no data, else it must hold as many elements as w.
static void fake_quant_output(const std::string& name, const Tensor& w, Tensor& out) {
  if (out.data() == nullptr) out = Tensor::empty(w.shape());
  RZ_CHECK(out.numel() == w.numel(), "%s: fake-quant output has shape %s, expected %s", name.c_str(),
           out.shape_str().c_str(), w.shape_str().c_str());
}

void fake_quant_weight(const std::string& name, const Tensor& w, Tensor& out, const WeightLayout& layout) {
  check_quantizable(name, w, layout);
  fake_quant_output(name, w, out);
  if (!layout.quantized()) {
    if (out.data() != w.data()) out.copy_from(w);
    return;
  }
  const int64_t d_out = rows_of(w), d_in = w.size(-1);
  const float* src = w.data();
  float* dst = out.data();
  int64_t bad_row = -1;
#pragma omp parallel for schedule(static) reduction(max : bad_row) if (w.numel() >= kParallelMin)
  for (int64_t i = 0; i < d_out; ++i)
    if (!fake_quant_matrix_row(src, dst, i, d_in, layout)) bad_row = std::max(bad_row, i);
  RZ_CHECK(bad_row < 0, "%s: row %lld has a non-finite quantizer scale (non-finite weights, or |w| too large "
           "for an fp16 scale)", name.c_str(), (long long)bad_row);
}

void fake_quant_weights(const std::vector<FakeQuantJob>& jobs) {
  // Chunks of whole rows, ~kParallelMin elements each, over all jobs.
  struct Chunk {
    int job;
    int64_t row0, rows;
  };
  std::vector<Chunk> chunks;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const FakeQuantJob& job = jobs[j];
    RZ_CHECK(job.w != nullptr && job.out != nullptr, "%s: fake-quant job without input or output", job.name.c_str());
    const Tensor& w = *job.w;
    Tensor& out = *job.out;
    check_quantizable(job.name, w, job.layout);
    fake_quant_output(job.name, w, out);
    const int64_t d_out = rows_of(w), d_in = w.size(-1);
    const int64_t per = std::max<int64_t>(1, kParallelMin / std::max<int64_t>(d_in, 1));
    for (int64_t r = 0; r < d_out; r += per) chunks.push_back({int(j), r, std::min(per, d_out - r)});
  }
  std::vector<int64_t> bad(jobs.size(), -1);
  const int64_t nc = int64_t(chunks.size());
#pragma omp parallel for schedule(dynamic, 1) if (nc > 1)
  for (int64_t c = 0; c < nc; ++c) {
    const Chunk& ch = chunks[size_t(c)];
    const FakeQuantJob& job = jobs[size_t(ch.job)];
    const int64_t d_in = job.w->size(-1);
    const float* src = job.w->data();
    float* dst = job.out->data();
    for (int64_t i = ch.row0; i < ch.row0 + ch.rows; ++i) {
      bool ok;
      if (job.layout.quantized()) {
        ok = fake_quant_matrix_row(src, dst, i, d_in, job.layout);
      } else {
        if (dst != src) std::copy(src + i * d_in, src + (i + 1) * d_in, dst + i * d_in);
        ok = true;
      }
      if (!ok) {
#pragma omp critical(razor_fake_quant_bad)
        bad[size_t(ch.job)] = std::max(bad[size_t(ch.job)], i);
      }
    }
  }
  for (size_t j = 0; j < jobs.size(); ++j)
    RZ_CHECK(bad[j] < 0, "%s: row %lld has a non-finite quantizer scale (non-finite weights, or |w| too large "
             "for an fp16 scale)", jobs[j].name.c_str(), (long long)bad[j]);
}

void QuantizedWeight::dequantize_into(float* dst) const {
  const int64_t ng = groups_per_row();
#pragma omp parallel for schedule(static) if (d_out * d_in >= kParallelMin)
  for (int64_t i = 0; i < d_out; ++i)
    dequantize_row(codes.data() + i * d_in, scales.data() + i * ng, d_in, layout.group, dst + i * d_in);
}

Tensor QuantizedWeight::dequantize() const {
  Tensor out = Tensor::empty({d_out, d_in});
  dequantize_into(out.data());
  return out;
}

bool layout_packable(const WeightLayout& l) {
  if (!packed_group_supported(l.group)) return false;
  return l.kind == LayoutKind::kTernary || l.kind == LayoutKind::kInt4 ||
         (l.kind == LayoutKind::kMixedRows && packed_period_supported(l.period));
}

PackedMatrix fake_quant_weight_packed(const std::string& name, const Tensor& w, Tensor& out, const WeightLayout& layout) {
  const QuantizedWeight q = quantize_weight(name, w, layout);
  fake_quant_output(name, w, out);
  q.dequantize_into(out.data());
  return pack_matrix(packed_desc_for(layout, q.d_out, q.d_in, false, name), q.codes.data(), q.scales.data(),
                     name.c_str());
}

PackedDesc packed_desc_for(const WeightLayout& l, int64_t d_out, int64_t d_in, bool ternary5,
                           const std::string& name) {
  PackedDesc d;
  d.G = l.group;
  d.d_out = d_out;
  d.d_in = d_in;
  switch (l.kind) {
    case LayoutKind::kTernary:
      d.layout = ternary5 ? PackedLayout::Ternary5 : PackedLayout::Ternary2;
      break;
    case LayoutKind::kInt4: d.layout = PackedLayout::Int4; break;
    case LayoutKind::kMixedRows:
      d.layout = PackedLayout::Mixed;
      RZ_CHECK(packed_period_supported(l.period), "%s: super-group period %lld not packable (2..1024)", name.c_str(),
               (long long)l.period);
      d.P = int32_t(l.period);
      break;
    default: fail("%s: layout %s has no packed form (packable: ternary, int4, mixed rows)", name.c_str(), l.str().c_str());
  }
  check_packed_desc(d, name.c_str());
  return d;
}

}  // namespace razor
