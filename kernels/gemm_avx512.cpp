// AVX-512F tier of sgemm: 12x32 micro-kernel (24 zmm accumulators, 2 for B, 1 broadcast of
// A, of the 32 registers). Same driver and micro-kernel code as the AVX2 tier, only the vector
// type and tile differ, so the logic this tier runs is tested on AVX2 machines too; the tier
// itself runs (and its test runs) only where isa_supported(Isa::Avx512).
// Blocking: B sliver kc x 32 = 32 KiB (L1 on Zen 4 / Sapphire Rapids 48 KiB), A block
// 144 x 256 = 144 KiB of a >= 1 MiB L2.
#include <immintrin.h>

#include "kernels/gemm_blocked.h"
#include "kernels/gemm_tiers.h"

namespace razor {
namespace {

struct V512 {
  using T = __m512;
  static constexpr int W = 16;
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T x) { _mm512_storeu_ps(p, x); }
  static T set1(float f) { return _mm512_set1_ps(f); }
  static T zero() { return _mm512_setzero_ps(); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  // out[kk * W + l] = src[l * ld + kk] for a W x W block (gemm_small_m_nt).
  static void transpose_rows(const float* src, int64_t ld, float* out) {
    for (int kk = 0; kk < W; ++kk)
      for (int l = 0; l < W; ++l) out[kk * W + l] = src[l * ld + kk];
  }
};

}  // namespace

RAZOR_SGEMM_TIER(sgemm_avx512) {
  gemm_detail::gemm_blocked<V512, 12, 2>({144, 256, 4096}, threads, trans_a, trans_b, M, N, K, alpha, A, lda, B,
                                         ldb, beta, C, ldc);
}

float fma_chains_avx512(int64_t iters, int* lanes) {
  *lanes = V512::W;
  return gemm_detail::fma_chains<V512>(iters);
}

}  // namespace razor
