// Tests for kernels/gemm*: every sgemm tier this CPU can run (called directly, and through sgemm
// forced with set_isa) against the
// double-accumulating scalar reference sgemm_ref, over all transpose combinations, alpha/beta,
// odd shapes, padded leading dimensions, shapes that cross the cache-block boundaries, and 1 or
// 2 threads; and the beta == 0 contract (C is not read, so NaN in C must not propagate).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <limits>
#include <vector>

#include "core/cpu.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/gemm.h"
#include "kernels/gemm_tiers.h"

using namespace razor;

namespace {

struct Case {
  int64_t M, N, K;
};

// Shapes: tiny (direct loop), odd sizes around the micro-tile sizes (6x16, 12x32, 4x8), and
// sizes past the blocks: K > 2 * kc (several depth passes, so beta is applied once and later
// passes accumulate), M > mc (several row blocks), N > nc = 4096 (several B panels), and
// M <= 6 with a large N. The tiers are called directly with 1 and 2 threads (sgemm itself
// would keep small shapes on one thread); with 2 threads, {64, 600, 120} and {5, 1700, 500}
// split C by columns and {160, 100, 280} by rows.
const Case kCases[] = {{1, 1, 1},     {3, 17, 5},   {17, 3, 65},    {65, 127, 17}, {127, 65, 3},
                       {1, 129, 127}, {127, 1, 65}, {33, 47, 600},  {300, 70, 40}, {5, 1000, 300},
                       {7, 4200, 9},  {128, 96, 257}, {64, 600, 120}, {5, 1700, 500},
                       {160, 100, 280}};

struct Scalars {
  float alpha, beta;
};
const Scalars kScalars[] = {{1.0f, 0.0f}, {-0.5f, 1.0f}, {2.0f, -0.75f}};

using TierFn = void (*)(int, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                       int64_t, float, float*, int64_t);
struct Isas {
  Isa isa;
  const char* name;
  TierFn fn;
};
#if defined(__x86_64__) || defined(__i386__)
const Isas kIsas[] = {{Isa::Ref, "ref", sgemm_scalar}, {Isa::Avx2, "avx2", sgemm_avx2},
                      {Isa::Avx512, "avx512", sgemm_avx512}};
#else
const Isas kIsas[] = {{Isa::Ref, "ref", sgemm_scalar}};  // x86 tiers are not built here
#endif

// Restores the thread count and tier a test changed.
struct Restore {
  int threads = num_threads();
  Isa isa = active_isa();
  ~Restore() {
    set_num_threads(threads);
    set_isa(isa);
  }
};

void fill(std::vector<float>& v, Rng& rng) {
  for (float& x : v) x = rng.uniform() * 2.0f - 1.0f;
}

}  // namespace

TEST_SUITE("gemm") {
  TEST_CASE("every supported tier matches sgemm_ref (trans, alpha/beta, odd shapes, leading dims, threads)") {
    const float eps = std::numeric_limits<float>::epsilon();
    int ran = 0;
    for (const Isas& tier : kIsas) {
      if (!isa_supported(tier.isa)) {
        MESSAGE("gemm: skipping tier " << std::string(tier.name) << ": not supported by this CPU");
        continue;
      }
      for (const Case& cs : kCases)
        for (int t = 0; t < 4; ++t) {
          const bool ta = t & 1, tb = t & 2;
          const int64_t M = cs.M, N = cs.N, K = cs.K;
          // Leading dimensions padded by odd amounts, so row starts are unaligned.
          const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
          Rng rng(uint64_t(M * 1000003 + N * 1009 + K * 7 + t));
          std::vector<float> a(size_t((ta ? K : M) * lda)), b(size_t((tb ? N : K) * ldb)), c0(size_t(M * ldc));
          fill(a, rng);
          fill(b, rng);
          fill(c0, rng);
          // prod = op(A) op(B) from the reference; mag = sum_k |a_ik| |b_kj| (the reference on |A|,
          // |B|) for the error bound. Both are computed once and shared by every alpha/beta.
          std::vector<float> prod(size_t(M * N)), mag(size_t(M * N)), abs_a = a, abs_b = b;
          for (float& x : abs_a) x = std::fabs(x);
          for (float& x : abs_b) x = std::fabs(x);
          sgemm_ref(ta, tb, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, prod.data(), N);
          sgemm_ref(ta, tb, M, N, K, 1.0f, abs_a.data(), lda, abs_b.data(), ldb, 0.0f, mag.data(), N);
          for (const Scalars& s : kScalars) {
            // Two threads for the first alpha/beta pair only: the split of C does not depend on
            // alpha/beta, and each fork costs milliseconds when the test machine is busy.
            for (int threads = 1; threads <= (&s == kScalars ? 2 : 1); ++threads) {
              std::vector<float> c = c0;
              tier.fn(threads, ta, tb, M, N, K, s.alpha, a.data(), lda, b.data(), ldb, s.beta, c.data(), ldc);
              ++ran;
              // Error bound: an fp32 dot product of length K summed in any order is within
              // gamma_K * sum|a||b| (gamma_K ~ K * eps) of the exact value; splitting K into
              // depth passes, scaling by alpha and adding beta * C add a few more roundings,
              // each <= eps relative to |alpha| sum|a||b| + |beta c|. The reference (double
              // accumulation) is exact to within one final rounding. Hence (K + 4) * eps.
              // (The tiers accumulate in fp32; a tier that dropped a term or misplaced a row
              // would be off by ~|a||b| ~ 1/3 per element, far above this bound.)
              int bad = 0;
              for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) {
                  const size_t e = size_t(i * ldc + j);
                  const double tol = double(K + 4) * eps *
                                     (std::fabs(s.alpha) * mag[size_t(i * N + j)] + std::fabs(s.beta * c0[e]));
                  const double want = double(s.alpha) * prod[size_t(i * N + j)] + double(s.beta) * c0[e];
                  if (!(std::fabs(double(c[e]) - want) <= tol + 1e-30)) ++bad;
                }
              // The padding between rows of C must be left alone.
              for (int64_t i = 0; i < M; ++i)
                for (int64_t j = N; j < ldc; ++j)
                  if (c[size_t(i * ldc + j)] != c0[size_t(i * ldc + j)]) ++bad;
              if (bad)
                FAIL_CHECK("tier " << std::string(tier.name) << " threads " << threads << " M=" << M << " N=" << N << " K=" << K
                                   << " trans_a=" << ta << " trans_b=" << tb << " alpha=" << s.alpha
                                   << " beta=" << s.beta << ": " << bad << " elements out of tolerance");
            }
          }
        }
    }
    CHECK(ran > 0);
  }

  TEST_CASE("sgemm dispatches to the forced tier: tiny, single- and multi-threaded sizes") {
    Restore restore;
    const float eps = std::numeric_limits<float>::epsilon();
    for (const Isas& tier : kIsas)
      if (!isa_supported(tier.isa))
        MESSAGE("gemm: skipping sgemm with tier " << std::string(tier.name) << ": not supported by this CPU");
    // 4x5x6 takes the direct loop for tiny problems; 256^3 (34 MFLOP) is big enough that sgemm
    // itself uses 2 threads when given 2.
    for (const Case& cs : {Case{4, 5, 6}, Case{40, 33, 20}, Case{256, 256, 256}})
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        const int64_t M = cs.M, N = cs.N, K = cs.K;
        Rng rng(7);
        std::vector<float> a(size_t(M * K)), b(size_t(K * N)), c0(size_t(M * N));
        fill(a, rng);
        fill(b, rng);
        fill(c0, rng);
        std::vector<float> ref = c0;
        sgemm_ref(ta, tb, M, N, K, 1.5f, a.data(), ta ? M : K, b.data(), tb ? K : N, 0.5f, ref.data(), N);
        // |a|, |b|, |c| <= 1, so sum|a||b| <= K and the bound above becomes (K + 4) eps (1.5 K + 0.5).
        const double tol = double(K + 4) * eps * (1.5 * double(K) + 0.5);
        for (const Isas& tier : kIsas) {
          if (!isa_supported(tier.isa)) continue;
          for (int threads : {1, 2}) {
            set_isa(tier.isa);
            set_num_threads(threads);
            REQUIRE(active_isa() == tier.isa);
            std::vector<float> c = c0;
            sgemm(ta, tb, M, N, K, 1.5f, a.data(), ta ? M : K, b.data(), tb ? K : N, 0.5f, c.data(), N);
            double worst = 0.0;
            for (size_t e = 0; e < c.size(); ++e) worst = std::max(worst, std::fabs(double(c[e]) - double(ref[e])));
            INFO("tier " << std::string(tier.name) << " threads " << threads << " M=" << M << " N=" << N
                         << " K=" << K << " trans_a=" << ta << " trans_b=" << tb);
            CHECK(worst <= tol);
          }
        }
      }
  }

  TEST_CASE("a few rows times B^T (read in place) equal those rows of a larger product bit for bit") {
    // Fewer rows than the micro-tile with B stored [N, K] (a linear on one or a few tokens:
    // evaluation and generation with a KV cache) take gemm_small_m_nt, which must give each
    // element the blocked path's operations: the cached decode is held equal to the full forward
    // bit for bit. alpha 1, beta 0 (a linear's forward), where the blocked path's full tiles and
    // edge tiles agree; K 700 takes three depth passes, N 37 a partial column block.
    for (const Isas& tier : kIsas) {
      if (!isa_supported(tier.isa)) continue;
      for (int64_t K : {5, 64, 700})
        for (int64_t m : {1, 2, 3, 5})
          for (int threads : {1, 2}) {
            const int64_t M = 30, N = 37;
            Rng rng(uint64_t(K + m));
            std::vector<float> a(size_t(M * K)), b(size_t(N * K)), big(size_t(M * N)), small(size_t(m * N), NAN);
            fill(a, rng);
            fill(b, rng);
            tier.fn(threads, false, true, M, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f, big.data(), N);
            tier.fn(threads, false, true, m, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f, small.data(), N);
            INFO("tier " << std::string(tier.name) << " K=" << K << " m=" << m << " threads " << threads);
            CHECK(std::memcmp(small.data(), big.data(), small.size() * sizeof(float)) == 0);
          }
    }
  }

  TEST_CASE("beta == 0 does not read C: NaN in C does not propagate") {
    Restore restore;
    for (const Isas& tier : kIsas) {
      if (!isa_supported(tier.isa)) continue;
      for (const Case& cs : {Case{2, 3, 4}, Case{37, 53, 300}, Case{130, 70, 20}, Case{4, 5, 0}})
        for (int threads : {1, 2})
          for (float alpha : {1.0f, 0.0f}) {
            set_isa(tier.isa);
            set_num_threads(threads);
            const int64_t M = cs.M, N = cs.N, K = cs.K;
            Rng rng(42);
            std::vector<float> a(size_t(M * K + 1)), b(size_t(K * N + 1));
            fill(a, rng);
            fill(b, rng);
            std::vector<float> c(size_t(M * N), std::numeric_limits<float>::quiet_NaN());
            sgemm(false, false, M, N, K, alpha, a.data(), std::max<int64_t>(K, 1), b.data(), N, 0.0f, c.data(), N);
            int nonfinite = 0;
            for (float x : c) nonfinite += !std::isfinite(x);
            INFO("tier " << std::string(tier.name) << " threads " << threads << " M=" << M << " N=" << N << " K=" << K
                         << " alpha=" << alpha);
            CHECK(nonfinite == 0);
          }
    }
  }

  TEST_CASE("K == 0 or alpha == 0 scales C by beta; empty M or N is a no-op") {
    std::vector<float> c = {1, 2, 3, 4, 5, 6};
    float dummy = 7.0f;
    sgemm(false, false, 2, 3, 0, 1.0f, &dummy, 1, &dummy, 3, 0.5f, c.data(), 3);
    CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3});
    std::vector<float> a = {1, 2}, b = {3, 4, 5, 6, 7, 8};
    sgemm(false, false, 2, 3, 1, 0.0f, a.data(), 1, b.data(), 3, 2.0f, c.data(), 3);
    CHECK(c == std::vector<float>{1, 2, 3, 4, 5, 6});
    sgemm(false, false, 0, 3, 1, 1.0f, a.data(), 1, b.data(), 3, 0.0f, c.data(), 3);
    CHECK(c == std::vector<float>{1, 2, 3, 4, 5, 6});
    // And a hand-checked product: [1;2] x [3 4 5] (K = 1).
    sgemm(false, false, 2, 3, 1, 1.0f, a.data(), 1, b.data(), 3, 1.0f, c.data(), 3);
    CHECK(c == std::vector<float>{4, 6, 8, 10, 13, 16});
  }

  TEST_CASE("the FMA peak probe runs each tier's own recurrence: same bits as scalar fma (SIMD) or a*b+c (scalar)") {
    Restore restore;
    // 12 chains x 5,000 steps converge towards kFmaD / (1 - kFmaB); fused and unfused rounding
    // part ways within a few steps, so a tier that ran the wrong recurrence (or skipped
    // steps, or fewer chains) gives other bits.
    const float fused = fma_chains_ref(5000, true), plain = fma_chains_ref(5000, false);
    REQUIRE(fused != plain);
    REQUIRE(fma_chains_ref(4999, true) != fused);
    for (const Isas& tier : kIsas) {
      if (!isa_supported(tier.isa)) continue;
      set_isa(tier.isa);
      const bool simd = tier.isa != Isa::Ref;
      CHECK(fma_lanes() == (tier.isa == Isa::Avx512 ? 16 : tier.isa == Isa::Avx2 ? 8 : 1));
      for (int threads : {1, 2}) {
        float r = 0.0f;
        const double gflops = fma_peak_gflops(threads, 5000, &r);
        INFO("tier " << std::string(tier.name) << " threads " << threads);
        CHECK(r == (simd ? fused : plain));
        CHECK(std::isfinite(gflops));
        CHECK(gflops > 0.0);
      }
    }
  }
}
