// The cache-blocked fp32 GEMM driver shared by every tier (GotoBLAS / BLIS structure):
//
//   for jc in N step NC:
//     for pc in K step KC:
//       pack B[pc:pc+kc, jc:jc+nc] into NR-wide slivers          (B panel kc x nc, in L3)
//       for ic in M step MC:
//         pack A[ic:ic+mc, pc:pc+kc] into MR-tall slivers        (A block mc x kc, in L2)
//         for jr over B slivers:         one B sliver [kc x NR] stays in L1
//           for ir over A slivers:       micro-kernel: MR x NR tile of C held in registers
//
// Threads (parallel_tiles) each run this loop nest on their own rectangle of C.
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
  __attribute__((always_inline)) ~Scratch() { std::free(ptr); }
};

// op(A)[i0 + s, p0 + k] for the packing loops: A is [M, K] (lda) or, transposed, [K, M].
// Packs rows [i0, i0 + mc) x depth [p0, p0 + kc) of op(A) into MR-tall slivers: sliver s
// holds, for k = 0..kc-1, the MR values op(A)[s*MR + r, k] contiguously. Rows past mc are 0,
// so the micro-kernel never needs an edge case in M.
// The rows of A are gathered W depths at a time through V::transpose_rows (W rows x W depths
// in registers; MR <= W, the rows past mr repeat row mr - 1 and are not stored).
template <class V, int MR>
void pack_a(bool trans_a, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            float* out) {
  constexpr int W = V::W;
  for (int64_t s = 0; s < mc; s += MR, out += kc * MR) {
    const int64_t mr = std::min<int64_t>(MR, mc - s);
    if (!trans_a) {
      const float* src = A + (i0 + s) * lda + p0;  // row r at src + r*lda, contiguous in k
      if (MR <= W && W > 1 && mr == MR) {
        alignas(64) float rows[W * W];
        int64_t k = 0;
        for (; k + W <= kc; k += W) {
          // transpose_rows reads W rows: with MR < W the block is first copied, the rows past
          // MR repeating row MR - 1 (never read past the sliver's last row).
          if (MR == W) {
            V::transpose_rows(src + k, lda, rows);
          } else {
            alignas(64) float blk[W * W];
            for (int r = 0; r < W; ++r)
              V::store(blk + r * W, V::load(src + (r < MR ? r : MR - 1) * lda + k));
            V::transpose_rows(blk, W, rows);
          }
          for (int kk = 0; kk < W; ++kk)
            for (int r = 0; r < MR; ++r) out[(k + kk) * MR + r] = rows[kk * W + r];
        }
        for (; k < kc; ++k)
          for (int r = 0; r < MR; ++r) out[k * MR + r] = src[r * lda + k];
      } else if (mr == MR) {
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
template <class V, int NR>
void pack_b_sliver(bool trans_b, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nr,
                   float* out) {
  constexpr int W = V::W;
  if (trans_b && nr == NR && W > 1 && NR % W == 0) {  // W columns x W depths per transpose
    const float* src = B + j0 * ldb + p0;
    alignas(64) float cols[W * W];
    int64_t k = 0;
    for (; k + W <= kc; k += W)
      for (int v = 0; v < NR / W; ++v) {
        V::transpose_rows(src + v * W * ldb + k, ldb, cols);
        for (int kk = 0; kk < W; ++kk) V::store(out + (k + kk) * NR + v * W, V::load(cols + kk * W));
      }
    for (; k < kc; ++k)
      for (int j = 0; j < NR; ++j) out[k * NR + j] = src[j * ldb + k];
    return;
  }
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
  // Fetch the C tile while the depth loop runs (it is read or written only at the end).
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    __builtin_prefetch(c + r * ldc, 1);
    __builtin_prefetch(c + r * ldc + NV * V::W - 1, 1);
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
#pragma GCC unroll 4
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

// C = alpha * op(A) op(B) + beta * C on the calling thread. Requires M, N, K >= 1.
template <class V, int MR, int NV>
void gemm_serial(const Blocking& bl, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int NR = NV * V::W;
  const int64_t KC = std::min(bl.kc, K);
  const int64_t NC = std::min((bl.nc + NR - 1) / NR * NR, (N + NR - 1) / NR * NR);
  const int64_t MC = std::min(std::max<int64_t>(MR, bl.mc / MR * MR), (M + MR - 1) / MR * MR);
  static thread_local Scratch a_scratch, b_scratch;
  float* apack = a_scratch.get(size_t(MC) * size_t(KC));
  float* bpack = b_scratch.get(size_t(KC) * size_t(NC));
  alignas(64) float edge[MR * NR];
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;  // later depth passes accumulate
      for (int64_t p = 0; p * NR < nc; ++p)
        pack_b_sliver<V, NR>(trans_b, B, ldb, pc, kc, jc + p * NR, std::min<int64_t>(NR, nc - p * NR),
                          bpack + p * NR * kc);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        pack_a<V, MR>(trans_a, A, lda, ic, mc, pc, kc, apack);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t nr = std::min<int64_t>(NR, nc - jr);
          const float* bs = bpack + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = std::min<int64_t>(MR, mc - ir);
            const float* as = apack + ir * kc;
            float* ct = C + (ic + ir) * ldc + jc + jr;
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
    }
  }
}

// The threaded helper, independent of the tier: splits C into a grid of tr x tc sub-problems
// (tr * tc = threads), cut on MR-row and NR-column boundaries, and runs
// f(i0, i1, j0, j1) for each on its own thread of one OpenMP region. Each thread packs its own
// panels, so there is no barrier between depth passes: on a machine shared with other jobs a
// descheduled thread then delays only its own tile, where a barrier-synchronised shared-panel
// scheme lets the other thread spin (measured: 2-thread GFLOP/s halved under load, see
// docs/gemm.md). The price is that each row group packs its own B (and each column group its
// own A), so the grid is chosen to minimise that duplicated packing: tc * M*K + tr * K*N.
template <class F>
void parallel_tiles(int threads, int64_t M, int64_t N, int64_t K, int MR, int NR, const F& f) {
  const int64_t slivers_m = (M + MR - 1) / MR, slivers_n = (N + NR - 1) / NR;
  int tr = 1, tc = 1;
  double best = -1.0;
  for (int r = 1; r <= threads; ++r) {
    if (threads % r) continue;
    const int c = threads / r;
    if (r > slivers_m || c > slivers_n) continue;
    const double cost = double(c) * double(M) * double(K) + double(r) * double(K) * double(N);
    if (best < 0 || cost < best) best = cost, tr = r, tc = c;
  }
  if (best < 0 || tr * tc == 1) {  // too small to split (or threads == 1)
    f(int64_t(0), M, int64_t(0), N);
    return;
  }
#pragma omp parallel num_threads(tr * tc)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    if (t < tr * tc) {
      const int r = t / tc, c = t % tc;
      const int64_t i0 = std::min(M, (r * slivers_m / tr) * MR), i1 = std::min(M, ((r + 1) * slivers_m / tr) * MR);
      const int64_t j0 = std::min(N, (c * slivers_n / tc) * NR), j1 = std::min(N, ((c + 1) * slivers_n / tc) * NR);
      if (i1 > i0 && j1 > j0) f(i0, i1, j0, j1);
    }
  }
}

// NB blocks of W columns from j0 (only the last block of the last call may be partial): NB
// independent chains per row of A, so one fused multiply-add's latency does not bound the loop.
template <class V, int MR, int NB>
void small_m_nt_columns(const Blocking& bl, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int64_t j0) {
  constexpr int W = V::W;
  const int64_t KC = std::min(bl.kc, K);
  alignas(64) float bt[NB][W * W];  // bt[b][kk * W + l] = B[j0 + b W + l][k0 + kk]
  alignas(64) float out[W];
  int nj[NB];
  for (int b = 0; b < NB; ++b) nj[b] = int(std::max<int64_t>(0, std::min<int64_t>(W, N - j0 - b * W)));
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc);
    const float beta_eff = pc == 0 ? beta : 1.0f;
    typename V::T acc[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int b = 0; b < NB; ++b) acc[i][b] = V::zero();
    for (int64_t k0 = 0; k0 < kc; k0 += W) {
      const int nk = int(std::min<int64_t>(W, kc - k0));
      for (int b = 0; b < NB; ++b) {
        const float* bs = B + (j0 + b * W) * ldb + pc + k0;
        if (nj[b] == W && nk == W) {
          V::transpose_rows(bs, ldb, bt[b]);
        } else {
          for (int kk = 0; kk < W; ++kk)
            for (int l = 0; l < W; ++l) bt[b][kk * W + l] = kk < nk && l < nj[b] ? bs[l * ldb + kk] : 0.0f;
        }
      }
      for (int kk = 0; kk < nk; ++kk)
        for (int i = 0; i < M; ++i) {
          const typename V::T a = V::set1(A[i * lda + pc + k0 + kk]);
#pragma GCC unroll 4
          for (int b = 0; b < NB; ++b) acc[i][b] = V::fmadd(a, V::load(bt[b] + kk * W), acc[i][b]);
        }
    }
    for (int i = 0; i < M; ++i)
      for (int b = 0; b < NB; ++b) {
        V::store(out, acc[i][b]);
        float* c = C + i * ldc + j0 + b * W;
        for (int l = 0; l < nj[b]; ++l) {
          const float v = alpha * out[l];
          c[l] = beta_eff == 0.0f ? v : v + beta_eff * c[l];
        }
      }
  }
}

// C = alpha * A B^T + beta * C for M < MR rows of A ([M, K], not transposed) and B stored
// [N, K] (a linear on one or a few tokens: evaluation and generation on a checkpoint with a KV
// cache). gemm_serial would pack all of B, gathering its columns (most of such a call's time),
// and run a micro-kernel whose MR rows are mostly empty. Here B is read in place: W rows of it
// (W = V::W output columns) are transposed W x W at a time through a small buffer (V::transpose
// where the tier has one), and each row of A is multiplied by them. Every element of C gets the
// operations gemm_serial gives it when M < MR (its edge path): per depth block of bl.kc, a fused
// chain over k in order from zero, then v = alpha * acc; C = beta_eff == 0 ? v : v + beta_eff * C
// (beta_eff = beta for the first block, 1 after) — the same bits.
template <class V, int MR>
void gemm_small_m_nt(const Blocking& bl, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int W = V::W, NB = 4;
  int64_t j0 = 0;
  for (; j0 + NB * W <= N; j0 += NB * W) small_m_nt_columns<V, MR, NB>(bl, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, j0);
  for (; j0 < N; j0 += W) small_m_nt_columns<V, MR, 1>(bl, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, j0);
}

// The tier's multiply-add throughput without memory: kFmaChains independent chains
// a_c <- a_c * b + d, one register each (enough to cover the FMA latency times the FMA ports:
// 4 cycles x 2 ports on Zen 3 and Skylake), run `iters` steps. Returns the sum over chains, in
// chain order, of lane 0: the same recurrence in scalar std::fma gives the same bits
// (fma_chains_ref), which is how the tests hold it. `razor bench gemm --peak` times it.
constexpr int kFmaChains = 12;
inline float fma_chain_start(int c) { return 0.25f * float(c); }
constexpr float kFmaB = 0.999999f, kFmaD = 1e-3f;

template <class V>
float fma_chains(int64_t iters) {
  typename V::T a[kFmaChains];
#pragma GCC unroll 12
  for (int c = 0; c < kFmaChains; ++c) a[c] = V::set1(fma_chain_start(c));
  const typename V::T b = V::set1(kFmaB), d = V::set1(kFmaD);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12  // all chains in registers: a loop over them would go through memory
    for (int c = 0; c < kFmaChains; ++c) a[c] = V::fmadd(a[c], b, d);
  float sum = 0.0f, lane[V::W];
  for (int c = 0; c < kFmaChains; ++c) {
    V::store(lane, a[c]);
    sum += lane[0];
  }
  return sum;
}

// C = alpha * op(A) op(B) + beta * C on `threads` threads (see parallel_tiles).
template <class V, int MR, int NV>
void gemm_blocked(const Blocking& bl, int threads, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc) {
  if (!trans_a && trans_b && M < MR) {  // a few tokens through a linear: B read in place
    parallel_tiles(threads, M, N, K, MR, NV * V::W, [&](int64_t, int64_t, int64_t j0, int64_t j1) {
      gemm_small_m_nt<V, MR>(bl, M, j1 - j0, K, alpha, A, lda, B + j0 * ldb, ldb, beta, C + j0, ldc);
    });
    return;
  }
  parallel_tiles(threads, M, N, K, MR, NV * V::W, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const float* a = trans_a ? A + i0 : A + i0 * lda;
    const float* b = trans_b ? B + j0 * ldb : B + j0;
    gemm_serial<V, MR, NV>(bl, trans_a, trans_b, i1 - i0, j1 - j0, K, alpha, a, lda, b, ldb, beta,
                           C + i0 * ldc + j0, ldc);
  });
}

}  // namespace gemm_detail
}  // namespace razor
