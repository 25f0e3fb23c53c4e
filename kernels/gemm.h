// fp32 GEMM for training: C = alpha * op(A) * op(B) + beta * C, row-major.
//   op(A) is [M, K]: A is stored [M, K] (lda >= K), or [K, M] when trans_a (lda >= M).
//   op(B) is [K, N]: B is stored [K, N] (ldb >= N), or [N, K] when trans_b (ldb >= K).
//   C is [M, N] (ldc >= N). beta == 0 means C is not read (may hold NaN).
// sgemm() dispatches on active_isa() to the AVX-512 / AVX2 / scalar tiers and threads over
// tiles with OpenMP; call it from outside any parallel region. sgemm_ref is the scalar
// definition the SIMD tiers are tested against.
#pragma once
#include <cstdint>

namespace razor {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The machine's fp32 multiply-add peak as the active tier reaches it with no memory traffic:
// `threads` threads each run 12 independent FMA chains in registers for `iters` steps
// (kernels/gemm_blocked.h, fma_chains). Returns GFLOP/s (2 flops per lane per FMA) over the
// wall time of the parallel region; *result (if given) gets thread 0's chain sum, which
// fma_chains_ref reproduces. `razor bench gemm --peak` divides a GEMM's rate by it.
double fma_peak_gflops(int threads, int64_t iters, float* result = nullptr);
// Lanes of the active tier's register (1 for the scalar tier).
int fma_lanes();
// fma_chains in scalar code: fused (std::fma, the SIMD tiers) or a * b + c (the scalar tier).
float fma_chains_ref(int64_t iters, bool fused);

}  // namespace razor
