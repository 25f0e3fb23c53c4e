// The per-ISA tiers of sgemm (kernels/gemm.h), each in its own file compiled with that ISA's
// flags: gemm_scalar.cpp (portable C++), gemm_avx2.cpp (AVX2+FMA, 6x16 micro-kernel),
// gemm_avx512.cpp (AVX-512F, 12x32 micro-kernel). They share the driver in gemm_blocked.h.
// Preconditions (checked by sgemm): M, N, K >= 1, alpha != 0, threads >= 1, and the caller is
// outside any OpenMP parallel region when threads > 1.
#pragma once
#include <cstdint>

namespace razor {

#define RAZOR_SGEMM_TIER(name)                                                                              \
  void name(int threads, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,          \
            const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc)
RAZOR_SGEMM_TIER(sgemm_scalar);
RAZOR_SGEMM_TIER(sgemm_avx2);
RAZOR_SGEMM_TIER(sgemm_avx512);

// gemm_detail::fma_chains for each tier (the FMA throughput probe of `razor bench gemm --peak`);
// *lanes gets the tier's register width in floats.
float fma_chains_scalar(int64_t iters, int* lanes);
float fma_chains_avx2(int64_t iters, int* lanes);
float fma_chains_avx512(int64_t iters, int* lanes);

}  // namespace razor
