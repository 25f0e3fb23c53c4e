// `razor bench gemm`: times the fp32 training GEMM (kernels/gemm.h) on one shape and prints
// GFLOP/s (median over repeats) with the tier and thread count used. --check compares one
// result against the scalar reference first, so a fast but wrong tier cannot post a figure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "kernels/gemm.h"

namespace razor {

int bench_gemm(int argc, char** argv) {
  ArgParser ap("razor bench gemm",
               "Time C = op(A) op(B) (fp32, row-major) for one M x N x K shape and print GFLOP/s, the "
               "median over --repeat runs after one warm-up run.");
  ap.option("--m", "1024", "rows of op(A) and C");
  ap.option("--n", "1024", "columns of op(B) and C");
  ap.option("--k", "1024", "depth");
  ap.option("--threads", "", "OpenMP threads (default: OMP_NUM_THREADS or all cores)");
  ap.option("--isa", "", "force a tier: ref, avx2, avx512 (default: the best this CPU has)");
  ap.option("--repeat", "5", "timed runs");
  ap.flag("--trans-a", "A stored [K, M] (the A^T B of a weight gradient)");
  ap.flag("--trans-b", "B stored [N, K] (the A B^T of a linear layer forward / input gradient)");
  ap.flag("--check", "compare against the scalar reference before timing (slow for big shapes)");
  ap.flag("--peak", "also time the tier's multiply-add peak (12 FMA chains in registers per thread, no "
                    "memory) on the same threads and print the GEMM's median as a share of it");
  if (!ap.parse(argc, argv)) return 0;
  const int64_t M = ap.i64_in("--m", 1, 1 << 20), N = ap.i64_in("--n", 1, 1 << 20),
                K = ap.i64_in("--k", 1, 1 << 20);
  const int repeat = int(ap.i64_in("--repeat", 1, 100000));
  const bool ta = ap.on("--trans-a"), tb = ap.on("--trans-b");
  apply_threads_option(ap, 1, 4096);
  apply_isa_option(ap);
  RZ_CHECK(double(M) * double(K) + double(K) * double(N) + double(M) * double(N) < 2.0e9,
           "--m/--n/--k: matrices too large for a benchmark (over 8 GB)");

  Rng rng(1);
  Tensor a = Tensor::empty({M, K}), b = Tensor::empty({K, N}), c = Tensor::zeros({M, N});
  fill_uniform(a, rng, -1.0f, 1.0f);
  fill_uniform(b, rng, -1.0f, 1.0f);
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  auto run = [&] { sgemm(ta, tb, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), N); };

  if (ap.on("--check")) {
    Tensor r = Tensor::zeros({M, N});
    sgemm_ref(ta, tb, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, r.data(), N);
    run();
    // |a|, |b| <= 1, so each element's error bound is K * eps * K (see tests/test_gemm.cpp).
    const double tol = double(K + 4) * 1.1920929e-7 * double(K);
    double worst = 0.0;
    for (int64_t i = 0; i < M * N; ++i) worst = std::max(worst, std::fabs(double(c[i]) - double(r[i])));
    RZ_CHECK(worst <= tol, "bench gemm: result differs from sgemm_ref by %g (tolerance %g)", worst, tol);
    std::printf("check: max |C - C_ref| = %.3g (tolerance %.3g)\n", worst, tol);
  }

  run();  // warm-up: page faults, packing buffers, thread pool start
  std::vector<double> gflops;
  for (int r = 0; r < repeat; ++r) {
    double t0 = now_seconds();
    run();
    double dt = now_seconds() - t0;
    gflops.push_back(2.0 * double(M) * double(N) * double(K) / dt * 1e-9);
  }
  std::sort(gflops.begin(), gflops.end());
  std::printf("gemm %s%s M=%lld N=%lld K=%lld isa=%s threads=%d repeat=%d: %.1f GFLOP/s median (min %.1f, max %.1f)\n",
              ta ? "A^T" : "A", tb ? "B^T" : "B", (long long)M, (long long)N, (long long)K, isa_name(active_isa()),
              num_threads(), repeat, gflops[gflops.size() / 2], gflops.front(), gflops.back());
  if (ap.on("--peak")) {
    // Sized to ~0.3 s from a short first run; the best of three (the peak is what the core can
    // do, so a run slowed by another process is the one to discard).
    int64_t iters = 1 << 20;
    double t0 = now_seconds();
    fma_peak_gflops(num_threads(), iters);
    iters = std::max<int64_t>(iters, int64_t(double(iters) * 0.3 / std::max(1e-6, now_seconds() - t0)));
    double peak = 0.0;
    for (int r = 0; r < 3; ++r) peak = std::max(peak, fma_peak_gflops(num_threads(), iters));
    std::printf("fma peak isa=%s threads=%d: %.1f GFLOP/s (%.1f per thread); this GEMM's median is %.0f%% of it\n",
                isa_name(active_isa()), num_threads(), peak, peak / num_threads(),
                100.0 * gflops[gflops.size() / 2] / peak);
  }
  return 0;
}

}  // namespace razor
