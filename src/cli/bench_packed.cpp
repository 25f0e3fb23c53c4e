// `razor bench gemv` / `razor bench qgemm`: packed-weight GEMV (decode) and GEMM (prefill)
// throughput on random weights, against the machine's measured memory read bandwidth.
// Prints GOP/s (2 ops per weight per token), GB/s of weight bytes (codes + scales) streamed,
// the streaming-read bandwidth of a buffer much larger than the last-level cache, and the
// fraction of it the kernel reached. Timings are medians of repeated runs.
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/commands.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/qformat.h"
#include "kernels/qgemm.h"

namespace razor {

// Streaming read bandwidth (bytes/s) over `bytes` of memory with the current thread count:
// one 64-byte line per iteration (one vector load), software-prefetched like the kernels.
double read_bandwidth(size_t bytes) {
  const size_t n = bytes / sizeof(uint64_t);
  void* p = std::aligned_alloc(size_t(2) << 20, n * sizeof(uint64_t));
  if (!p) fail("bench: out of memory allocating %zu bytes for the bandwidth test", bytes);
#ifdef MADV_HUGEPAGE
  madvise(p, n * sizeof(uint64_t), MADV_HUGEPAGE);
#endif
  uint64_t* buf = static_cast<uint64_t*>(p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < int64_t(n); ++i) buf[i] = uint64_t(i);
  volatile uint64_t sink = 0;
  // Each line is xor-ed into 8 lane accumulators (one vector load + xor per 64 bytes once
  // vectorised), so the probe is limited by memory, not by instructions, even on a core
  // shared with other work; prefetched 4 KiB ahead like the AVX-512 decode kernel.
  auto pass = [&] {
    uint64_t total = 0;
#pragma omp parallel reduction(+ : total)
    {
      uint64_t acc[8] = {};
#pragma omp for schedule(static)
      for (int64_t b = 0; b < int64_t(n / 8); ++b) {
        const uint64_t* q = buf + 8 * b;
        __builtin_prefetch(q + 512);
#pragma omp simd
        for (int l = 0; l < 8; ++l) acc[l] ^= q[l];
      }
      for (int l = 0; l < 8; ++l) total += acc[l];
    }
    sink = sink + total;
  };
  const double t = time_median(pass, 5, 0.3, 20);
  std::free(p);
  return double(n / 8 * 8 * sizeof(uint64_t)) / t;
}

int bench_packed(int argc, char** argv) {
  const std::string kind = argv[1];
  const bool gemv = kind == "gemv";
  ArgParser ap("razor bench " + kind,
               gemv ? "Decode GEMV (one token) of a packed low-bit matrix times int8 activations, on random "
                      "weights; compares the weight bytes streamed per second with the machine's measured "
                      "memory read bandwidth. Figures are medians of repeated runs."
                    : "Prefill GEMM (N tokens) of a packed low-bit matrix times int8 activations, on random "
                      "weights. Figures are medians of repeated runs.");
  ap.option("--layout", "mixed8", "ternary2 | ternary5 | int4 | mixed2 (2.79-bit) | mixed8 (1.88-bit)");
  ap.option("--rows", "3072", "output rows d_out");
  ap.option("--cols", "1024", "input columns d_in (a multiple of --group)");
  ap.option("--tokens", gemv ? "1" : "64", "tokens N per call");
  ap.option("--group", "64", "group size G: 64, 128 or 256");
  ap.option("--threads", "", "threads (default: OMP_NUM_THREADS or all cores)");
  ap.option("--isa", "", "force a tier: ref, avx2, avx512, neon (default: best this CPU runs)");
  ap.option("--bw-mib", "1024", "buffer size in MiB for the memory read-bandwidth test (0: skip)");
  ap.flag("--no-gfni", "AVX-512 tier: extract ternary fields with shifts and masks even where the CPU has GFNI");
  ap.option("--seconds", "1", "minimum time spent timing the kernel");
  if (!ap.parse(argc, argv, 2)) return 0;

  PackedDesc d = parse_layout(ap.str("--layout").c_str());
  d.d_out = ap.i64_in("--rows", 1, int64_t(1) << 24);
  d.d_in = ap.i64_in("--cols", 64, int64_t(1) << 20);
  d.G = int(ap.i64_in("--group", 64, 256));
  const int64_t N = ap.i64_in("--tokens", 1, 1 << 16);
  check_packed_desc(d, "--layout/--rows/--cols/--group");
  RZ_CHECK(double(d.d_out) * double(d.d_in) <= 4e9, "--rows x --cols: at most 4e9 weights in a benchmark");
  apply_threads_option(ap, 1, 1024);
  apply_isa_option(ap);
  if (ap.given("--no-gfni")) qgemm_avx512_set_gfni(false);
  const double min_seconds = ap.f64_in("--seconds", 0.01, 600.0);
  const int64_t bw_mib = ap.i64_in("--bw-mib", 0, 1 << 16);

  // Random codes valid for each row's kind, random fp16 scales.
  PackedMatrix probe;
  probe.desc = d;
  std::vector<int8_t> codes(size_t(d.d_out * d.d_in));
  std::vector<float> scales(size_t(d.d_out * (d.d_in / d.G)));
  Rng rng(1);
  for (int64_t i = 0; i < d.d_out; ++i) {
    const bool int4 = probe.row_kind(i) == RowKind::Int4;
    int8_t* c = codes.data() + i * d.d_in;
    for (int64_t k = 0; k < d.d_in; k += 8) {
      uint64_t r = rng.next_u64();
      for (int j = 0; j < 8; ++j, r >>= 8) c[k + j] = int8_t(int4 ? int(r & 15) % 15 - 7 : int(r & 255) % 3 - 1);
    }
  }
  for (float& s : scales) s = round_to_f16(0.001f + 0.01f * rng.uniform());
  const PackedMatrix W = pack_matrix(d, codes.data(), scales.data(), "bench");
  qgemm_prepare(W);  // as the engine does
  std::vector<int8_t>().swap(codes);

  std::vector<float> x(size_t(N * d.d_in)), y(size_t(N * d.d_out));
  for (float& v : x) v = rng.normal();
  std::vector<int8_t> qx(x.size());
  std::vector<float> sx(size_t(N * (d.d_in / d.G)));
  const double t_quant = time_median([&] { quantize_a8(x.data(), N, d.d_in, d.G, qx.data(), sx.data()); }, 3, 0.05, 50);
  const double t = time_median([&] { qgemm(W, qx.data(), sx.data(), N, y.data()); }, 5, min_seconds, 100000);

  // Process CPU seconds per call (all threads, OpenMP spin-waits included): on a machine
  // shared with other jobs the wall time also counts the time this process was not running.
  double t_cpu = 0.0;
  {
    timespec c0, c1;
    const double w0 = now_seconds();
    int reps = 0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    while (reps < 3 || now_seconds() - w0 < 0.5 * min_seconds) {
      qgemm(W, qx.data(), sx.data(), N, y.data());
      ++reps;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    t_cpu = (double(c1.tv_sec - c0.tv_sec) + 1e-9 * double(c1.tv_nsec - c0.tv_nsec)) / reps;
  }
  const double ops = 2.0 * double(d.d_out) * double(d.d_in) * double(N);
  const double wbytes = double(W.stream_bytes());
  const double bits = 8.0 * double(W.codes.size()) / (double(d.d_out) * double(d.d_in));
  std::printf("razor bench %s: layout %s%s, %lld x %lld, G %d, tokens %lld, threads %d, tier %s\n", kind.c_str(),
              layout_name(d.layout), d.layout == PackedLayout::Mixed ? std::to_string(d.P).c_str() : "",
              (long long)d.d_out, (long long)d.d_in, d.G, (long long)N, num_threads(), qtier_name(qtier_active()));
  std::printf("  weights      %.2f MiB (%.3f bits/weight in codes, %.3f with fp16 scales)\n", wbytes / 1048576.0,
              bits, 8.0 * wbytes / (double(d.d_out) * double(d.d_in)));
  std::printf("  time         %.3f ms per call (median)   A8 quantize %.3f ms\n", t * 1e3, t_quant * 1e3);
  std::printf("  throughput   %.2f GOP/s   %.2f GB/s of weights\n", ops / t * 1e-9, wbytes / t * 1e-9);
  std::printf("  cpu time     %.3f ms per call (process CPU, all threads)   %.2f GOP per CPU-second\n", t_cpu * 1e3,
              ops / t_cpu * 1e-9);
  if (bw_mib > 0) {
    const double bw = read_bandwidth(size_t(bw_mib) << 20);
    std::printf("  memory read  %.2f GB/s (%lld MiB streaming read, %d threads, median)\n", bw * 1e-9,
                (long long)bw_mib, num_threads());
    std::printf("  achieved     %.1f%% of measured read bandwidth%s\n", 100.0 * wbytes / t / bw,
                wbytes > 32.0 * 1048576.0 ? "" : "  (weights may fit in the last-level cache)");
  }
  return 0;
}

}  // namespace razor
