// AVX2 micro-kernel of the prefill GEMM path (qgemm_gemm.h; the tiles, activation blocks and
// threading are in qgemm_gemm_x86.h): 16 rows (2 ymm) x 6 tokens. Without VNNI a 4-code dot
// is vpmaddubsw (unsigned offset codes x signed activations -> int16 pair sums) and a widening
// vpmaddwd by 1. The multiplies are the bottleneck, so the pair sums are added up in int16
// (vpaddw; 12 accumulators in registers) for a run of steps and widened once per run: a step
// adds at most 2 * u_max * 127 to an int16 lane (u_max 2 for ternary rows, 15 for int4 rows;
// activation codes are in [-127, 127], qgemm.h), so a run of 64 ternary steps (<= 32,512) or 8
// steps of a tile with an int4 row (<= 30,480) cannot overflow. Every sum stays exact, so the
// result is bitwise that of the reference's integer dot products.
#include <immintrin.h>

#include <algorithm>

#include "kernels/qgemm_gemm.h"
#include "kernels/qgemm_gemm_x86.h"
#include "kernels/qgemm_impl.h"

namespace razor {

namespace {

// Steps (4 codes each) whose int16 pair sums cannot overflow (see above).
constexpr int kRunTernary = 64, kRunInt4 = 8;

// In a run: ymm0..11 the int16 accumulators (token t: ymm 2t for rows 0..7, ymm 2t + 1 for rows
// 8..15, two int16 pair sums per row), ymm12/13 the weights, ymm14/15 temporaries (ymm15 holds
// int16 ones while widening). Written in asm because GCC 12 copies the accumulators around and
// spills one every step however the intrinsics are arranged (seen in the disassembly).
#define RZ_TOKENS(M) M(0, 0, 1) M(1, 2, 3) M(2, 4, 5) M(3, 6, 7) M(4, 8, 9) M(5, 10, 11)
#define RZ_ZERO(t, r0, r1)                              \
  "vpxor %%xmm" #r0 ", %%xmm" #r0 ", %%xmm" #r0 "\n\t" \
  "vpxor %%xmm" #r1 ", %%xmm" #r1 ", %%xmm" #r1 "\n\t"
#define RZ_DOT(t, r0, r1)                           \
  "vpbroadcastd 4*" #t "(%[x]), %%ymm14\n\t"        \
  "vpmaddubsw %%ymm14, %%ymm12, %%ymm15\n\t"        \
  "vpaddw %%ymm15, %%ymm" #r0 ", %%ymm" #r0 "\n\t"  \
  "vpmaddubsw %%ymm14, %%ymm13, %%ymm14\n\t"        \
  "vpaddw %%ymm14, %%ymm" #r1 ", %%ymm" #r1 "\n\t"
// acc (int32, memory) += the int16 pairs summed to int32 lanes.
#define RZ_WIDEN(t, r0, r1)                              \
  "vpmaddwd %%ymm15, %%ymm" #r0 ", %%ymm" #r0 "\n\t"     \
  "vpaddd 64*" #t "(%[acc]), %%ymm" #r0 ", %%ymm" #r0 "\n\t" \
  "vmovdqa %%ymm" #r0 ", 64*" #t "(%[acc])\n\t"          \
  "vpmaddwd %%ymm15, %%ymm" #r1 ", %%ymm" #r1 "\n\t"     \
  "vpaddd 64*" #t "+32(%[acc]), %%ymm" #r1 ", %%ymm" #r1 "\n\t" \
  "vmovdqa %%ymm" #r1 ", 64*" #t "+32(%[acc])\n\t"

struct MicroAvx2 {
  static constexpr int kRows = 16, kTok = 6;
  static void block(const GemmTile& tile, int64_t K, int G, const uint8_t* xq, const int32_t* nsum, const float* xs,
                    float* c) {
    const int64_t ng = K / G;
    const int steps = G / 4;
    const int64_t run = std::min(steps, tile.int4_rows ? kRunInt4 : kRunTernary);
    const __m256i sh0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.sh));
    const __m256i sh1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.sh + 8));
    for (int t = 0; t < kTok * kRows; t += 8) _mm256_store_ps(c + t, _mm256_setzero_ps());
    const uint8_t* x = xq;
    const uint8_t* w = tile.wt;
    // The group's int32 sums: token t's rows 0..15 at acc + 16 t.
    alignas(32) int32_t acc[kTok * kRows];
    for (int64_t g = 0; g < ng; ++g) {
      // Each group starts at -off * sum(x): the offset-code correction, per row via the shift.
      for (int t = 0; t < kTok; ++t) {
        const __m256i n = _mm256_set1_epi32(nsum[g * kTok + t]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(acc + 16 * t), _mm256_sllv_epi32(n, sh0));
        _mm256_store_si256(reinterpret_cast<__m256i*>(acc + 16 * t + 8), _mm256_sllv_epi32(n, sh1));
      }
      for (int s = 0; s < steps; s += int(run)) {
        int64_t count = run;
        asm volatile(
            RZ_TOKENS(RZ_ZERO)
            "1:\n\t"
            "vmovdqa (%[w]), %%ymm12\n\t"
            "vmovdqa 32(%[w]), %%ymm13\n\t"
            RZ_TOKENS(RZ_DOT)
            "add $64, %[w]\n\t"
            "add $24, %[x]\n\t"
            "dec %[count]\n\t"
            "jnz 1b\n\t"
            "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\t"
            "vpsrlw $15, %%ymm15, %%ymm15\n\t"
            RZ_TOKENS(RZ_WIDEN)
            : [w] "+r"(w), [x] "+r"(x), [count] "+r"(count)
            : [acc] "r"(acc)
            : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
              "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
      }
      const __m256 s0 = _mm256_load_ps(tile.sw + g * kRows), s1 = _mm256_load_ps(tile.sw + g * kRows + 8);
      // c += float(dot) * (s_w * s_x), one rounding for the scale product as in qgemm_ref.
      for (int t = 0; t < kTok; ++t) {
        const __m256 st = _mm256_set1_ps(xs[g * kTok + t]);
        float* ct = c + t * kRows;
        const __m256i* a = reinterpret_cast<const __m256i*>(acc + 16 * t);
        _mm256_store_ps(ct, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_load_si256(a)), _mm256_mul_ps(s0, st),
                                            _mm256_load_ps(ct)));
        _mm256_store_ps(ct + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_load_si256(a + 1)), _mm256_mul_ps(s1, st),
                                                _mm256_load_ps(ct + 8)));
      }
    }
  }
};
#undef RZ_WIDEN
#undef RZ_DOT
#undef RZ_ZERO
#undef RZ_TOKENS

}  // namespace

void qgemm_gemm_avx2(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  // The decode copy where the matrix has one (qgemm_prepare): the same integers, and the
  // packed rows may have been released (qgemm_release_rows).
  qgemm_gemm_run<MicroAvx2>(W, qx, sx, N, y, W.tiles && qgemm_avx2_tiles());
}

}  // namespace razor
