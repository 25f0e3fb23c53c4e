// llama.cpp block encodings (Q4_0, Q8_0, TQ1_0, TQ2_0, F16, F32, BF16) <-> razor's integer
// form (int8 codes per weight + one fp16-representable float scale per group of G weights of
// a row), and the per-tensor decision of which GGUF type holds razor's layout exactly.
//
// Every block value is d * q with d the block's fp16 scale and q a small integer, so razor's
// integers map into blocks without any arithmetic on the weights: the exporter never
// re-quantizes (the ternary quantizer is not idempotent, NUMERICS.md §1). A block type is
// exact for a tensor when (a) every block lies inside one razor group, i.e. G is a multiple of
// the block size, (b) every code fits the block's integer grid, and (c) scales are fp16.
//
//   type   block  bytes  grid      exact for razor when
//   TQ2_0  256    66     -1..1     ternary codes, G % 256 == 0        (2.06 bits/weight)
//   TQ1_0  256    54     -1..1     ternary codes, G % 256 == 0        (1.69 bits/weight)
//   Q4_0   32     18     -8..7     codes in -8..7 (ternary, int4, mixed rows), G % 32 == 0
//   Q8_0   32     34     -128..127 any int8 codes, G % 32 == 0
//   F16    1      2      -         every q*s is an fp16 number (always for ternary codes)
//   F32    1      4      -         always (|q| <= 127 has 7 bits, s has 11: q*s fits 24)
//
// Deliberately not here: the container (gguf/gguf), model names and metadata (gguf/export),
// lossy re-quantization to K-quants.
#pragma once
#include <cstdint>
#include <string>

#include "gguf/gguf.h"

namespace razor {

// Q4_0: 32 weights. value(k) = d * (nibble(k) - 8).
//   bytes 0..1   d (fp16)
//   bytes 2..17  qs[j], j = 0..15: low nibble = weight j, high nibble = weight j + 16
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");

// Q8_0: 32 weights. value(k) = d * qs[k].
//   bytes 0..1   d (fp16)      bytes 2..33  qs[k] (int8), weight k
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

// TQ2_0: 256 weights, trit t = q + 1 in 2 bits. value(k) = d * (t(k) - 1).
//   bytes 0..63  qs[c*32 + m], c = 0..1, m = 0..31: bits 2n..2n+1 hold weight c*128 + n*32 + m
//   bytes 64..65 d (fp16)
struct BlockTQ2_0 {
  uint8_t qs[64];
  uint16_t d;
};
static_assert(sizeof(BlockTQ2_0) == 66, "TQ2_0 block is 66 bytes");

// TQ1_0: 256 weights, 5 trits per byte in base 3 stored as a fixed-point fraction:
// byte = ceil(v * 256 / 243), v = sum_n t_n * 3^(4-n) (t_0 the most significant), so
// trit n is recovered as ((uint8_t)(byte * 3^n) * 3) >> 8. value(k) = d * (t(k) - 1).
//   bytes 0..31  qs[m]:      trits n = 0..4 are weights m + 32n          (weights 0..159)
//   bytes 32..47 qs[32 + m]: trits n = 0..4 are weights 160 + m + 16n    (weights 160..239)
//   bytes 48..51 qh[j]:      trits n = 0..3 are weights 240 + j + 4n, trit 4 is 0 (240..255)
//   bytes 52..53 d (fp16)
struct BlockTQ1_0 {
  uint8_t qs[48];
  uint8_t qh[4];
  uint16_t d;
};
static_assert(sizeof(BlockTQ1_0) == 54, "TQ1_0 block is 54 bytes");

// One block from codes (fp16 d given as a float; it must be fp16-representable). Codes must
// lie in the type's grid (RZ_ASSERT: the caller decided the type with choose_gguf_type).
void encode_q4_0(const int8_t* q /*32*/, float d, BlockQ4_0* out);
void encode_q8_0(const int8_t* q /*32*/, float d, BlockQ8_0* out);
void encode_tq2_0(const int8_t* q /*256*/, float d, BlockTQ2_0* out);
void encode_tq1_0(const int8_t* q /*256*/, float d, BlockTQ1_0* out);
// Back to codes and d.
void decode_q4_0(const BlockQ4_0& b, int8_t* q /*32*/, float* d);
void decode_q8_0(const BlockQ8_0& b, int8_t* q /*32*/, float* d);
void decode_tq2_0(const BlockTQ2_0& b, int8_t* q /*256*/, float* d);
void decode_tq1_0(const BlockTQ1_0& b, int8_t* q /*256*/, float* d);

// The types razor encodes and decodes (the GgmlType values).
bool gguf_type_supported(uint32_t type);
// Bytes of one row of n weights.
uint64_t gguf_row_bytes(GgmlType type, int64_t n);

// One row of razor integers: codes [n], scales [n / G] -> blocks of `type` (F16 / F32 / BF16
// get the products q * s). The type must be exact for the row (see choose_gguf_type).
void encode_row(GgmlType type, const int8_t* codes, const float* scales, int64_t n, int group, uint8_t* out);
// Floats (norms, unquantized matrices) -> F32 / F16 / BF16 (rounding to nearest even).
void encode_floats(GgmlType type, const float* x, int64_t n, uint8_t* out);
// Blocks of Q4_0 / Q8_0 / TQ1_0 / TQ2_0 -> codes [n] and one scale per block [n / block].
void decode_row_codes(GgmlType type, const uint8_t* in, int64_t n, int8_t* codes, float* block_scales);
// Any supported type -> floats [n] (value = d * q, as llama.cpp dequantizes).
void dequantize_row(GgmlType type, const uint8_t* in, int64_t n, float* out);

// ---- the per-tensor decision
struct CodeStats {
  int min_code = 0, max_code = 0;
  bool scales_fp16 = true;       // every scale finite and fp16-representable
  bool values_f16_exact = true;  // every q*s is exactly an fp16 number
};
// codes [d_out, d_in], scales [d_out, d_in / G].
CodeStats code_stats(const int8_t* codes, const float* scales, int64_t d_out, int64_t d_in, int group);

struct TypeChoice {
  GgmlType type = GgmlType::kF32;
  // The type the layout would have in llama.cpp with no constraint (TQ for ternary, Q4_0 for
  // codes in -8..7, Q8_0 otherwise); widened = type differs from it (more bits per weight).
  GgmlType natural = GgmlType::kF32;
  bool widened = false;
  std::string reason;  // why, when widened
};
// ternary_type: TQ2_0 (default, faster kernels) or TQ1_0 (smaller). Never lossy: the result
// represents every code and scale exactly. Throws (naming `name`) when scales are not fp16.
TypeChoice choose_gguf_type(const std::string& name, const CodeStats& st, int64_t d_in, int group,
                            GgmlType ternary_type = GgmlType::kTQ2_0);

}  // namespace razor
