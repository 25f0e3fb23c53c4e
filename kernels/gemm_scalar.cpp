// Scalar tier of sgemm: the blocked driver with a one-float "vector", for CPUs without a SIMD
// tier (and for RAZOR_ISA=ref). Plain a*b+c (the build uses -ffp-contract=off), so it gives the
// same bits on every compiler target.
#include "kernels/gemm_blocked.h"
#include "kernels/gemm_tiers.h"

namespace razor {
namespace {

struct VScalar {
  using T = float;
  static constexpr int W = 1;
  static T load(const float* p) { return *p; }
  static void store(float* p, T x) { *p = x; }
  static T set1(float f) { return f; }
  static T zero() { return 0.0f; }
  static T fmadd(T a, T b, T c) { return a * b + c; }
  static T mul(T a, T b) { return a * b; }
  // out[kk * W + l] = src[l * ld + kk] for a W x W block (gemm_small_m_nt).
  static void transpose_rows(const float* src, int64_t, float* out) { out[0] = src[0]; }
};

}  // namespace

RAZOR_SGEMM_TIER(sgemm_scalar) {
  // 4x8 tile: 32 accumulators; blocks sized like the AVX2 tier's.
  gemm_detail::gemm_blocked<VScalar, 4, 8>({128, 256, 4096}, threads, trans_a, trans_b, M, N, K, alpha, A, lda,
                                           B, ldb, beta, C, ldc);
}

float fma_chains_scalar(int64_t iters, int* lanes) {
  *lanes = VScalar::W;
  return gemm_detail::fma_chains<VScalar>(iters);
}

}  // namespace razor
