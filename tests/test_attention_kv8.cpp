// Tests for kernels/attention_kv8: the AVX-512 and AVX2 tiers against the scalar reference (the
// engine's attention) on random int8 caches, odd token counts, positions and GQA ratios; thread
// count invariance of the reference and the AVX2 tier's query-block split; the AVX2 and NEON exps;
// the decode tiers (AVX-512, AVX2, NEON under qemu) against the block reference.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/threads.h"
#include "kernels/attention_kv8.h"

using namespace razor;

namespace {

struct Case {
  int64_t H, Kh, D, p0, n;
  std::vector<float> q, ks, vs;
  std::vector<int8_t> k, v;
  Case(int64_t H_, int64_t Kh_, int64_t D_, int64_t p0_, int64_t n_) : H(H_), Kh(Kh_), D(D_), p0(p0_), n(n_) {
    const int64_t ctx = p0 + n;
    Rng rng(uint64_t(p0 * 100 + n + H * 7 + D));
    q.resize(size_t(n * H * D));
    ks.resize(size_t(ctx * Kh));
    vs.resize(ks.size());
    k.resize(size_t(ctx * Kh * D));
    v.resize(k.size());
    for (float& x : q) x = rng.normal();
    for (int8_t& x : k) x = int8_t(int(rng.below(255)) - 127);
    for (int8_t& x : v) x = int8_t(int(rng.below(255)) - 127);
    for (float& x : ks) x = 0.002f + 0.01f * rng.uniform();  // scores of order +-10
    for (float& x : vs) x = 0.001f + 0.02f * rng.uniform();
  }
  // layout 0: [ctx, Kh, D]; 1: [Kh, ctx, D].
  AttnKv8 args(int layout, float* out) const {
    const int64_t ctx = p0 + n;
    return AttnKv8{q.data(), k.data(), v.data(), ks.data(), vs.data(), layout ? 1 : Kh, layout ? ctx : 1,
                   n, p0, H, Kh, D, float(1.0 / std::sqrt(double(D))), out};
  }
  float vmax() const {  // max |v_j * vs_j| (the same in both layouts: the test data is layout-free)
    float m = 0;
    for (size_t r = 0; r < vs.size(); ++r)
      for (int64_t i = 0; i < D; ++i) m = std::max(m, std::fabs(float(v[r * size_t(D) + size_t(i)]) * vs[r]));
    return m;
  }
};

#if defined(__x86_64__)
// A tier against the reference on H/Kh 4/2, 6/2, 2/2, 2/1 x D 128/64/256 x p0 0/7/40 x n 1/5/13
// (short query blocks, a causal offset), in both cache layouts.
void check_tier(void (*tier)(const AttnKv8&)) {
  struct Shape {
    int64_t H, Kh, D;
  };
  for (Shape sh : {Shape{4, 2, 128}, Shape{6, 2, 64}, Shape{2, 2, 64}, Shape{2, 1, 256}})
    for (int64_t p0 : {0, 7, 40})
      for (int64_t n : {1, 5, 13}) {
        CAPTURE(sh.H);
        CAPTURE(sh.Kh);
        CAPTURE(sh.D);
        CAPTURE(p0);
        CAPTURE(n);
        const Case c(sh.H, sh.Kh, sh.D, p0, n);
        std::vector<float> o_ref(c.q.size(), NAN), o(c.q.size(), NAN);
        // o is a convex combination of v_j * vs_j: bound the error by 1e-5 of its largest
        // magnitude (summation order of the dots and weights, exp within 2 ulp).
        const float tol = 1e-5f * c.vmax();
        for (int layout = 0; layout < 2; ++layout) {
          CAPTURE(layout);
          attention_kv8_ref(c.args(layout, o_ref.data()));
          tier(c.args(layout, o.data()));
          int bad = 0;
          for (size_t i = 0; i < o.size(); ++i) bad += !(std::fabs(o[i] - o_ref[i]) <= tol);
          CHECK(bad == 0);
        }
      }
}
#endif

// Runs f at `threads` OpenMP threads and restores the previous count.
template <class F>
void at_threads(int threads, F f) {
  const int prev = num_threads();
  set_num_threads(threads);
  f();
  set_num_threads(prev);
}

// True (and says so) when a tier cannot run here: the test then returns.
[[maybe_unused]] bool skip_unless(bool supported, const char* why) {
  if (!supported) MESSAGE("skipping: " << std::string(why));
  return !supported;
}

// A decode tier's exp for x <= 0 (attention_kv8_avx2_exp, attention_kv8_neon_exp): within
// 2e-7 relative of exp on every 2^-12 step from -87.3 to 0 (exact floats) plus an odd length
// for the tail path; exp(0) = 1 exactly.
void check_exp_neg(const char* tier, void (*exp_neg)(const float*, float*, int64_t)) {
  std::vector<float> x, y;
  for (double xd = 0; xd >= -87.3; xd -= 1.0 / 4096) x.push_back(float(xd));
  x.push_back(-87.3f);
  y.assign(x.size(), NAN);
  exp_neg(x.data(), y.data(), int64_t(x.size()));
  double worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(double(x[i]));
    const double rel = std::fabs(double(y[i]) - want) / want;
    if (!(rel <= worst)) worst = rel, worst_x = x[i];
  }
  MESSAGE(std::string(tier) << " exp_neg: worst relative error " << worst << " at x = " << worst_x);
  CHECK(worst <= 2e-7);
  CHECK(y[0] == 1.0f);
  // Below the clamp: exp(-87.3) = 1.22e-38, tiny and non-negative (the caller masks lanes
  // that must be 0).
  const float lo[3] = {-88.0f, -1000.0f, -INFINITY};
  float ylo[3] = {NAN, NAN, NAN};
  exp_neg(lo, ylo, 3);
  for (float v : ylo) {
    CHECK(v >= 0.0f);
    CHECK(v <= 1.25e-38f);
  }
}

}  // namespace

TEST_SUITE("attention_kv8") {
  TEST_CASE("AVX-512 tier equals the reference within fp32 rounding") {
#if !defined(__x86_64__)
    MESSAGE("skipping: the AVX-512 tier exists on x86-64 builds only");
#else
    if (skip_unless(attention_kv8_avx512_supported(), "AVX-512 not supported by this CPU / build")) return;
    check_tier(attention_kv8_avx512);
#endif
  }

  TEST_CASE("AVX2 tier equals the reference within fp32 rounding") {
#if !defined(__x86_64__)
    MESSAGE("skipping: the AVX2 tier exists on x86-64 builds only");
#else
    if (skip_unless(attention_kv8_avx2_supported(), "AVX2 + FMA not supported by this CPU")) return;
    check_tier(attention_kv8_avx2);
#endif
  }

  TEST_CASE("reference and AVX2 tier give the same bits at any thread count") {
    // Kh 1 and 2 with up to 5 threads: the AVX2 tier deals each kv head's query blocks to
    // several items; every output is still computed by one item in one order.
    for (int64_t Kh : {1, 2}) {
      CAPTURE(Kh);
      const Case c(4, Kh, 64, 9, 23);
      std::vector<float> ref1(c.q.size(), NAN), o(c.q.size(), NAN);
      at_threads(1, [&] { attention_kv8_ref(c.args(1, ref1.data())); });
      for (int th : {2, 5}) {
        CAPTURE(th);
        at_threads(th, [&] { attention_kv8_ref(c.args(1, o.data())); });
        CHECK(o == ref1);
      }
#if defined(__x86_64__)
      if (attention_kv8_avx2_supported()) {
        std::vector<float> a1(c.q.size(), NAN);
        at_threads(1, [&] { attention_kv8_avx2(c.args(1, a1.data())); });
        const float tol = 1e-5f * c.vmax();
        int bad = 0;
        for (size_t i = 0; i < a1.size(); ++i) bad += !(std::fabs(a1[i] - ref1[i]) <= tol);
        CHECK(bad == 0);
        for (int th : {2, 3, 5}) {
          CAPTURE(th);
          std::fill(o.begin(), o.end(), NAN);
          at_threads(th, [&] { attention_kv8_avx2(c.args(1, o.data())); });
          CHECK(o == a1);
        }
      }
#endif
    }
  }

  TEST_CASE("decode (one token, one kv head): reference equals the block reference; SIMD tiers within fp32 rounding") {
    // Each query token t of a Case, kv head kh, attends positions 0 .. p0 + t of the [Kh, ctx, D]
    // cache: the decode reference and the AVX-512, AVX2 and NEON decode tiers on that item must give the
    // block reference's outputs within the block tiers' bound (the dot products are summed in
    // another order; the tiers' exp is a polynomial). HpK 2, 3, 2, 5, 1 cover the tiers' head
    // chunks and their remainders; npos 1-3, 17-19, 38-40 full and partial 8- and 16-lane vectors.
    struct Shape {
      int64_t H, Kh, D;
    };
    for (Shape sh : {Shape{4, 2, 128}, Shape{6, 2, 64}, Shape{2, 1, 256}, Shape{10, 2, 64}, Shape{3, 3, 128}})
      for (int64_t p0 : {0, 16, 37}) {
        CAPTURE(sh.H);
        CAPTURE(sh.Kh);
        CAPTURE(sh.D);
        CAPTURE(p0);
        const int64_t n = 3, ctx = p0 + n, HpK = sh.H / sh.Kh, D = sh.D;
        const Case c(sh.H, sh.Kh, sh.D, p0, n);
        std::vector<float> o_blk(c.q.size(), NAN);
        attention_kv8_ref(c.args(1, o_blk.data()));
        const float tol = 1e-5f * c.vmax();
        std::vector<float> scratch(size_t(HpK * ctx + D), NAN), o(size_t(HpK * D), NAN);
        int diff_ref = 0, bad_simd = 0, bad_avx2 = 0, bad_neon = 0;
        for (int64_t t = 0; t < n; ++t)
          for (int64_t kh = 0; kh < sh.Kh; ++kh) {
            const size_t row0 = size_t(kh * ctx);
            AttnKv8Decode d{c.q.data() + (t * sh.H + kh * HpK) * D, c.k.data() + row0 * size_t(D),
                            c.v.data() + row0 * size_t(D), c.ks.data() + row0, c.vs.data() + row0, HpK, D, p0 + t + 1,
                            float(1.0 / std::sqrt(double(D))), scratch.data(), ctx, o.data()};
            const float* want = o_blk.data() + (t * sh.H + kh * HpK) * D;
            attention_kv8_decode_ref(d);
            for (int64_t i = 0; i < HpK * D; ++i) diff_ref += !(std::fabs(o[size_t(i)] - want[i]) <= tol);
#if defined(__x86_64__)
            if (attention_kv8_avx512_supported()) {
              std::fill(o.begin(), o.end(), NAN);
              attention_kv8_decode_avx512(d);
              for (int64_t i = 0; i < HpK * D; ++i) bad_simd += !(std::fabs(o[size_t(i)] - want[i]) <= tol);
            }
            if (attention_kv8_avx2_supported()) {
              std::fill(o.begin(), o.end(), NAN);
              attention_kv8_decode_avx2(d);
              for (int64_t i = 0; i < HpK * D; ++i) bad_avx2 += !(std::fabs(o[size_t(i)] - want[i]) <= tol);
            }
#endif
#if defined(__aarch64__)
            std::fill(o.begin(), o.end(), NAN);
            attention_kv8_decode_neon(d);
            for (int64_t i = 0; i < HpK * D; ++i) bad_neon += !(std::fabs(o[size_t(i)] - want[i]) <= tol);
#endif
          }
        CHECK(diff_ref == 0);
        CHECK(bad_simd == 0);
        CHECK(bad_avx2 == 0);
        CHECK(bad_neon == 0);
      }
#if !defined(__aarch64__)
    MESSAGE("NEON decode tier not run: aarch64 builds only");
#endif
#if defined(__x86_64__)
    if (!attention_kv8_avx512_supported()) MESSAGE("AVX-512 decode tier not run: not supported by this CPU / build");
    if (!attention_kv8_avx2_supported()) MESSAGE("AVX2 decode tier not run: not supported by this CPU");
#endif
  }

  TEST_CASE("AVX2 tier's exp within 2e-7 relative of exp on [-87.3, 0]") {
#if !defined(__x86_64__)
    MESSAGE("skipping: the AVX2 tier exists on x86-64 builds only");
#else
    if (skip_unless(attention_kv8_avx2_supported(), "AVX2 + FMA not supported by this CPU")) return;
    check_exp_neg("AVX2", attention_kv8_avx2_exp);
#endif
  }
  TEST_CASE("NEON decode tier's exp within 2e-7 relative of exp on [-87.3, 0]") {
#if !defined(__aarch64__)
    MESSAGE("skipping: the NEON tier exists on aarch64 builds only");
#else
    check_exp_neg("NEON", attention_kv8_neon_exp);
#endif
  }
}
