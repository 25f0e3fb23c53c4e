// The ISA-independent part of the prefill GEMM path (qgemm_gemm.h), shared by
// qgemm_gemm_avx512.cpp and qgemm_gemm_avx2.cpp: activation blocks, unpacking a row tile
// into offset codes in VNNI order, and the threaded driver. The micro-kernel is a template
// parameter MK with
//   static constexpr int kRows, kTok;    // rows per tile, tokens per block
//   static void block(const GemmTile&, int64_t K, int G, const uint8_t* xq, const int32_t* nsum,
//                     const float* xs, float* c);   // c [kTok][kRows] = tile x block
// Only include from files compiled with AVX2 (or wider) flags; everything is in an anonymous
// namespace so each ISA file gets its own copy (see qgemm_x86.h).
//
//   1. Activations are re-laid once per call in blocks of kTok tokens: for each block,
//      xq[k/4][t] holds token t's four codes k..k+3 as one dword, so the micro-kernel
//      broadcasts them with one load; beside them -sum(x) and the scale per (group, token).
//      The last block is zero-padded (zero codes, sum and scale: its padded lanes give 0).
//   2. A tile of kRows output rows is unpacked once into unsigned offset codes u = q + off in
//      VNNI order, wt[k/4][row][4] (one vector = 4 consecutive codes of kRows/2 or 8..16
//      rows), with fp32 row scales per group and a per-row shift (0 for off 1, 3 for off 8).
//   3. The micro-kernel starts each group's int32 accumulators at -off * sum(x) (the
//      offset-code correction, as a shift of the broadcast sum), runs G/4 steps of 4 codes,
//      then adds float(dot) * (s_w * s_x) into an fp32 tile (a fused multiply-add): the dot is
//      exact in int32 and the groups are summed in order as in qgemm_ref.
//   Threads take (row tile, token chunk) items dynamically; a thread re-unpacks only when its
//   tile changes. Token chunks keep one chunk's activations in L2 while a tile runs over it.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/threads.h"
#include "kernels/isa_local.h"
#include "kernels/qformat.h"
#include "kernels/qgemm_x86.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace razor {
namespace {

// Activation bytes of one token chunk kept hot while a tile runs over it (L2 is 2 MiB here).
constexpr int64_t kGemmChunkBytes = int64_t(384) << 10;
// Below this many multiply-adds a call runs on one thread.
constexpr int64_t kGemmMinParallelWork = int64_t(1) << 20;

// 64-byte aligned scratch that grows on demand and is reused across calls (no allocation
// per call once warm; one per thread).
struct GemmScratch {
  IsaVector<uint8_t> bytes;
  uint8_t* get(size_t count) {
    const size_t need = count + 128;
    if (bytes.size() < need) bytes.resize(need);
    return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(bytes.data()) + 63) & ~uintptr_t(63));
  }
};

// One unpacked tile: codes in VNNI order, row scales per group, shifts. All 64-byte aligned.
struct GemmTile {
  uint8_t* wt;   // [K/4][kRows][4]
  float* sw;     // [ng][kRows]
  int32_t* sh;   // [kRows]: log2(offset) of each row (0 for padding rows, whose codes are 0)
  uint8_t* nat;  // [kRows][K + 64] natural-order codes of the rows (decode buffer)
  int int4_rows; // how many rows of the tile are int4 (offset codes up to 15, not 2)
};

// 8 x 8 int32 transpose: out[k] = {r0[k], r1[k], ..., r7[k]}.
inline void transpose8x8_epi32(__m256i r[8]) {
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

// Tokens n0 .. n0 + count - 1 into one block of stride kTok (missing tokens are zero).
template <int kTok>
void gemm_pack_block(const int8_t* qx, const float* sx, int64_t K, int G, int64_t n0, int count, uint8_t* codes,
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
      __m256i s = _mm256_setzero_si256();  // group sum: sign-extend 16 codes at a time
      for (int k = 0; k < G; k += 16)
        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(
                                                      reinterpret_cast<const __m128i*>(x + g * G + k))),
                                                  _mm256_set1_epi16(1)));
      __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
      nsum[g * kTok + t] = -_mm_cvtsi128_si32(h);
      scale[g * kTok + t] = sx[(n0 + t) * ng + g];
    }
  }
}

// Rows row0 .. row0 + nrows - 1 of W into the tile (rows past nrows: zero codes and scales).
template <int kRows>
void gemm_unpack_tile(const PackedMatrix& W, int64_t row0, int nrows, GemmTile& tile) {
  const int G = W.desc.G;
  const int64_t K = W.desc.d_in, ng = W.groups();
  const int64_t stride = K + 64;
  int int4_rows = 0;
  for (int r = 0; r < kRows; ++r) {
    uint8_t* nat = tile.nat + r * stride;
    if (r >= nrows) {
      tile.sh[r] = 0;
      for (int64_t g = 0; g < ng; ++g) tile.sw[g * kRows + r] = 0.0f;
      std::memset(nat, 0, size_t(K));
      continue;
    }
    const int64_t i = row0 + r;
    const RowKind kind = W.row_kind(i);
    const int64_t gb = group_code_bytes(kind, G);
    const uint8_t* src = W.row(i);
    const uint16_t* s = W.row_scales(i);
    tile.sh[r] = kind == RowKind::Int4 ? 3 : 0;
    int4_rows += kind == RowKind::Int4;
    for (int64_t g = 0; g < ng; ++g) {
      tile.sw[g * kRows + r] = _cvtsh_ss(s[g]);
      const uint8_t* blk = src + g * gb;
      uint8_t* out = nat + g * G;
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
  }
  tile.int4_rows = int4_rows;
  // Dword j of row r goes to wt[j][r]: 8 x 8 dword transposes, sequential 32-byte stores.
  for (int r0 = 0; r0 < kRows; r0 += 8)
    for (int64_t j0 = 0; j0 < K / 4; j0 += 8) {
      __m256i v[8];
      for (int r = 0; r < 8; ++r)
        v[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile.nat + (r0 + r) * stride + 4 * j0));
      transpose8x8_epi32(v);
      for (int k = 0; k < 8; ++k)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile.wt + ((j0 + k) * kRows + r0) * 4), v[k]);
    }
}

// GEMM tile q of W's decode copy (DecodeTiles, qformat.h): its decode tiles kRows / 8 * q ..
// (global order: chunk, then tile in the chunk), whose planes are already 4 codes x 8 rows, so
// each is one masked shift stored at its place in wt; rows[r]: lane r's output row, -1 for a
// padding lane or a decode tile past the last (zero codes and scales).
template <int kRows>
void gemm_unpack_decode_tiles(const PackedMatrix& W, int64_t q, GemmTile& tile, int64_t* rows) {
  const DecodeTiles& T = *W.tiles;
  const int G = W.desc.G;
  const int64_t K = W.desc.d_in, ng = W.groups(), d_out = W.desc.d_out;
  const int tpc = T.tiles();
  const int64_t total = T.chunks * tpc;
  const __m256i m3 = _mm256_set1_epi8(3), m15 = _mm256_set1_epi8(15);
  int int4_rows = 0;
  for (int h = 0; h < kRows / 8; ++h) {
    const int64_t gt = q * (kRows / 8) + h;
    const int r0 = 8 * h;
    if (gt >= total) {
      for (int r = 0; r < 8; ++r) rows[r0 + r] = -1, tile.sh[r0 + r] = 0;
      for (int64_t g = 0; g < ng; ++g) _mm256_storeu_ps(tile.sw + g * kRows + r0, _mm256_setzero_ps());
      for (int64_t j = 0; j < K / 4; ++j)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile.wt + (j * kRows + r0) * 4), _mm256_setzero_si256());
      continue;
    }
    const int64_t c = gt / tpc;
    const int t = int(gt % tpc);
    const bool int4 = T.int4(t);
    const uint8_t* src = T.tile_codes(c, t);
    const uint16_t* sc = T.tile_scales(c, t);
    for (int r = 0; r < 8; ++r) {
      const int64_t i = T.lane_output_row(c, t, r);
      rows[r0 + r] = i < d_out ? i : -1;
      tile.sh[r0 + r] = int4 ? 3 : 0;
    }
    int4_rows += int4 ? 8 : 0;
    for (int64_t g = 0; g < ng; ++g) {
      _mm256_storeu_ps(tile.sw + g * kRows + r0,
                       _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 8 * g))));
      uint8_t* wt = tile.wt + (g * (G / 4) * kRows + r0) * 4;  // kq = 0 of the group
      if (int4) {
        const uint8_t* b = src + g * 4 * G;
        for (int v = 0; v < G / 8; ++v) {
          const __m256i L = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32 * v));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(wt + (2 * v) * kRows * 4), _mm256_and_si256(L, m15));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(wt + (2 * v + 1) * kRows * 4),
                              _mm256_and_si256(_mm256_srli_epi16(L, 4), m15));
        }
      } else {
        const uint8_t* b = src + g * 2 * G;
        for (int v = 0; v < G / 16; ++v) {
          const __m256i L = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32 * v));
          for (int p = 0; p < 4; ++p)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(wt + (4 * v + p) * kRows * 4),
                                _mm256_and_si256(_mm256_srli_epi16(L, 2 * p), m3));
        }
      }
    }
  }
  tile.int4_rows = int4_rows;
}

// tiled: the rows come from W's decode copy (gemm_unpack_decode_tiles) instead of its packed rows.
template <class MK>
void qgemm_gemm_run(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y, bool tiled = false) {
  constexpr int kRows = MK::kRows, kTok = MK::kTok;
  static_assert(kRows % 8 == 0 && kRows <= 32, "tile rows: whole 8 x 8 transposes");
  const int G = W.desc.G;
  const int64_t K = W.desc.d_in, d_out = W.desc.d_out, ng = W.groups();
  const int64_t nblocks = (N + kTok - 1) / kTok;
  const int64_t ntiles =
      tiled ? (W.tiles->chunks * W.tiles->tiles() + kRows / 8 - 1) / (kRows / 8) : (d_out + kRows - 1) / kRows;
  const int64_t chunk_blocks = std::max<int64_t>(1, kGemmChunkBytes / (kTok * K));
  const int64_t nchunks = (nblocks + chunk_blocks - 1) / chunk_blocks;

  // Activation blocks: codes, then -sums, then scales (owned by the calling thread).
  static thread_local GemmScratch act_scratch;
  uint8_t* codes = act_scratch.get(size_t(nblocks * kTok * K + 2 * nblocks * kTok * ng * 4));
  int32_t* nsum = reinterpret_cast<int32_t*>(codes + nblocks * kTok * K);
  float* scale = reinterpret_cast<float*>(nsum + nblocks * kTok * ng);

  const int64_t work = d_out * K * N, items = ntiles * nchunks;
  int nth = work < kGemmMinParallelWork ? 1 : num_threads();
  nth = int(std::max<int64_t>(1, std::min<int64_t>(nth, std::max(items, nblocks))));

  const int64_t grab = ntiles >= 4 * nth ? nchunks : 1;
#pragma omp parallel num_threads(nth)
  {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nblocks; ++b)
      gemm_pack_block<kTok>(qx, sx, K, G, b * kTok, int(std::min<int64_t>(kTok, N - b * kTok)), codes + b * kTok * K,
                            nsum + b * kTok * ng, scale + b * kTok * ng);

    // Per-thread tile scratch, every part 64-byte aligned (K is a multiple of 64): wt, sw,
    // sh, the rows' decode buffer (K + 64 each: ternary5 decoding writes past a group), the fp32 tile.
    static thread_local GemmScratch tile_scratch;
    const int64_t o_sw = K * kRows, o_sh = o_sw + ((ng * kRows * 4 + 63) & ~int64_t(63)),
                  o_nat = o_sh + ((kRows * 4 + 63) & ~int64_t(63)), o_c = o_nat + kRows * (K + 64),
                  bytes = o_c + kTok * kRows * 4;
    uint8_t* base = tile_scratch.get(size_t(bytes));
    GemmTile tile{};
    tile.wt = base;
    tile.sw = reinterpret_cast<float*>(base + o_sw);
    tile.sh = reinterpret_cast<int32_t*>(base + o_sh);
    tile.nat = base + o_nat;
    float* c = reinterpret_cast<float*>(base + o_c);
    int64_t have = -1;  // the tile this thread has unpacked
    int64_t rows[kRows];  // tiled: each lane's output row (-1: none)

    // Dynamic: on a shared machine a descheduled thread must not hold the other one up. A
    // grab is a whole tile (all its chunks: one unpack) unless tiles are too few to share.
#pragma omp for schedule(dynamic, grab)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t ti = it / nchunks, ch = it % nchunks;
      const int64_t row0 = ti * kRows;
      const int nrows = int(std::min<int64_t>(kRows, d_out - row0));
      if (have != ti) {
        if (tiled)
          gemm_unpack_decode_tiles<kRows>(W, ti, tile, rows);
        else
          gemm_unpack_tile<kRows>(W, row0, nrows, tile);
        have = ti;
      }
      const int64_t b_end = std::min(nblocks, (ch + 1) * chunk_blocks);
      for (int64_t b = ch * chunk_blocks; b < b_end; ++b) {
        MK::block(tile, K, G, codes + b * kTok * K, nsum + b * kTok * ng, scale + b * kTok * ng, c);
        const int nt = int(std::min<int64_t>(kTok, N - b * kTok));
        for (int t = 0; t < nt; ++t) {
          float* yt = y + (b * kTok + t) * d_out;
          if (!tiled) {
            std::memcpy(yt + row0, c + t * kRows, size_t(nrows) * sizeof(float));
            continue;
          }
          for (int r = 0; r < kRows; ++r)
            if (rows[r] >= 0) yt[rows[r]] = c[t * kRows + r];
        }
      }
    }
  }
}

}  // namespace
}  // namespace razor
