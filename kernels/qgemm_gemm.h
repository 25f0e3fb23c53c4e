// Prefill GEMM path of the packed-weight kernels (qgemm.h) for N >= kQgemmGemmMinTokens:
// instead of decoding every packed row once per 4 tokens, a tile of rows is unpacked once
// into unsigned offset codes in VNNI order and an int8 register-blocked GEMM runs over all
// tokens (design and figures in docs/packed.md). Same result as qgemm_ref: integer group dots
// exact, fp32 scale products summed over groups in order (one fused multiply-add per group).
// The ARM tiers hold signed codes instead (SDOT is signed x signed: no offset correction) and
// multiply then add, bitwise equal to qgemm_ref (qgemm_gemm_arm.h).
// Deliberately not here: the row-at-a-time GEMV tiers (qgemm_<isa>.cpp) and their dispatch.
#pragma once
#include <cstdint>

#include "kernels/qgemm.h"

namespace razor {

// qgemm_tier() routes calls with at least this many tokens to the GEMM path when the tier
// has one. Below it the row kernels (4 tokens per weight decode) are as fast.
constexpr int64_t kQgemmGemmMinTokens = 8;

// Whether tier t has a GEMM path in this build and this CPU can run it (AVX2, AVX-512 VNNI,
// NEON, NEON + dotprod).
bool qgemm_gemm_supported(QTier t);
// y [N, d_out] = W q_x on the GEMM path of tier t (any N >= 1; threaded with OpenMP over
// row tiles and token chunks; call from outside a parallel region). Overwrites y.
void qgemm_gemm_tier(QTier t, const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y);

// The per-ISA entry points (qgemm_gemm_<isa>.cpp).
void qgemm_gemm_avx2(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y);
void qgemm_gemm_avx512(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y);
void qgemm_gemm_neon(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y);
void qgemm_gemm_dotprod(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y);

}  // namespace razor
