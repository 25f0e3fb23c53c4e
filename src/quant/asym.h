// Calibrated-range baselines for `razor quantize` (issue 11), next to the symmetric absmax
// quantizers of quantize.h:
//   - asymmetric RTN, n = 2..8 bits: a range [lo, hi] (always containing 0, so 0 is exact)
//     -> scale s = max(hi - lo, eps) / (2^n - 1), zero point z = clamp(rne(-lo / s), 0, 2^n - 1),
//     q = clamp(rne(x / s) + z, 0, 2^n - 1), x̂ = (q - z) s. Weights take lo / hi from each
//     group of G values (min / max of the tensor's group); activations from calibration data
//     (a static per-tensor range).
//   - power-of-two (log2) with sign, n = 2..8 bits: 1 sign bit and 2^(n-1) - 1 magnitude levels
//     m_k = s 2^(-k), k = 0 .. K-1, K = 2^(n-1) - 1, plus an exact zero; s = max|w| of the group.
//     k = rne(-log2(|w| / s)) (rounding in the log domain); k >= K, w = 0 or s < eps give 0.
//     Codes: 0 for zero, sign(w) (k + 1) otherwise.
// rne = round half to even (std::nearbyint), fp32 arithmetic, eps = 1e-5 (quantize.h). Scales
// and zero points are fp32, not fp16: these are accuracy baselines, not packable formats.
// Deliberately not here: model traversal (nn/ptq_model.h), calibration forwards.
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace razor {

struct AsymParams {
  float scale = 1;
  int zero_point = 0;
  int qmax = 0;  // 2^n - 1
};

// The parameters for the range [lo, hi] (extended to contain 0) at `bits` bits.
AsymParams asym_params(float lo, float hi, int bits);
// One value -> its code in [0, qmax] / its dequantized value.
int asym_code(float x, const AsymParams& p);
float asym_dequant(float x, const AsymParams& p);
// One group of n values: codes [n] (may be null), out [n] (may be null, or alias w). Returns the params.
AsymParams asym_group(const float* w, int64_t n, int bits, uint8_t* codes, float* out);

// One group of log2 quantization: codes [n] (may be null), out [n] (may be null, or alias w).
// Returns the scale s (max|w|).
float log2_group(const float* w, int64_t n, int bits, int8_t* codes, float* out);

enum class CalibratedKind { Asym, Log2 };
// w [d_out, d_in] -> dequantized [d_out, d_in], per group of G consecutive columns of a row.
// Errors name the tensor (d_in % G, bits out of 2..8, non-finite values). OpenMP over rows.
Tensor calibrated_quant_weight(const std::string& name, const Tensor& w, CalibratedKind kind, int bits, int group);

// Bits per weight of these formats, with their per-group parameters: asym n + (16 + n) / G
// (an fp16-sized scale and an n-bit zero point per group), log2 n + 16 / G.
double calibrated_bits(CalibratedKind kind, int bits, int group);

}  // namespace razor
