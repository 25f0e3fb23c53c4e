// sgemm: argument checks, the trivial cases (alpha == 0, K == 0), a direct loop for tiny
// problems, the thread count, and dispatch to the tier for active_isa() (kernels/gemm_tiers.h).
// The tiers themselves live one per file (gemm_scalar.cpp, gemm_avx2.cpp, gemm_avx512.cpp).
#include "kernels/gemm.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/gemm_blocked.h"
#include "kernels/gemm_tiers.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace razor {

namespace {

// Below this many multiply-adds, packing costs more than it saves (measured with
// `razor bench gemm`, see docs/gemm.md): one float dot product per element of C.
constexpr int64_t kTinyMacs = 512;
// Each extra thread must get at least this many flops (~200 us of work): below that a second
// thread brought nothing measurable (128^3: 66 GFLOP/s on 2 threads vs 71 on 1), and on a
// machine shared with other jobs a descheduled thread stalls the whole call.
constexpr double kFlopsPerThread = 1.6e7;

void sgemm_tiny(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) {
        float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      float v = alpha * acc;
      C[i * ldc + j] = beta == 0.0f ? v : v + beta * C[i * ldc + j];
    }
}

// C = beta * C, without reading C when beta == 0.
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f)
      std::fill(c, c + N, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  RZ_ASSERT(M >= 0 && N >= 0 && K >= 0);
  RZ_ASSERT(lda >= std::max<int64_t>(1, trans_a ? M : K));
  RZ_ASSERT(ldb >= std::max<int64_t>(1, trans_b ? K : N));
  RZ_ASSERT(ldc >= std::max<int64_t>(1, N));
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  if (M * N * K <= kTinyMacs) {
    sgemm_tiny(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  int threads = num_threads();
#ifdef _OPENMP
  if (omp_in_parallel()) threads = 1;
#endif
  const double flops = 2.0 * double(M) * double(N) * double(K);
  threads = int(std::max(1.0, std::min(double(threads), flops / kFlopsPerThread)));
  switch (active_isa()) {
#if defined(__x86_64__) || defined(__i386__)
    case Isa::Avx512:
      sgemm_avx512(threads, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      break;
    case Isa::Avx2:
      sgemm_avx2(threads, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      break;
#else
    case Isa::Avx512:
    case Isa::Avx2:
#endif
    case Isa::Neon:  // no NEON micro-kernel yet: the portable tier
    case Isa::Ref:
      sgemm_scalar(threads, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      break;
  }
}

namespace {
float fma_chains_active(int64_t iters, int* lanes) {
  switch (active_isa()) {
#if defined(__x86_64__) || defined(__i386__)
    case Isa::Avx512: return fma_chains_avx512(iters, lanes);
    case Isa::Avx2: return fma_chains_avx2(iters, lanes);
#else
    case Isa::Avx512:
    case Isa::Avx2:
#endif
    case Isa::Neon:
    case Isa::Ref: break;
  }
  return fma_chains_scalar(iters, lanes);
}
}  // namespace

int fma_lanes() {
  int lanes = 0;
  fma_chains_active(0, &lanes);
  return lanes;
}

double fma_peak_gflops(int threads, int64_t iters, float* result) {
  RZ_ASSERT(threads >= 1 && iters >= 1);
  float r0 = 0.0f;
  int lanes = 0;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
  {
    int l = 0;
    const float r = fma_chains_active(iters, &l);
#ifdef _OPENMP
    if (omp_get_thread_num() == 0) r0 = r, lanes = l;
#else
    r0 = r, lanes = l;
#endif
  }
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (result) *result = r0;
  return 2.0 * double(lanes) * gemm_detail::kFmaChains * double(iters) * double(threads) / dt * 1e-9;
}

float fma_chains_ref(int64_t iters, bool fused) {
  float sum = 0.0f;
  using namespace gemm_detail;
  for (int c = 0; c < kFmaChains; ++c) {
    float a = fma_chain_start(c);
    for (int64_t i = 0; i < iters; ++i) a = fused ? std::fma(a, kFmaB, kFmaD) : a * kFmaB + kFmaD;
    sum += a;
  }
  return sum;
}

}  // namespace razor
