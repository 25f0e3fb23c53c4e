// The cache-blocked fp32 GEMM driver shared by every tier (GotoBLAS / BLIS structure):
//
//   for jc in N step NC:                 B panel [KC x NC] packed once, shared by all threads (L3)
//     for pc in K step KC:
//       pack B[pc:pc+kc, jc:jc+nc] into NR-wide slivers          (threads split the slivers)
//       for each task (an MC-row block of A x a range of B slivers), in parallel:
//         pack A[ic:ic+mc, pc:pc+kc] into MR-tall slivers        (per thread, stays in L2)
//         for jr over B slivers:         one B sliver [kc x NR] stays in L1
//           for ir over A slivers:       micro-kernel: MR x NR tile of C held in registers
//
// A tier supplies only a vector type (see the V concept below) and the blocking sizes; the
// micro-kernel, packing and threading are written once here and instantiated per tier in its
// own file (compiled with that tier's ISA flags), so the untestable-here AVX-512 tier runs the
// same code as the tested AVX2 and scalar tiers. This header deliberately holds no dispatch:
// kernels/gemm.cpp chooses the tier and the thread count.
//
// V concept: type V::T (a register of V::W floats) with static load(p), store(p, x),
// set1(f), zero(), fmadd(a, b, c) = a*b+c, mul(a, b). Loads and stores are unaligned.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace razor {
namespace gemm_detail {

struct Blocking {
  int64_t mc, kc, nc;  // rows of A per L2 block, depth per pass, columns of B per L3 panel
};

// A 64-byte aligned scratch buffer that only grows; one per thread (thread_local), so
// repeated GEMM calls in a training step do not pay for allocation and page faults.
struct Scratch {
  float* ptr = nullptr;
  size_t cap = 0;
  float* get(size_t n) {
    if (n > cap) {
      std::free(ptr);
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!ptr) std::abort();
      cap = bytes / sizeof(float);
    }
    return ptr;
  }
  ~Scratch() { std::free(ptr); }
};

// op(A)[i0 + s, p0 + k] for the packing loops: A is [M, K] (lda) or, transposed, [K, M].
// Packs rows [i0, i0 + mc) x depth [p0, p0 + kc) of op(A) into MR-tall slivers: sliver s
// holds, for k = 0..kc-1, the MR values op(A)[s*MR + r, k] contiguously. Rows past mc are 0,
// so the micro-kernel never needs an edge case in M.
template <int MR>
void pack_a(bool trans_a, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            float* out) {
  for (int64_t s = 0; s < mc; s += MR, out += kc * MR) {
    const int64_t mr = std::min<int64_t>(MR, mc - s);
    if (!trans_a) {
      const float* src = A + (i0 + s) * lda + p0;  // row r at src + r*lda, contiguous in k
      if (mr == MR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < MR; ++r) out[k * MR + r] = src[r * lda + k];
      } else {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < MR; ++r) out[k * MR + r] = r < mr ? src[r * lda + k] : 0.0f;
      }
    } else {
      const float* src = A + p0 * lda + i0 + s;  // depth k at src + k*lda, contiguous in rows
      if (mr == MR) {
        for (int64_t k = 0; k < kc; ++k) std::memcpy(out + k * MR, src + k * lda, MR * sizeof(float));
      } else {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < MR; ++r) out[k * MR + r] = r < mr ? src[k * lda + r] : 0.0f;
      }
    }
  }
}

// Packs one NR-wide sliver of op(B): depth [p0, p0 + kc) x columns [j0, j0 + nr), nr <= NR,
// as kc rows of NR contiguous values; columns past nr are 0.
template <int NR>
void pack_b_sliver(bool trans_b, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nr,
                   float* out) {
  if (!trans_b) {
    const float* src = B + p0 * ldb + j0;  // depth k at src + k*ldb, contiguous in columns
    if (nr == NR) {
      for (int64_t k = 0; k < kc; ++k) std::memcpy(out + k * NR, src + k * ldb, NR * sizeof(float));
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int j = 0; j < NR; ++j) out[k * NR + j] = j < nr ? src[k * ldb + j] : 0.0f;
    }
  } else {
    const float* src = B + j0 * ldb + p0;  // column j at src + j*ldb, contiguous in k
    if (nr == NR) {
      for (int64_t k = 0; k < kc; ++k)
        for (int j = 0; j < NR; ++j) out[k * NR + j] = src[j * ldb + k];
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int j = 0; j < NR; ++j) out[k * NR + j] = j < nr ? src[j * ldb + k] : 0.0f;
    }
  }
}

// The MR x (NV * V::W) micro-kernel: C[tile] = alpha * (a_sliver . b_sliver) + beta * C[tile],
// with C not read when beta == 0 (it may hold NaN). Accumulators live in MR*NV registers.
template <class V, int MR, int NV>
inline void micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                         float beta) {
  typename V::T acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (int64_t k = 0; k < kc; ++k) {
    typename V::T bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * V::W);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      typename V::T ar = V::set1(a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(ar, bv[v], acc[r][v]);
    }
    a += MR;
    b += NV * V::W;
  }
  const typename V::T va = V::set1(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::store(c + r * ldc + v * V::W, V::mul(va, acc[r][v]));
  } else {
    const typename V::T vb = V::set1(beta);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        float* p = c + r * ldc + v * V::W;
        V::store(p, V::fmadd(va, acc[r][v], V::mul(vb, V::load(p))));
      }
  }
}

// C = alpha * op(A) op(B) + beta * C with the micro-kernel above, on `threads` OpenMP
// threads (1: no parallel region). Requires M, N, K >= 1.
template <class V, int MR, int NV>
void gemm_blocked(const Blocking& bl, int threads, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc) {
  constexpr int NR = NV * V::W;
  const int64_t KC = std::min(bl.kc, K);
  const int64_t NC = std::min((bl.nc + NR - 1) / NR * NR, (N + NR - 1) / NR * NR);
  // MC-row blocks are cut on MR-sliver boundaries; their count is rounded up to a multiple of
  // the thread count so every thread gets the same number of equally sized blocks.
  const int64_t slivers = (M + MR - 1) / MR;
  const int64_t mc_slivers = std::max<int64_t>(1, bl.mc / MR);
  int64_t n_ic = (slivers + mc_slivers - 1) / mc_slivers;
  n_ic = std::min(slivers, (n_ic + threads - 1) / threads * threads);

  static thread_local Scratch b_scratch;
  float* bpack = b_scratch.get(size_t(KC) * size_t(NC));
  const size_t a_need = size_t((slivers + n_ic - 1) / n_ic) * MR * size_t(KC);

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    static thread_local Scratch a_scratch;
    float* apack = a_scratch.get(a_need);
    alignas(64) float edge[MR * NR];
    for (int64_t jc = 0; jc < N; jc += NC) {
      const int64_t nc = std::min(NC, N - jc);
      const int64_t panels = (nc + NR - 1) / NR;
      // With fewer M blocks than threads, threads also split the B slivers.
      const int64_t n_jch = n_ic >= threads ? 1 : std::min<int64_t>(panels, (threads + n_ic - 1) / n_ic);
      const int64_t tasks = n_ic * n_jch;
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = std::min(KC, K - pc);
        const float beta_eff = pc == 0 ? beta : 1.0f;  // later depth passes accumulate
#pragma omp for schedule(static)
        for (int64_t p = 0; p < panels; ++p)
          pack_b_sliver<NR>(trans_b, B, ldb, pc, kc, jc + p * NR, std::min<int64_t>(NR, nc - p * NR),
                            bpack + p * NR * kc);
        int64_t packed_block = -1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; ++t) {
          const int64_t blk = t / n_jch, jch = t % n_jch;
          const int64_t i0 = (blk * slivers / n_ic) * MR;
          const int64_t i1 = std::min(M, ((blk + 1) * slivers / n_ic) * MR);
          if (packed_block != blk) {
            pack_a<MR>(trans_a, A, lda, i0, i1 - i0, pc, kc, apack);
            packed_block = blk;
          }
          const int64_t p0 = jch * panels / n_jch, p1 = (jch + 1) * panels / n_jch;
          for (int64_t p = p0; p < p1; ++p) {
            const int64_t j = jc + p * NR, nr = std::min<int64_t>(NR, N - j);
            const float* bs = bpack + p * NR * kc;
            for (int64_t i = i0; i < i1; i += MR) {
              const int64_t mr = std::min<int64_t>(MR, i1 - i);
              const float* as = apack + (i - i0) * kc;
              float* ct = C + i * ldc + j;
              if (mr == MR && nr == NR) {
                micro_kernel<V, MR, NV>(kc, as, bs, ct, ldc, alpha, beta_eff);
              } else {
                micro_kernel<V, MR, NV>(kc, as, bs, edge, NR, 1.0f, 0.0f);
                for (int64_t r = 0; r < mr; ++r)
                  for (int64_t q = 0; q < nr; ++q) {
                    float v = alpha * edge[r * NR + q];
                    ct[r * ldc + q] = beta_eff == 0.0f ? v : v + beta_eff * ct[r * ldc + q];
                  }
              }
            }
          }
        }
        // The implicit barrier of the task loop keeps bpack alive until every thread is done.
      }
    }
  }
}

}  // namespace gemm_detail
}  // namespace razor
