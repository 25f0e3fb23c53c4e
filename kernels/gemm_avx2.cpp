// AVX2+FMA tier of sgemm: 6x16 micro-kernel (12 ymm accumulators, 2 for B, 1 broadcast of A),
// the classic Haswell/Zen shape: 2 B loads + 6 broadcasts feed 12 FMAs per depth step, which
// keeps both FMA pipes busy. Blocking for Zen 3 (32 KiB L1d, 512 KiB L2 per core, 32 MiB L3):
// a B sliver kc x 16 = 16 KiB sits in L1, an A block mc x kc = 144 KiB in L2.
#include <immintrin.h>

#include "kernels/gemm_blocked.h"
#include "kernels/gemm_tiers.h"

namespace razor {
namespace {

struct V256 {
  using T = __m256;
  static constexpr int W = 8;
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T x) { _mm256_storeu_ps(p, x); }
  static T set1(float f) { return _mm256_set1_ps(f); }
  static T zero() { return _mm256_setzero_ps(); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
};

}  // namespace

RAZOR_SGEMM_TIER(sgemm_avx2) {
  gemm_detail::gemm_blocked<V256, 6, 2>({144, 256, 4096}, threads, trans_a, trans_b, M, N, K, alpha, A, lda, B,
                                        ldb, beta, C, ldc);
}

}  // namespace razor
