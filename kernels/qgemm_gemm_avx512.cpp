// AVX-512 VNNI prefill GEMM over unpacked weight tiles (qgemm_gemm.h).
//
//   1. Activations are re-laid once per call in blocks of kTok tokens: for each block,
//      xq[k/4][t] holds token t's four codes k..k+3 as one dword, so the micro-kernel
//      broadcasts them straight from memory (vpdpbusd's {1to16} operand); beside them
//      -sum(x) and the scale per (group, token).
//   2. A tile of kRows = 32 output rows is unpacked once into unsigned offset codes
//      u = q + off in VNNI order, wt[k/4][row][4] (one zmm = 4 consecutive codes of 16
//      rows), with fp32 row scales per group and a per-row shift (0 for off 1, 3 for off 8).
//   3. Micro-kernel: 2 zmm of weights x T <= 12 tokens = 24 int32 accumulators. Each group
//      starts its accumulators at -off * sum(x) (the offset-code correction, as a shift of
//      the broadcast sum), runs G/4 vpdpbusd steps, then adds float(dot) * (s_w * s_x) into
//      a small fp32 tile (a fused multiply-add), so the dot is exact in int32 and the groups
//      are summed in order as in qgemm_ref.
//   Threads take (row tile, token chunk) items; a thread re-unpacks only when its tile changes.
// Compiles on any x86-64 build; runs only where the CPU has AVX-512 VNNI (qgemm_gemm_supported).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/threads.h"
#include "kernels/qgemm_gemm.h"
#include "kernels/qgemm_x86.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace razor {

namespace {

constexpr int kRows = 32;  // rows per tile (two zmm of int32 lanes)
constexpr int kTok = 12;   // tokens per micro-kernel block (24 accumulators + 2 weight registers)
// Activation bytes of one token chunk kept hot while a tile runs over it (L2 is 2 MiB here).
constexpr int64_t kChunkBytes = int64_t(384) << 10;
// Below this many multiply-adds a call runs on one thread.
constexpr int64_t kMinParallelWork = int64_t(1) << 20;

// 64-byte aligned scratch that grows on demand and is reused across calls (no allocation
// per call once warm; one per thread).
struct Scratch {
  std::vector<uint8_t> bytes;
  template <typename T>
  T* get(size_t count) {
    const size_t need = count * sizeof(T) + 128;
    if (bytes.size() < need) bytes.resize(need);
    const uintptr_t p = (reinterpret_cast<uintptr_t>(bytes.data()) + 63) & ~uintptr_t(63);
    return reinterpret_cast<T*>(p);
  }
};

// Activations of all tokens in blocks of kTok (the last one zero-padded), laid out so a
// micro-kernel's broadcasts are contiguous.
struct ActPack {
  int64_t N, K, ng;
  const uint8_t* codes;  // block b at b * kTok * K: [K/4][kTok] dwords
  const int32_t* nsum;   // block b at b * kTok * ng: [ng][kTok], -sum of the group's codes
  const float* scale;    // same layout as nsum
  int block_tokens(int64_t b) const { return int(std::min<int64_t>(kTok, N - b * kTok)); }
};

// Tokens n0 .. n0 + count - 1 into one block (stride kTok; missing tokens are zero: zero
// codes, sum and scale, so the padded lanes of a short block compute zeros).
void pack_block(const int8_t* qx, const float* sx, int64_t K, int G, int64_t n0, int count, uint8_t* codes,
                int32_t* nsum, float* scale) {
  const int64_t ng = K / G;
  for (int t = 0; t < kTok; ++t) {
    uint32_t* dst = reinterpret_cast<uint32_t*>(codes) + t;
    if (t >= count) {
      for (int64_t j = 0; j < K / 4; ++j) dst[j * kTok] = 0;
      for (int64_t g = 0; g < ng; ++g) {
        nsum[g * kTok + t] = 0;
        scale[g * kTok + t] = 0.0f;
      }
      continue;
    }
    const int8_t* x = qx + (n0 + t) * K;
    for (int64_t j = 0; j < K / 4; ++j) {
      uint32_t v;
      std::memcpy(&v, x + 4 * j, 4);
      dst[j * kTok] = v;
    }
    for (int64_t g = 0; g < ng; ++g) {
      __m512i s = _mm512_setzero_si512();  // group sum: sign-extend 32 codes at a time
      for (int k = 0; k < G; k += 32)
        s = _mm512_add_epi32(s, _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm256_loadu_si256(
                                                      reinterpret_cast<const __m256i*>(x + g * G + k))),
                                                  _mm512_set1_epi16(1)));
      nsum[g * kTok + t] = -_mm512_reduce_add_epi32(s);
      scale[g * kTok + t] = sx[(n0 + t) * ng + g];
    }
  }
}

// One unpacked tile of kRows rows: codes in VNNI order, row scales per group, shifts.
struct Tile {
  uint8_t* wt;    // [K/4][kRows][4]
  float* sw;      // [ng][kRows]
  int32_t* sh;    // [kRows]: log2(offset) of each row (0 for padding rows, whose codes are 0)
  uint8_t* row;   // [K + 64] natural-order codes of one row (decode buffer)
};

void unpack_tile(const PackedMatrix& W, int64_t row0, int nrows, const Tile& tile) {
  const int G = W.desc.G;
  const int64_t K = W.desc.d_in, ng = W.groups();
  // Dword j of a row goes to wt[j][r]: scatter 16 dwords at a stride of one VNNI step.
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(kRows * 4));
  for (int r = 0; r < kRows; ++r) {
    if (r >= nrows) {
      tile.sh[r] = 0;
      for (int64_t g = 0; g < ng; ++g) tile.sw[g * kRows + r] = 0.0f;
      for (int64_t j = 0; j < K / 4; ++j) std::memset(tile.wt + (j * kRows + r) * 4, 0, 4);
      continue;
    }
    const int64_t i = row0 + r;
    const RowKind kind = W.row_kind(i);
    const int64_t gb = group_code_bytes(kind, G);
    const uint8_t* src = W.row(i);
    const uint16_t* s = W.row_scales(i);
    tile.sh[r] = kind == RowKind::Int4 ? 3 : 0;
    for (int64_t g = 0; g < ng; ++g) {
      tile.sw[g * kRows + r] = _cvtsh_ss(s[g]);
      const uint8_t* blk = src + g * gb;
      uint8_t* out = tile.row + g * G;
      if (kind == RowKind::Ternary5) {
        decode_t5_avx2(blk, G, out);  // writes up to 64 bytes past out + G: the buffer has them
        continue;
      }
      for (int b = 0; b < G / 64; ++b) {
        __m256i u0, u1;
        if (kind == RowKind::Ternary2)
          decode_t2_avx2(blk + 16 * b, u0, u1);
        else
          decode_q4_avx2(blk + 32 * b, u0, u1);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * b), u0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * b + 32), u1);
      }
    }
    for (int64_t j = 0; j < K / 4; j += 16)
      _mm512_i32scatter_epi32(tile.wt + (j * kRows + r) * 4, idx,
                              _mm512_loadu_si512(tile.row + 4 * j), 1);
  }
}

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
void tile_block(const Tile& tile, int64_t K, int G, const uint8_t* xq, const int32_t* nsum, const float* xs,
                float* c) {
  static_assert(kTok == 12 && kRows == 32, "the asm names 12 tokens x 2 zmm of rows");
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
#undef RZ_SCALE
#undef RZ_DOT
#undef RZ_INIT
#undef RZ_TOKENS

}  // namespace

void qgemm_gemm_avx512(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  const int G = W.desc.G;
  const int64_t K = W.desc.d_in, d_out = W.desc.d_out, ng = W.groups();
  const int64_t nblocks = (N + kTok - 1) / kTok, ntiles = (d_out + kRows - 1) / kRows;
  // Token chunks: blocks whose activations stay in L2 while one tile runs over them.
  const int64_t chunk_blocks = std::max<int64_t>(1, kChunkBytes / (kTok * K));
  const int64_t nchunks = (nblocks + chunk_blocks - 1) / chunk_blocks;

  static thread_local Scratch act_scratch;
  uint8_t* codes = act_scratch.get<uint8_t>(size_t(nblocks * kTok * K + 2 * nblocks * kTok * ng * 4));
  int32_t* nsum = reinterpret_cast<int32_t*>(codes + nblocks * kTok * K);
  float* scale = reinterpret_cast<float*>(nsum + nblocks * kTok * ng);
  const ActPack act{N, K, ng, codes, nsum, scale};

  const int64_t work = d_out * K * N, items = ntiles * nchunks;
  int nth = work < kMinParallelWork ? 1 : num_threads();
  nth = int(std::max<int64_t>(1, std::min<int64_t>(nth, std::max(items, nblocks))));

#pragma omp parallel num_threads(nth)
  {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nblocks; ++b)
      pack_block(qx, sx, K, G, b * kTok, act.block_tokens(b), codes + b * kTok * K, nsum + b * kTok * ng,
                 scale + b * kTok * ng);

    // Per-thread tile scratch, every part 64-byte aligned: wt, sw, sh, the row decode buffer
    // (K + 64: ternary5 decoding writes past a group) and the fp32 output tile.
    static thread_local Scratch tile_scratch;
    const int64_t o_sw = K * kRows, o_sh = o_sw + ng * kRows * 4, o_row = o_sh + kRows * 4,
                  o_c = o_row + K + 64, bytes = o_c + kTok * kRows * 4;
    uint8_t* base = tile_scratch.get<uint8_t>(size_t(bytes));
    Tile tile;
    tile.wt = base;
    tile.sw = reinterpret_cast<float*>(base + o_sw);
    tile.sh = reinterpret_cast<int32_t*>(base + o_sh);
    tile.row = base + o_row;
    float* c = reinterpret_cast<float*>(base + o_c);
    int64_t have = -1;  // the tile this thread has unpacked

#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t ti = it / nchunks, ch = it % nchunks;
      const int64_t row0 = ti * kRows;
      const int nrows = int(std::min<int64_t>(kRows, d_out - row0));
      if (have != ti) {
        unpack_tile(W, row0, nrows, tile);
        have = ti;
      }
      const __mmask16 m0 = __mmask16(nrows >= 16 ? 0xffff : (1u << nrows) - 1);
      const __mmask16 m1 = __mmask16(nrows >= 32 ? 0xffff : nrows <= 16 ? 0 : (1u << (nrows - 16)) - 1);
      const int64_t b_end = std::min(nblocks, (ch + 1) * chunk_blocks);
      for (int64_t b = ch * chunk_blocks; b < b_end; ++b) {
        const int nb = act.block_tokens(b);
        tile_block(tile, K, G, codes + b * kTok * K, nsum + b * kTok * ng, scale + b * kTok * ng, c);
        for (int t = 0; t < nb; ++t) {
          float* yr = y + (b * kTok + t) * d_out + row0;
          _mm512_mask_storeu_ps(yr, m0, _mm512_load_ps(c + t * kRows));
          _mm512_mask_storeu_ps(yr + 16, m1, _mm512_load_ps(c + t * kRows + 16));
        }
      }
    }
  }
}

}  // namespace razor
