// Scalar reference (threaded over kv heads) and dispatch of the KV8 attention kernel
// (attention_kv8.h). The SIMD tiers are in attention_kv8_avx512.cpp / attention_kv8_avx2.cpp and
// (decode only) attention_kv8_neon.cpp.
#include "kernels/attention_kv8.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu.h"
#include "core/threads.h"

namespace razor {

void attention_kv8_ref(const AttnKv8& a) {
  const int64_t HpK = a.H / a.Kh, D = a.D;
  // One kv head per iteration: each (token, head) output is computed by one thread with the
  // same operations in the same order as the single-threaded loop.
  const int nth = (a.p0 + a.n) * a.n * a.H * a.D < (int64_t(1) << 16) ? 1 : std::max(1, num_threads());
#pragma omp parallel num_threads(nth)
  {
    std::vector<float> sc(size_t(a.p0 + a.n));
#pragma omp for schedule(dynamic, 1)
    for (int64_t kh = 0; kh < a.Kh; ++kh)
      for (int64_t t = 0; t < a.n; ++t)
        for (int64_t hh = kh * HpK; hh < (kh + 1) * HpK; ++hh) {
          const int64_t p = a.p0 + t;
          const float* q = a.q + (t * a.H + hh) * D;
          float mx = -INFINITY;
          for (int64_t j = 0; j <= p; ++j) {
            const int8_t* kj = a.k + (j * a.pos_stride + kh * a.head_stride) * D;
            float d = 0;
            for (int64_t i = 0; i < D; ++i) d += q[i] * float(kj[i]);
            sc[size_t(j)] = d * a.ks[j * a.pos_stride + kh * a.head_stride] * a.scale;
            mx = std::max(mx, sc[size_t(j)]);
          }
          float sum = 0;
          for (int64_t j = 0; j <= p; ++j) {
            sc[size_t(j)] = std::exp(sc[size_t(j)] - mx);
            sum += sc[size_t(j)];
          }
          float* o = a.out + (t * a.H + hh) * D;
          std::fill(o, o + D, 0.0f);
          for (int64_t j = 0; j <= p; ++j) {
            const float w = sc[size_t(j)] * a.vs[j * a.pos_stride + kh * a.head_stride];
            const int8_t* vj = a.v + (j * a.pos_stride + kh * a.head_stride) * D;
            for (int64_t i = 0; i < D; ++i) o[i] += w * float(vj[i]);
          }
          const float inv = 1.0f / sum;
          for (int64_t i = 0; i < D; ++i) o[i] *= inv;
        }
  }
}

namespace {

// a . b over D in 16 fixed partial sums (lane l takes i = l mod 16) added pairwise at the
// end: one summation order on every ISA, and a loop the compiler vectorises.
inline float dot16(const float* a, const float* b, int64_t D) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= D; i += 16) {
#pragma omp simd
    for (int l = 0; l < 16; ++l) acc[l] += a[i + l] * b[i + l];
  }
  for (int l = 0; i < D; ++i, ++l) acc[l] += a[i] * b[i];
  // Pairwise tree 16 -> 8 -> 4 -> 2 -> 1, unrolled so each level is one vector add.
#pragma omp simd
  for (int l = 0; l < 8; ++l) acc[l] += acc[l + 8];
#pragma omp simd
  for (int l = 0; l < 4; ++l) acc[l] += acc[l + 4];
  acc[0] += acc[2];
  acc[1] += acc[3];
  return acc[0] + acc[1];
}

}  // namespace

void attention_kv8_decode_ref(const AttnKv8Decode& a) {
  const int64_t HpK = a.HpK, D = a.D, np = a.npos, st = a.score_stride;
  float* sc = a.scores;
  float* row = sc + HpK * st;  // one K or V row in fp32 [D]
  for (int64_t j = 0; j < np; ++j) {
    const int8_t* kj = a.k + j * D;
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) row[i] = float(kj[i]);
    const float ksj = a.ks[j];
    for (int64_t h = 0; h < HpK; ++h) sc[h * st + j] = dot16(a.q + h * D, row, D) * ksj * a.scale;
  }
  for (int64_t h = 0; h < HpK; ++h) {
    float* s = sc + h * st;
    float mx = -INFINITY;
    for (int64_t j = 0; j < np; ++j) mx = std::max(mx, s[j]);
    float sum = 0;
    for (int64_t j = 0; j < np; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    float* o = a.out + h * D;
    std::fill(o, o + D, 0.0f);
    for (int64_t j = 0; j < np; ++j) {
      const int8_t* vj = a.v + j * D;
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) row[i] = float(vj[i]);
      const float w = s[j] * a.vs[j];
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) o[i] += w * row[i];
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < D; ++i) o[i] *= inv;
  }
}

void attention_kv8_decode(const AttnKv8Decode& a) {
#if defined(__x86_64__)
  if (a.D == 64 || a.D == 128 || a.D == 256) {
    const Isa isa = active_isa();
    if (isa == Isa::Avx512 && attention_kv8_avx512_supported()) return attention_kv8_decode_avx512(a);
    if ((isa == Isa::Avx512 || isa == Isa::Avx2) && attention_kv8_avx2_supported()) return attention_kv8_decode_avx2(a);
  }
#endif
#if defined(__aarch64__)
  if ((a.D == 64 || a.D == 128 || a.D == 256) && active_isa() == Isa::Neon) return attention_kv8_decode_neon(a);
#endif
  attention_kv8_decode_ref(a);
}

void attention_kv8(const AttnKv8& a) {
#if defined(__x86_64__)
  if (a.D == 64 || a.D == 128 || a.D == 256) {
    const Isa isa = active_isa();
    if (isa == Isa::Avx512 && attention_kv8_avx512_supported()) return attention_kv8_avx512(a);
    if ((isa == Isa::Avx512 || isa == Isa::Avx2) && attention_kv8_avx2_supported()) return attention_kv8_avx2(a);
  }
#endif
  attention_kv8_ref(a);
}

}  // namespace razor
