// AVX2 micro-kernel of the prefill GEMM path (qgemm_gemm.h; the tiles, activation blocks and
// threading are in qgemm_gemm_x86.h): 16 rows (2 ymm of int32 lanes) x 4 tokens, 8
// accumulators. Without VNNI a 4-code dot is vpmaddubsw (unsigned offset codes x signed
// activations -> int16 pairs; at most 2 * 15 * 127 = 3810, no saturation) then vpmaddwd by 1
// (-> int32) and an add.
#include <immintrin.h>

#include "kernels/qgemm_gemm.h"
#include "kernels/qgemm_gemm_x86.h"

namespace razor {

namespace {

// Named accumulators, not an array: GCC keeps arrays of vectors in stack slots.
#define RZ_TOKENS(M) M(0) M(1) M(2) M(3)
struct MicroAvx2 {
  static constexpr int kRows = 16, kTok = 4;
  static void block(const GemmTile& tile, int64_t K, int G, const uint8_t* xq, const int32_t* nsum, const float* xs,
                    float* c) {
    const int64_t ng = K / G;
    const int steps = G / 4;
    const __m256i sh0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.sh));
    const __m256i sh1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.sh + 8));
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = 0; t < kTok * kRows; t += 8) _mm256_store_ps(c + t, _mm256_setzero_ps());
    const int32_t* x = reinterpret_cast<const int32_t*>(xq);
    const uint8_t* w = tile.wt;
    for (int64_t g = 0; g < ng; ++g) {
      // Each group starts at -off * sum(x): the offset-code correction, per row via the shift.
#define RZ_INIT(t)                                           \
  const __m256i n##t = _mm256_set1_epi32(nsum[g * kTok + t]); \
  __m256i a0_##t = _mm256_sllv_epi32(n##t, sh0), a1_##t = _mm256_sllv_epi32(n##t, sh1);
      RZ_TOKENS(RZ_INIT)
#undef RZ_INIT
      for (int j = 0; j < steps; ++j) {
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w));
        const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32));
#define RZ_STEP(t)                                                                                   \
  {                                                                                                  \
    const __m256i xb = _mm256_set1_epi32(x[t]);                                                      \
    a0_##t = _mm256_add_epi32(a0_##t, _mm256_madd_epi16(_mm256_maddubs_epi16(w0, xb), ones));        \
    a1_##t = _mm256_add_epi32(a1_##t, _mm256_madd_epi16(_mm256_maddubs_epi16(w1, xb), ones));        \
  }
        RZ_TOKENS(RZ_STEP)
#undef RZ_STEP
        w += 2 * 32;
        x += kTok;
      }
      const __m256 s0 = _mm256_load_ps(tile.sw + g * kRows), s1 = _mm256_load_ps(tile.sw + g * kRows + 8);
      // c += float(dot) * (s_w * s_x), one rounding for the scale product as in qgemm_ref.
#define RZ_SCALE(t)                                                                                             \
  {                                                                                                             \
    const __m256 st = _mm256_set1_ps(xs[g * kTok + t]);                                                         \
    float* ct = c + t * kRows;                                                                                  \
    _mm256_store_ps(ct, _mm256_fmadd_ps(_mm256_cvtepi32_ps(a0_##t), _mm256_mul_ps(s0, st), _mm256_load_ps(ct))); \
    _mm256_store_ps(ct + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(a1_##t), _mm256_mul_ps(s1, st),                   \
                                            _mm256_load_ps(ct + 8)));                                           \
  }
      RZ_TOKENS(RZ_SCALE)
#undef RZ_SCALE
    }
  }
};
#undef RZ_TOKENS

}  // namespace

void qgemm_gemm_avx2(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  qgemm_gemm_run<MicroAvx2>(W, qx, sx, N, y);
}

}  // namespace razor
