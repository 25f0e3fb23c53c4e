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
  // out[kk * W + l] = src[l * ld + kk] for an 8 x 8 block (gemm_small_m_nt): in registers.
  static void transpose_rows(const float* src, int64_t ld, float* out) {
    __m256 r[8];
    for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(src + l * ld);
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_store_ps(out + 0, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_store_ps(out + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_store_ps(out + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_store_ps(out + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_store_ps(out + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_store_ps(out + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_store_ps(out + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_store_ps(out + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
  }
};

}  // namespace

RAZOR_SGEMM_TIER(sgemm_avx2) {
  gemm_detail::gemm_blocked<V256, 6, 2>({144, 256, 4096}, threads, trans_a, trans_b, M, N, K, alpha, A, lda, B,
                                        ldb, beta, C, ldc);
}

float fma_chains_avx2(int64_t iters, int* lanes) {
  *lanes = V256::W;
  return gemm_detail::fma_chains<V256>(iters);
}

}  // namespace razor
