// Weight quantizers (NUMERICS.md §1) and the per-tensor weight layout they are applied with.
//
// Everything here works per group of G consecutive input columns of one row of a weight
// W [d_out, d_in] (row = output channel; an embedding table [V, C] groups along C):
//   - ternary ("1.58-bit"): s = fp16(max(beta * mean|w|, eps)), t = clamp(rne(w / s), -1, 1)
//   - n-bit absmax, n = 2..8: M = 2^(n-1) - 1, s = fp16(max(max|w|, eps) / M),
//     q = clamp(rne(w / s), -M, M)
// rne = round half to even (std::nearbyint), eps = 1e-5, fp32 arithmetic. The scale is
// rounded to fp16 *before* the integers are computed, so training (fake quant), packing
// (quantize_weight) and the kernels see exactly the same integers and scales.
// mean|w| is summed in a fixed 8-lane order, so the codes are bit-identical on every ISA
// and build (portable, AVX2, NEON) and between fake_quant_* and quantize_*.
//
// Caveat of the fp16 scale (spec-faithful, worth knowing): the ternary property "non-zero iff
// |w| > mean|w|" holds exactly only when beta*mean|w| is fp16-representable. When rounding
// lowers s, an element at exactly mean|w| gives w/s slightly above 0.5 and becomes +-1
// (e.g. a group of equal magnitudes 0.1: s = fp16(0.2) = 0.19995..., t = +-1).
//
// Deliberately not here: packing into blocks (kernels/), the STE wiring (autograd ste op),
// rho -> layout (quant/plan.h), activation quantization (quant/act_quant.h), PTQ (quant/ptq.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/qformat.h"

namespace razor {

constexpr float kQuantEps = 1e-5f;

// How one group is quantized.
struct QuantGroupFormat {
  enum class Kind { kTernary, kAbsmax };
  Kind kind = Kind::kTernary;
  int bits = 2;       // ternary: 2 (stored in 2 bits, log2(3) = 1.58 of information); absmax: 2..8
  int group = 64;     // G
  float beta = 2.0f;  // ternary only: s = beta * mean|w|

  static QuantGroupFormat ternary(int group, float beta = 2.0f);
  static QuantGroupFormat absmax(int bits, int group);
  // Largest code magnitude: 1 for ternary, 2^(bits-1) - 1 for absmax (7 for 4-bit, 127 for 8).
  int qmax() const { return kind == Kind::kTernary ? 1 : (1 << (bits - 1)) - 1; }
  // Information bits per weight, excluding scales: log2(3) for ternary, bits otherwise.
  double weight_bits() const;
  // Throws razor::Error naming `what` when bits / group / beta are out of range.
  void validate(const char* what) const;
  std::string str() const;  // "ternary G=64", "int4 G=64"
};

// ---- one group / one row (raw pointers; the hot path of QAT and packing)
// The scale quantize_group uses for w [G], already rounded to fp16 (GPTQ fixes it when its
// column sweep enters the group, then rounds each column on it).
float group_scale(const float* w, const QuantGroupFormat& f);
// w [G] -> codes [G] in [-qmax, qmax], returns the scale (an fp16-representable float).
// Non-finite input gives unspecified (but in-range) codes; quantize_weight rejects it first.
float quantize_group(const float* w, const QuantGroupFormat& f, int8_t* codes);
// w [G] -> out [G] = dequantized values; equal bit for bit to codes * scale of quantize_group.
// NaN in -> NaN out (no silent repair during training). Returns the scale.
float fake_quant_group(const float* w, const QuantGroupFormat& f, float* out);
// A row of n values in groups of f.group: codes [n], scales [n / G]. n % G must be 0.
void quantize_row(const float* w, int64_t n, const QuantGroupFormat& f, int8_t* codes, float* scales);
void fake_quant_row(const float* w, int64_t n, const QuantGroupFormat& f, float* out);
// out [n] = codes * scales[k / G] (fp32 product).
void dequantize_row(const int8_t* codes, const float* scales, int64_t n, int group, float* out);

// ---- per-tensor layout: which format each row of a weight matrix uses
enum class LayoutKind {
  kNone,       // not quantized (norms; full-precision reference)
  kTernary,    // every row ternary
  kInt4,       // every row 4-bit absmax
  kInt8,       // every row 8-bit absmax
  kMixedRows,  // super-groups of rows: row i is 4-bit when i % period == 0, else ternary
  kUniform,    // every row n-bit absmax, n in {2, 3, 5, 6, 7} (PTQ baselines); n = 4 / 8 use kInt4 / kInt8
};

struct WeightLayout {
  LayoutKind kind = LayoutKind::kNone;
  int group = 64;     // G (unused for kNone)
  int bits = 0;       // kUniform: n; kInt4: 4; kInt8: 8; kTernary / kMixedRows: 2 (storage of the ternary rows)
  int64_t period = 1;  // kMixedRows: P >= 2 (P = 1 is kInt4)
  float beta = 2.0f;  // ternary rows

  static WeightLayout none();
  static WeightLayout ternary(int group, float beta = 2.0f);
  // n-bit absmax for every row; n = 4 -> kInt4, n = 8 -> kInt8, else kUniform.
  static WeightLayout uniform(int bits, int group);
  // period P = max(1, floor(1/rho)); P = 1 -> kInt4. P = 0 means "no 4-bit rows" -> kTernary.
  static WeightLayout mixed_rows(int64_t period, int group, float beta = 2.0f);

  bool quantized() const { return kind != LayoutKind::kNone; }
  bool row_is_4bit(int64_t row) const;  // kMixedRows / kInt4
  QuantGroupFormat row_format(int64_t row) const;  // kind must not be kNone
  // Average information bits per weight of a [d_out, d_in] matrix, without / with 16/G.
  double weight_bits(int64_t d_out) const;
  double weight_bits_with_scales(int64_t d_out) const;
  // Number of 4-bit rows among d_out (kMixedRows: ceil(d_out / P)).
  int64_t rows_4bit(int64_t d_out) const;
  std::string str() const;  // "ternary G=64", "int4 G=64", "mixed-rows P=8 G=64", "int3 G=64", "none"
  void validate(const char* what) const;
};

// The integers and scales of one weight matrix; what packing re-lays into blocks.
struct QuantizedWeight {
  int64_t d_out = 0, d_in = 0;
  WeightLayout layout;
  std::vector<int8_t> codes;  // [d_out, d_in], row-major
  std::vector<float> scales;  // [d_out, d_in / G], each fp16-representable
  int64_t groups_per_row() const { return d_in / layout.group; }
  Tensor dequantize() const;  // [d_out, d_in]
  void dequantize_into(float* out) const;  // d_out * d_in floats, row-major
};

// Throws razor::Error "<name>: ..." unless w is 2-D (or 1-D, one row) with d_in % G == 0.
void check_quantizable(const std::string& name, const Tensor& w, const WeightLayout& layout);

// w [d_out, d_in] -> codes and scales. Rejects non-finite values and scales beyond fp16 range,
// naming the tensor. OpenMP over rows.
QuantizedWeight quantize_weight(const std::string& name, const Tensor& w, const WeightLayout& layout);
// w [d_out, d_in] -> out [d_out, d_in] dequantized (fake quant for the QAT forward). out is
// allocated with w's shape when it has no data, else must have w's numel; it may be w itself
// (in place). kNone copies. OpenMP over rows.
// Equal bit for bit to quantize_weight(...).dequantize(). Throws when a scale overflows fp16.
void fake_quant_weight(const std::string& name, const Tensor& w, Tensor& out, const WeightLayout& layout);

// Fake quant of many weights in one parallel region (one training step's worth): the rows of
// all jobs are split into chunks scheduled dynamically, so small matrices do not each pay a
// fork/join. Same results as fake_quant_weight per job. Each job's out is allocated when
// undefined. Errors name the job's tensor.
struct FakeQuantJob {
  std::string name;
  const Tensor* w = nullptr;  // [d_out, d_in]
  Tensor* out = nullptr;      // [d_out, d_in]
  WeightLayout layout;
};
void fake_quant_weights(const std::vector<FakeQuantJob>& jobs);

// Whether packed_desc_for maps the layout (ternary, int4, mixed rows with 2 <= P <= 1024; G 64,
// 128 or 256).
bool layout_packable(const WeightLayout& l);
// fake_quant_weight's values into out (allocated when it has no data) and the PackedMatrix of
// the same codes and fp16 scales (ternary rows as ternary2): a product on the packed integer
// kernels equals one with out up to fp32 summation order. The layout must be packable.
PackedMatrix fake_quant_weight_packed(const std::string& name, const Tensor& w, Tensor& out, const WeightLayout& layout);

// The PackedDesc a weight layout maps to (ternary5: all-ternary tensors in 5 trits per byte).
// Throws naming `name` for a layout with no packed form (uniform n-bit, int8, none).
PackedDesc packed_desc_for(const WeightLayout& l, int64_t d_out, int64_t d_in, bool ternary5, const std::string& name);

}  // namespace razor
