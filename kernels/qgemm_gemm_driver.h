// The ISA-free driver of the prefill GEMM path (qgemm_gemm.h): activation blocks laid out once
// per call, row tiles unpacked once per thread and tile, (row tile, token chunk) items dealt
// dynamically to OpenMP threads. Used by the ARM tiers (qgemm_gemm_arm.h); it is the x86
// driver's schedule (qgemm_gemm_x86.h, qgemm_gemm_run) with the layout-specific steps behind a
// policy, so another ISA supplies only those:
//   static constexpr int kRows, kTok;                       // rows per tile, tokens per block
//   static int64_t block_bytes(int64_t K, int64_t ng);      // one activation block
//   static int64_t tile_bytes(int64_t K, int64_t ng);       // one unpacked tile + its scratch
//   static void pack_block(const int8_t* qx, const float* sx, int64_t K, int G, int64_t n0,
//                          int count, uint8_t* blk);         // tokens n0 .. n0+count-1 (rest zero)
//   static void unpack_tile(const PackedMatrix&, int64_t row0, int nrows, uint8_t* tile);
//   static void block(const uint8_t* tile, int64_t K, int G, const uint8_t* blk, float* c);
//                                                            // c [kTok][kRows] = tile x block
// Both byte counts must be multiples of 64 (every part stays 64-byte aligned).
// Anonymous namespace: each ISA file that includes it gets its own copy, built with its flags.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/threads.h"
#include "kernels/isa_local.h"
#include "kernels/qformat.h"

namespace razor {
namespace {

// Activation bytes of one token chunk kept hot while a tile runs over it (half of a 512 KiB L2).
constexpr int64_t kDriverChunkBytes = int64_t(256) << 10;
// Below this many multiply-adds a call runs on one thread.
constexpr int64_t kDriverMinParallelWork = int64_t(1) << 20;

// 64-byte aligned scratch that grows on demand and is reused across calls (one per thread).
struct DriverScratch {
  IsaVector<uint8_t> bytes;
  uint8_t* get(size_t count) {
    const size_t need = count + 128;
    if (bytes.size() < need) bytes.resize(need);
    return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(bytes.data()) + 63) & ~uintptr_t(63));
  }
};

template <class P>
void qgemm_gemm_drive(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  constexpr int kRows = P::kRows, kTok = P::kTok;
  const int G = W.desc.G;
  const int64_t K = W.desc.d_in, d_out = W.desc.d_out, ng = W.groups();
  const int64_t nblocks = (N + kTok - 1) / kTok, ntiles = (d_out + kRows - 1) / kRows;
  const int64_t bb = P::block_bytes(K, ng), tb = P::tile_bytes(K, ng);
  const int64_t chunk_blocks = std::max<int64_t>(1, kDriverChunkBytes / bb);
  const int64_t nchunks = (nblocks + chunk_blocks - 1) / chunk_blocks;

  static thread_local DriverScratch act_scratch;  // the calling thread's: all activation blocks
  uint8_t* acts = act_scratch.get(size_t(nblocks * bb));

  const int64_t work = d_out * K * N, items = ntiles * nchunks;
  int nth = work < kDriverMinParallelWork ? 1 : num_threads();
  nth = int(std::max<int64_t>(1, std::min<int64_t>(nth, std::max(items, nblocks))));
  // A grab is a whole tile (all its chunks: one unpack) unless tiles are too few to share.
  const int64_t grab = ntiles >= 4 * nth ? nchunks : 1;
#pragma omp parallel num_threads(nth)
  {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nblocks; ++b)
      P::pack_block(qx, sx, K, G, b * kTok, int(std::min<int64_t>(kTok, N - b * kTok)), acts + b * bb);

    static thread_local DriverScratch tile_scratch;
    uint8_t* tile = tile_scratch.get(size_t(tb + kTok * kRows * 4));
    float* c = reinterpret_cast<float*>(tile + tb);
    int64_t have = -1;  // the tile this thread has unpacked
#pragma omp for schedule(dynamic, grab)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t ti = it / nchunks, ch = it % nchunks;
      const int64_t row0 = ti * kRows;
      const int nrows = int(std::min<int64_t>(kRows, d_out - row0));
      if (have != ti) {
        P::unpack_tile(W, row0, nrows, tile);
        have = ti;
      }
      const int64_t b_end = std::min(nblocks, (ch + 1) * chunk_blocks);
      for (int64_t b = ch * chunk_blocks; b < b_end; ++b) {
        P::block(tile, K, G, acts + b * bb, c);
        const int nt = int(std::min<int64_t>(kTok, N - b * kTok));
        for (int t = 0; t < nt; ++t)
          std::memcpy(y + (b * kTok + t) * d_out + row0, c + t * kRows, size_t(nrows) * sizeof(float));
      }
    }
  }
}

}  // namespace
}  // namespace razor
