// Packed-weight integer kernels for inference (NUMERICS.md §4, §10): the A8 activation
// quantizer and y = W x with W a PackedMatrix (qformat.h) and x int8 per-token-per-group.
//   y[n, i] = sum_g (s_w(i,g) * s_x(n,g)) * dot_g,   dot_g = sum_k q_w(i,g,k) * q_x(n,g,k)
// dot_g is exact in int32; the scale product is fp32. One token (N = 1) is the decode GEMV;
// N > 1 the prefill GEMM. qgemm() dispatches once on active_isa() to the AVX-512/VNNI, AVX2,
// NEON (+dotprod) or scalar tier and threads over output rows with OpenMP; call it from
// outside any parallel region. The *_ref functions are the scalar definitions.
// Deliberately not here: the model forward, the KV cache (src/infer).
#pragma once
#include <cstdint>

#include "kernels/qformat.h"

namespace razor {

// A8 (per token, per group of G features): s = max(max|x|, 1e-5) / 127,
// q = clamp(round_half_even(x / s), -127, 127). x [N, C], q [N, C], scales [N, C / G].
void quantize_a8(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales);
void quantize_a8_ref(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales);

// y [N, d_out] = W (packed [d_out, d_in]) times activations q_x [N, d_in] with scales
// s_x [N, d_in / G] (G of W). Overwrites y.
void qgemm(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y);
void qgemm_ref(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y);

// Builds what the active tier's one-token product wants beyond the packed bytes: on the AVX2
// tier the decode copy (W.tiles, DecodeTiles in qformat.h: 8-row interleaved tiles, as many
// bytes again as W's codes and scales), once; nothing elsewhere. Call it before any concurrent
// use of W (the engine's constructor does); qgemm results are the same with or without it.
void qgemm_prepare(const PackedMatrix& W);
// Frees W's packed rows (codes and scales) when it has a decode copy, so the weights are held
// once: every product then runs on the copy (the AVX2 tier; other tiers refuse such a matrix)
// and dequantize_row reads it. No-op without a copy. For matrices nothing will save or export.
void qgemm_release_rows(PackedMatrix& W);

// y_m = W_m x for count matrices sharing the input (same d_in and G), e.g. q/k/v or gate/up:
// for N <= kMultiMaxTokens one parallel region and one pass of the activation sums for all of
// them (decode); above it, qgemm() per matrix. Same results as qgemm() per matrix.
constexpr int64_t kMultiMaxTokens = 4;
void qgemm_multi(const PackedMatrix* const* Ws, float* const* ys, int count, const int8_t* qx, const float* sx,
                 int64_t N);

// ---- Building blocks for a caller's own parallel region (infer/engine's decode: one region
// per token, barriers between the steps). None of them synchronises, allocates or forks.
// Thread th of nt computes its share of qgemm_multi: the same contiguous ranges of 8-row units
// over the matrices' rows in order, so the result equals qgemm_multi / qgemm bit for bit.
// sumx: the per-(token, group) sums of qx, [N, d_in / G] (qgemm_group_sums).
void qgemm_multi_part(const PackedMatrix* const* Ws, float* const* ys, int count, const int8_t* qx,
                      const float* sx, const int32_t* sumx, int64_t N, int th, int nt);
// sums[n * (d_in / G) + g] = sum of the G codes of group g of token n.
void qgemm_group_sums(const int8_t* qx, int64_t N, int64_t d_in, int G, int32_t* sums);
// quantize_a8 on one thread (no parallel loop): the active tier's codes, identical to quantize_a8.
void quantize_a8_serial(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales);

// The implementation tiers, for tests and benchmarks that exercise each one. Dotprod is the
// NEON tier using the ARMv8.2 SDOT instruction; qgemm() picks it when active_isa() is Neon
// and the CPU has it.
enum class QTier { Ref = 0, Avx2, Avx512, Neon, Dotprod };
const char* qtier_name(QTier t);
// Whether this build contains the tier and this CPU can run it.
bool qtier_supported(QTier t);
// The tier qgemm() uses now.
QTier qtier_active();
// The AVX-512 tier extracts ternary code fields with GFNI's GF2P8AFFINEQB where the CPU has it
// (the default there) and with shifts and masks otherwise; both give the same integers. Tests
// switch it to hold both variants to the reference. Asserts the CPU has GFNI when turning it on;
// returns the previous setting.
bool qgemm_avx512_set_gfni(bool on);
// The AVX2 tier's one-token product uses a matrix's decode copy where it has one (the default);
// off, the row kernels. Both give the same integers. Returns the previous setting (tests).
bool qgemm_avx2_set_tiles(bool on);
// qgemm / quantize_a8 on a given tier (must be supported), threaded the same way.
void qgemm_tier(QTier t, const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y);
void quantize_a8_tier(QTier t, const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales);

}  // namespace razor
