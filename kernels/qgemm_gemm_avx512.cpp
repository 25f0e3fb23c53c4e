// AVX-512 VNNI micro-kernel of the prefill GEMM path (qgemm_gemm.h; the tiles, activation
// blocks and threading are in qgemm_gemm_x86.h): 32 rows (2 zmm of int32 lanes) x 12 tokens,
// 24 accumulators, vpdpbusd on unsigned offset codes x broadcast signed activations.
// Compiles on any x86-64 build; runs only where the CPU has AVX-512 VNNI (qgemm_gemm_supported).
#include <immintrin.h>

#include "kernels/qgemm_gemm.h"
#include "kernels/qgemm_gemm_x86.h"

namespace razor {

namespace {

// The micro-kernel: one tile x one block of kTok tokens (a short last block is zero-padded);
// c [kTok][kRows] is overwritten. Per group, in registers: zmm0..23 the 24 int32 accumulators
// (token t: zmm 2t for rows 0..15, 2t+1 for rows 16..31), zmm24/25 the row shifts, zmm26/27
// the row scales, zmm30/31 the weights, zmm28/29 temporaries. Written in asm because GCC 12
// keeps vpdpbusd accumulators in stack slots or copies them around every step however the
// intrinsics are arranged (seen in the disassembly), which halves the throughput.
#define RZ_TOKENS(M) \
  M(0, 0, 1) M(1, 2, 3) M(2, 4, 5) M(3, 6, 7) M(4, 8, 9) M(5, 10, 11) M(6, 12, 13) M(7, 14, 15) M(8, 16, 17) \
  M(9, 18, 19) M(10, 20, 21) M(11, 22, 23)
// acc = -sum(x) << shift = -off * sum(x): the offset-code correction.
#define RZ_INIT(t, r0, r1)                          \
  "vpbroadcastd 4*" #t "(%[ns]), %%zmm29\n\t"       \
  "vpsllvd %%zmm24, %%zmm29, %%zmm" #r0 "\n\t"      \
  "vpsllvd %%zmm25, %%zmm29, %%zmm" #r1 "\n\t"
// acc += u (weights, unsigned) . x (4 activation codes of token t, broadcast).
#define RZ_DOT(t, r0, r1)                           \
  "vpbroadcastd 4*" #t "(%[x]), %%zmm29\n\t"        \
  "vpdpbusd %%zmm29, %%zmm30, %%zmm" #r0 "\n\t"     \
  "vpdpbusd %%zmm29, %%zmm31, %%zmm" #r1 "\n\t"
// c += float(acc) * (s_w * s_x), one rounding for the scale product as in qgemm_ref.
#define RZ_SCALE(t, r0, r1)                                      \
  "vbroadcastss 4*" #t "(%[xs]), %%zmm29\n\t"                    \
  "vmulps %%zmm29, %%zmm26, %%zmm28\n\t"                         \
  "vmulps %%zmm29, %%zmm27, %%zmm29\n\t"                         \
  "vcvtdq2ps %%zmm" #r0 ", %%zmm" #r0 "\n\t"                     \
  "vcvtdq2ps %%zmm" #r1 ", %%zmm" #r1 "\n\t"                     \
  "vfmadd213ps 128*" #t "(%[c]), %%zmm28, %%zmm" #r0 "\n\t"      \
  "vfmadd213ps 128*" #t "+64(%[c]), %%zmm29, %%zmm" #r1 "\n\t"   \
  "vmovups %%zmm" #r0 ", 128*" #t "(%[c])\n\t"                   \
  "vmovups %%zmm" #r1 ", 128*" #t "+64(%[c])\n\t"
struct MicroAvx512 {
  static constexpr int kRows = 32, kTok = 12;
  static void block(const GemmTile& tile, int64_t K, int G, const uint8_t* xq, const int32_t* nsum, const float* xs,
                float* c) {
  const int64_t ng = K / G;
  for (int t = 0; t < kTok * kRows; t += 16) _mm512_storeu_ps(c + t, _mm512_setzero_ps());
  const uint8_t* x = xq;
  const uint8_t* w = tile.wt;
  for (int64_t g = 0; g < ng; ++g) {
    int64_t count = G / 4;
    asm volatile(
        "vmovdqu64 (%[sh]), %%zmm24\n\t"
        "vmovdqu64 64(%[sh]), %%zmm25\n\t"
        RZ_TOKENS(RZ_INIT)
        "1:\n\t"
        "vmovdqu64 (%[w]), %%zmm30\n\t"
        "vmovdqu64 64(%[w]), %%zmm31\n\t"
        RZ_TOKENS(RZ_DOT)
        "add $128, %[w]\n\t"
        "add $48, %[x]\n\t"
        "dec %[count]\n\t"
        "jnz 1b\n\t"
        "vmovups (%[sw]), %%zmm26\n\t"
        "vmovups 64(%[sw]), %%zmm27\n\t"
        RZ_TOKENS(RZ_SCALE)
        : [w] "+r"(w), [x] "+r"(x), [count] "+r"(count)
        : [sh] "r"(tile.sh), [ns] "r"(nsum + g * kTok), [xs] "r"(xs + g * kTok), [sw] "r"(tile.sw + g * kRows),
          [c] "r"(c)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
          "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "cc", "memory");
  }
}
};
#undef RZ_SCALE
#undef RZ_DOT
#undef RZ_INIT
#undef RZ_TOKENS

}  // namespace

void qgemm_gemm_avx512(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  qgemm_gemm_run<MicroAvx512>(W, qx, sx, N, y);
}

}  // namespace razor
