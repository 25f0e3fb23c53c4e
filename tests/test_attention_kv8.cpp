// Tests for kernels/attention_kv8: the AVX-512 tier against the scalar reference (the
// engine's attention) on random int8 caches, odd token counts, positions and GQA ratios.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "kernels/attention_kv8.h"

using namespace razor;

TEST_SUITE("attention_kv8") {
  TEST_CASE("AVX-512 tier equals the reference within fp32 rounding") {
#if !defined(__x86_64__)
    MESSAGE("skipping: the AVX-512 tier exists on x86-64 builds only");
#else
    if (!attention_kv8_avx512_supported()) {
      MESSAGE("skipping: AVX-512 not supported by this CPU / build");
      return;
    }
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
          const int64_t ctx = p0 + n, D = sh.D;
          Rng rng(uint64_t(p0 * 100 + n + sh.H * 7 + D));
          std::vector<float> q(size_t(n * sh.H * D)), ks(size_t(ctx * sh.Kh)), vs(ks.size());
          std::vector<int8_t> k(size_t(ctx * sh.Kh * D)), v(k.size());
          for (float& x : q) x = rng.normal();
          for (int8_t& x : k) x = int8_t(int(rng.below(255)) - 127);
          for (int8_t& x : v) x = int8_t(int(rng.below(255)) - 127);
          for (float& x : ks) x = 0.002f + 0.01f * rng.uniform();  // scores of order +-10
          for (float& x : vs) x = 0.001f + 0.02f * rng.uniform();
          std::vector<float> o_ref(q.size(), NAN), o(q.size(), NAN);
          for (int layout = 0; layout < 2; ++layout) {  // [ctx, Kh, D] and [Kh, ctx, D]
          CAPTURE(layout);
          AttnKv8 a{q.data(), k.data(), v.data(), ks.data(), vs.data(), layout ? 1 : sh.Kh, layout ? ctx : 1,
                    n, p0, sh.H, sh.Kh, D, float(1.0 / std::sqrt(double(D))), o_ref.data()};
          attention_kv8_ref(a);
          a.out = o.data();
          attention_kv8_avx512(a);
          // o is a convex combination of v_j * vs_j: bound the error by 1e-5 of its largest
          // magnitude (summation order of the dots and weights, exp within 2 ulp).
          float vmax = 0;
          for (int64_t j = 0; j < ctx; ++j)
            for (int64_t h = 0; h < sh.Kh; ++h)
              for (int64_t i = 0; i < D; ++i)
                vmax = std::max(vmax, std::fabs(float(v[size_t((j * sh.Kh + h) * D + i)]) * vs[size_t(j * sh.Kh + h)]));
          int bad = 0;
          for (size_t i = 0; i < o.size(); ++i) bad += !(std::fabs(o[i] - o_ref[i]) <= 1e-5f * vmax);
          CHECK(bad == 0);
          }
        }
#endif
  }
}
