// Timing of the fused autograd ops (forward + backward), for docs/autograd.md.
// Not part of the build; compile against the library:
//   make -j2
//   g++ -std=c++17 -O2 -march=native -ffp-contract=off -fopenmp -Isrc -I. tools/bench_autograd.cpp build/librazor.a -fopenmp -o build/bench_autograd
//   OMP_NUM_THREADS=1 ./build/bench_autograd
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace razor;

static Tensor randn(const Shape& s, Rng& r) {
  Tensor t = Tensor::empty(s);
  fill_normal(t, r, 1.0f);
  return t;
}

static double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Best of `reps` runs, as "wall ms / cpu ms": the minimum is the least disturbed by other
// processes; process CPU time (all threads) is robust on a shared machine.
template <class F>
static std::string best_ms(F f, int reps) {
  f();
  double wall = 1e30, cpu = 1e30;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_seconds(), c0 = cpu_seconds();
    f();
    wall = std::min(wall, (now_seconds() - t0) * 1e3);
    cpu = std::min(cpu, (cpu_seconds() - c0) * 1e3);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f / %.1f", wall, cpu);
  return buf;
}

int main() {
  Rng rng(1);
  const int64_t B = 4, T = 256, H = 8, K = 4, D = 64;
  Var q(randn({B, T, H, D}, rng), true), k(randn({B, T, K, D}, rng), true), v(randn({B, T, K, D}, rng), true);
  Var W(randn({B, T, H, D}, rng));
  auto attn = [&](bool fused, bool bwd) {
    Var o = fused ? attention(q, k, v) : attention_composed(q, k, v);
    if (bwd) {
      Var l = sum(mul(o, W));
      backward(l);
    } else {
      tape().clear();
    }
  };
  std::printf("threads %d; times are best-of wall ms / process cpu ms\n", num_threads());
  std::printf("attention B=%lld T=%lld H=%lld K=%lld D=%lld  fused: fwd %s, fwd+bwd %s\n", (long long)B,
              (long long)T, (long long)H, (long long)K, (long long)D, best_ms([&] { attn(true, false); }, 5).c_str(),
              best_ms([&] { attn(true, true); }, 5).c_str());
  std::printf("                                           composed: fwd %s, fwd+bwd %s\n",
              best_ms([&] { attn(false, false); }, 2).c_str(), best_ms([&] { attn(false, true); }, 2).c_str());
  const int64_t N = 2048, C = 1024, F = 2816;
  Var x(randn({N, C}, rng), true), w(randn({C}, rng), true);
  std::printf("rmsnorm N=%lld C=%lld fwd+bwd %s\n", (long long)N, (long long)C, best_ms([&] {
                Var l = sum(rmsnorm(x, w, 1e-6f));
                backward(l);
              }, 5).c_str());
  Var g(randn({N, F}, rng), true), u(randn({N, F}, rng), true);
  std::printf("swiglu N=%lld F=%lld fwd+bwd %s\n", (long long)N, (long long)F, best_ms([&] {
                Var l = sum(swiglu(g, u));
                backward(l);
              }, 5).c_str());
  const int64_t NN = 512, V = 32000;
  Var logits(randn({NN, V}, rng), true);
  std::vector<int32_t> tg(size_t(NN), 5);
  std::printf("cross_entropy N=%lld V=%lld fwd+bwd %s\n", (long long)NN, (long long)V, best_ms([&] {
                Var l = cross_entropy(logits, tg);
                backward(l);
              }, 5).c_str());
  return 0;
}
