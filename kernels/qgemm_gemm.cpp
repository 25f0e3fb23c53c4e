// Dispatch of the prefill GEMM path (qgemm_gemm.h): which tiers have one.
#include "kernels/qgemm_gemm.h"

#include "core/error.h"

namespace razor {

bool qgemm_gemm_supported(QTier t) {
#if defined(__x86_64__)
  if (t == QTier::Avx2 || t == QTier::Avx512) return qtier_supported(t);
#endif
#if defined(__aarch64__)
  if (t == QTier::Neon || t == QTier::Dotprod) return qtier_supported(t);
#endif
  return false;
}

void qgemm_gemm_tier(QTier t, const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  RZ_ASSERT_MSG(qgemm_gemm_supported(t), "qgemm: no GEMM path for this tier on this CPU / build");
  RZ_ASSERT(N >= 1);
#if defined(__x86_64__)
  if (t == QTier::Avx2) return qgemm_gemm_avx2(W, qx, sx, N, y);
  if (t == QTier::Avx512) return qgemm_gemm_avx512(W, qx, sx, N, y);
#endif
#if defined(__aarch64__)
  if (t == QTier::Neon) return qgemm_gemm_neon(W, qx, sx, N, y);
  if (t == QTier::Dotprod) return qgemm_gemm_dotprod(W, qx, sx, N, y);
#endif
}

}  // namespace razor
