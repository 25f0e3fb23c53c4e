// Activation (A8) and KV-cache (KV8) quantization (NUMERICS.md §4).
//
// A8: per token (row of x [N, C]), groups of G consecutive features, 8-bit absmax:
//     s = max(max|x|, eps) / 127 in fp32 (NOT rounded to fp16), q = clamp(rne(x / s), -127, 127).
// KV8: one 8-bit absmax scale per (token, KV head) over head_dim D; K after q/k-norm and RoPE,
//     V as it leaves v_proj. It is A8 with G = D applied to [B, T, K, D].
// The packed kernels quantize their input with quantize_a8, and the QAT forward uses
// fake_quant_a8 through the autograd ste op, e.g.
//     ste(x, [G](const Tensor& in, Tensor& out) { fake_quant_a8(in, out, G); })
// fake_quant_* equals quantize_* followed by codes * scales, bit for bit.
//
// Deliberately not here: the KV cache storage (src/infer), weight quantizers (quantize.h).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace razor {

// ---- raw rows (the packed kernels call these)
// x [n] in groups of G -> codes [n], scales [n / G] (fp32). n % G must be 0.
// Non-finite input maps to in-range codes (NaN -> -127); the caller owns NaN checks.
void quantize_a8_row(const float* x, int64_t n, int group, int8_t* codes, float* scales);
// x [n] -> out [n] dequantized (NaN propagates). out may alias x.
void fake_quant_a8_row(const float* x, int64_t n, int group, float* out);

// ---- tensors; x [.., C] is treated as rows of C = last dim. OpenMP over rows.
// Throws razor::Error when C % G != 0 (naming "A8" and the shape).
// codes [numel], scales [numel / G] must be preallocated by the caller.
void quantize_a8(const Tensor& x, int group, int8_t* codes, float* scales);
// out: allocated with x's shape when undefined; otherwise must have x's numel. out may be x.
void fake_quant_a8(const Tensor& x, Tensor& out, int group);

// KV8: x [B, T, K, D] (any shape whose last dim is D = head_dim) -> one scale per vector of D.
void quantize_kv8(const Tensor& x, int8_t* codes, float* scales);
void fake_quant_kv8(const Tensor& x, Tensor& out);

}  // namespace razor
