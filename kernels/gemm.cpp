// sgemm dispatch. Placeholder tier: the scalar reference, threaded over rows of C.
// (The cache-blocked AVX2 / AVX-512 tiers replace this.)
#include "kernels/gemm.h"

namespace razor {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; ++i) {
    const float* Ai = trans_a ? A + i : A + i * lda;
    sgemm_ref(trans_a, trans_b, 1, N, K, alpha, Ai, lda, B, ldb, beta, C + i * ldc, ldc);
  }
}

}  // namespace razor
