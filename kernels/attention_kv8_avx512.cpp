// AVX-512 tier of the KV8 attention kernel (attention_kv8.h), shaped for prefill: per kv head,
// the cache is converted once to fp32 (keys transposed, [D][ctx], so 16 keys' scores come
// out of one register without horizontal sums; values [ctx][D]); then blocks of 4 queries
// (the query heads of that kv head, token by token) compute scores 16 keys at a time, a
// masked softmax with a polynomial exp (within 2 ulp of std::exp), and the weighted values
// with 2 queries x D/16 registers per step. Same operations per score / weight as the
// reference; sums run in a different order (fp32 rounding only).
// GCC 12 reports its own _mm512_undefined_*() self-initialisation inside the intrinsics headers
// as uninitialised use (a known false positive, as in qgemm_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/isa_local.h"
#include "kernels/attention_kv8.h"

namespace razor {

namespace {

// exp(x) for x <= 0 (inputs below -87.3 give ~1e-38 instead of 0; masked lanes are zeroed
// by the caller). Cody-Waite reduction by ln 2 and a degree-6 Taylor polynomial on
// |r| <= ln2/2 (truncation error < 2e-7 relative), scaled by 2^n with vscalefps.
inline __m512 exp_neg(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

inline __mmask16 lanes_upto(int64_t j0, int64_t last) {  // lanes j0 + l <= last
  const int64_t k = last - j0 + 1;
  return k >= 16 ? __mmask16(0xffff) : k <= 0 ? __mmask16(0) : __mmask16((1u << k) - 1);
}

struct Scratch {
  IsaVector<float> kt, vf, ksh, vsh, s;
};

constexpr int kQ = 4;  // queries per block

template <int DV>  // D / 16
void head_avx512(const AttnKv8& a, int64_t kh, Scratch& sc) {
  constexpr int64_t D = 16 * DV;
  const int64_t HpK = a.H / a.Kh, ctx = a.p0 + a.n, cp = (ctx + 31) / 32 * 32;
  sc.kt.assign(size_t(D * cp), 0.0f);
  sc.vf.resize(size_t(ctx * D));
  sc.ksh.assign(size_t(cp), 0.0f);
  sc.vsh.assign(size_t(cp), 0.0f);
  sc.s.resize(size_t(kQ * cp));
  for (int64_t j = 0; j < ctx; ++j) {
    const int64_t row = j * a.pos_stride + kh * a.head_stride;
    const int8_t* kj = a.k + row * D;
    const int8_t* vj = a.v + row * D;
    for (int64_t i = 0; i < D; ++i) sc.kt[size_t(i * cp + j)] = float(kj[i]);
    for (int c = 0; c < DV; ++c)
      _mm512_storeu_ps(&sc.vf[size_t(j * D + 16 * c)],
                       _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(vj + 16 * c)))));
    sc.ksh[size_t(j)] = a.ks[row];
    sc.vsh[size_t(j)] = a.vs[row];
  }
  const float* kt = sc.kt.data();
  const __m512 vscale = _mm512_set1_ps(a.scale);
  const int64_t nq = a.n * HpK;  // query qi: token qi / HpK, head kh * HpK + qi % HpK
  for (int64_t q0 = 0; q0 < nq; q0 += kQ) {
    const int nb = int(std::min<int64_t>(kQ, nq - q0));
    const float* qv[kQ];
    float* ov[kQ];
    int64_t pos[kQ];
    for (int b = 0; b < kQ; ++b) {
      const int64_t qi = q0 + std::min(b, nb - 1);  // short block: repeat the last query
      const int64_t t = qi / HpK, hh = kh * HpK + qi % HpK;
      qv[b] = a.q + (t * a.H + hh) * D;
      ov[b] = a.out + (t * a.H + hh) * D;
      pos[b] = a.p0 + t;
    }
    const int64_t pmax = *std::max_element(pos, pos + kQ);
    float* s = sc.s.data();
    // Scores, 32 keys x 4 queries per pass: s = (q . k_j) * ks_j * scale. Named
    // accumulators (RZ_Q4): GCC keeps arrays of vectors in memory, a load and store per FMA.
#define RZ_Q4(M) M(0) M(1) M(2) M(3)
    const float *q_0 = qv[0], *q_1 = qv[1], *q_2 = qv[2], *q_3 = qv[3];
    for (int64_t j0 = 0; j0 <= pmax; j0 += 32) {
#define RZ_ZERO(b) __m512 a##b##_0 = _mm512_setzero_ps(), a##b##_1 = _mm512_setzero_ps();
      RZ_Q4(RZ_ZERO)
#undef RZ_ZERO
      for (int64_t i = 0; i < D; ++i) {
        const __m512 k0 = _mm512_loadu_ps(kt + i * cp + j0), k1 = _mm512_loadu_ps(kt + i * cp + j0 + 16);
#define RZ_FMA(b)                                    \
  {                                                  \
    const __m512 qb = _mm512_set1_ps(q_##b[i]);      \
    a##b##_0 = _mm512_fmadd_ps(qb, k0, a##b##_0);    \
    a##b##_1 = _mm512_fmadd_ps(qb, k1, a##b##_1);    \
  }
        RZ_Q4(RZ_FMA)
#undef RZ_FMA
      }
      const __m512 ks0 = _mm512_loadu_ps(&sc.ksh[size_t(j0)]), ks1 = _mm512_loadu_ps(&sc.ksh[size_t(j0 + 16)]);
#define RZ_STORE(b)                                                                                 \
  _mm512_storeu_ps(s + b * cp + j0, _mm512_mul_ps(_mm512_mul_ps(a##b##_0, ks0), vscale));          \
  _mm512_storeu_ps(s + b * cp + j0 + 16, _mm512_mul_ps(_mm512_mul_ps(a##b##_1, ks1), vscale));
      RZ_Q4(RZ_STORE)
#undef RZ_STORE
    }
    // Softmax per query over j <= pos: weights w_j = exp(s_j - max) * vs_j, and their sum.
    float inv[kQ];
    for (int b = 0; b < kQ; ++b) {
      float* sb = s + b * cp;
      __m512 mx = _mm512_set1_ps(-INFINITY);
      for (int64_t j0 = 0; j0 <= pos[b]; j0 += 16)
        mx = _mm512_mask_max_ps(mx, lanes_upto(j0, pos[b]), mx, _mm512_loadu_ps(sb + j0));
      const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
      __m512 sum = _mm512_setzero_ps();
      for (int64_t j0 = 0; j0 <= pmax; j0 += 16) {
        const __m512 e = _mm512_maskz_mov_ps(lanes_upto(j0, pos[b]), exp_neg(_mm512_sub_ps(_mm512_loadu_ps(sb + j0), m)));
        sum = _mm512_add_ps(sum, e);
        _mm512_storeu_ps(sb + j0, _mm512_mul_ps(e, _mm512_loadu_ps(&sc.vsh[size_t(j0)])));
      }
      inv[b] = 1.0f / _mm512_reduce_add_ps(sum);
    }
    // o = sum_j w_j v_j: 4 queries x 64 dims (16 named accumulators) per pass over the keys
    // (zero weights past each query's position).
    const float *w_0 = s, *w_1 = s + cp, *w_2 = s + 2 * cp, *w_3 = s + 3 * cp;
    for (int64_t d0 = 0; d0 < D; d0 += 64) {
#define RZ_ZERO(b)                                                                                  \
  __m512 o##b##_0 = _mm512_setzero_ps(), o##b##_1 = _mm512_setzero_ps(), o##b##_2 = _mm512_setzero_ps(), \
         o##b##_3 = _mm512_setzero_ps();
      RZ_Q4(RZ_ZERO)
#undef RZ_ZERO
      for (int64_t j = 0; j <= pmax; ++j) {
        const float* vj = sc.vf.data() + j * D + d0;
        const __m512 v0 = _mm512_loadu_ps(vj), v1 = _mm512_loadu_ps(vj + 16), v2 = _mm512_loadu_ps(vj + 32),
                     v3 = _mm512_loadu_ps(vj + 48);
#define RZ_FMA(b)                                    \
  {                                                  \
    const __m512 x = _mm512_set1_ps(w_##b[j]);       \
    o##b##_0 = _mm512_fmadd_ps(x, v0, o##b##_0);     \
    o##b##_1 = _mm512_fmadd_ps(x, v1, o##b##_1);     \
    o##b##_2 = _mm512_fmadd_ps(x, v2, o##b##_2);     \
    o##b##_3 = _mm512_fmadd_ps(x, v3, o##b##_3);     \
  }
        RZ_Q4(RZ_FMA)
#undef RZ_FMA
      }
#define RZ_STORE(b)                                                        \
  if (b < nb) {                                                            \
    const __m512 r = _mm512_set1_ps(inv[b]);                               \
    _mm512_storeu_ps(ov[b] + d0, _mm512_mul_ps(o##b##_0, r));              \
    _mm512_storeu_ps(ov[b] + d0 + 16, _mm512_mul_ps(o##b##_1, r));         \
    _mm512_storeu_ps(ov[b] + d0 + 32, _mm512_mul_ps(o##b##_2, r));         \
    _mm512_storeu_ps(ov[b] + d0 + 48, _mm512_mul_ps(o##b##_3, r));         \
  }
      RZ_Q4(RZ_STORE)
#undef RZ_STORE
    }
#undef RZ_Q4
  }
}

// ---- Decode (attention_kv8_decode): one token, one kv head ----

inline __m512 cvt16(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// The reference's pairwise tree over 16 lanes: (l + l+8), then (l + l+4), then lanes 0+2, 1+3, then 0+1.
inline float tree16(__m512 v) {
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// Scores of heads h0 .. h0 + CH - 1 at every position: one conversion of each key row per chunk.
template <int DV, int CH>
void decode_scores(const AttnKv8Decode& a, int64_t h0) {
  constexpr int64_t D = 16 * DV;
  const float* q = a.q + h0 * D;
  for (int64_t j = 0; j < a.npos; ++j) {
    const int8_t* kj = a.k + j * D;
    __m512 acc[CH];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h) acc[h] = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) {
      const __m512 kf = cvt16(kj + 16 * c);
#pragma GCC unroll 16
      for (int h = 0; h < CH; ++h) acc[h] = _mm512_add_ps(acc[h], _mm512_mul_ps(_mm512_loadu_ps(q + h * D + 16 * c), kf));
    }
    const float ksj = a.ks[j];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h) a.scores[(h0 + h) * a.score_stride + j] = tree16(acc[h]) * ksj * a.scale;
  }
}

// out of heads h0 .. h0 + CH - 1 = sum_j w_j v_j (w: the softmax numerators times vs_j, in the
// score rows), in CH x DV registers over the positions, times each head's 1 / sum.
template <int DV, int CH>
void decode_values(const AttnKv8Decode& a, int64_t h0, const float* inv) {
  constexpr int64_t D = 16 * DV;
  __m512 o[CH][DV];
#pragma GCC unroll 16
  for (int h = 0; h < CH; ++h)
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) o[h][c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < a.npos; ++j) {
    const int8_t* vj = a.v + j * D;
    __m512 w[CH];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h) w[h] = _mm512_set1_ps(a.scores[(h0 + h) * a.score_stride + j]);
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) {
      const __m512 vf = cvt16(vj + 16 * c);
#pragma GCC unroll 16
      for (int h = 0; h < CH; ++h) o[h][c] = _mm512_add_ps(o[h][c], _mm512_mul_ps(w[h], vf));
    }
  }
#pragma GCC unroll 16
  for (int h = 0; h < CH; ++h) {
    const __m512 r = _mm512_set1_ps(inv[h0 + h]);
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) _mm512_storeu_ps(a.out + (h0 + h) * D + 16 * c, _mm512_mul_ps(o[h][c], r));
  }
}

template <int DV>
void decode_avx512(const AttnKv8Decode& a) {
  // Heads per chunk: CH x DV value accumulators stay in registers (16 of the 32).
  constexpr int CH = DV >= 16 ? 1 : 16 / DV;
  const int64_t HpK = a.HpK, np = a.npos;
  int64_t h0 = 0;
  for (; h0 + CH <= HpK; h0 += CH) decode_scores<DV, CH>(a, h0);
  for (; h0 < HpK; ++h0) decode_scores<DV, 1>(a, h0);
  // Softmax per head: w_j = exp(s_j - max) * vs_j, and 1 / sum exp.
  float inv[64];  // HpK <= 64 (the engine checks)
  for (int64_t h = 0; h < HpK; ++h) {
    float* s = a.scores + h * a.score_stride;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < np; j0 += 16)
      mx = _mm512_mask_max_ps(mx, lanes_upto(j0, np - 1), mx, _mm512_maskz_loadu_ps(lanes_upto(j0, np - 1), s + j0));
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j0 = 0; j0 < np; j0 += 16) {
      const __mmask16 k = lanes_upto(j0, np - 1);
      const __m512 e = _mm512_maskz_mov_ps(k, exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j0), m)));
      sum = _mm512_add_ps(sum, e);
      _mm512_mask_storeu_ps(s + j0, k, _mm512_mul_ps(e, _mm512_maskz_loadu_ps(k, a.vs + j0)));
    }
    inv[h] = 1.0f / _mm512_reduce_add_ps(sum);
  }
  h0 = 0;
  for (; h0 + CH <= HpK; h0 += CH) decode_values<DV, CH>(a, h0, inv);
  for (; h0 < HpK; ++h0) decode_values<DV, 1>(a, h0, inv);
}

}  // namespace

void attention_kv8_decode_avx512(const AttnKv8Decode& a) {
  RZ_ASSERT_MSG(a.D == 64 || a.D == 128 || a.D == 256, "attention_kv8_decode_avx512: head dim must be 64, 128 or 256");
  RZ_ASSERT(a.HpK >= 1 && a.HpK <= 64 && a.npos >= 1);
  switch (a.D) {
    case 64: return decode_avx512<4>(a);
    case 128: return decode_avx512<8>(a);
    default: return decode_avx512<16>(a);
  }
}

bool attention_kv8_avx512_supported() { return isa_supported(Isa::Avx512); }

void attention_kv8_avx512(const AttnKv8& a) {
  RZ_ASSERT_MSG(a.D == 64 || a.D == 128 || a.D == 256, "attention_kv8_avx512: head dim must be 64, 128 or 256");
  const int64_t DV = a.D / 16;
  const int nth = (a.p0 + a.n) * a.n * a.H * a.D < (int64_t(1) << 16) ? 1 : std::max(1, num_threads());
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
  for (int64_t kh = 0; kh < a.Kh; ++kh) {
    static thread_local Scratch sc;
    switch (DV) {
      case 4: head_avx512<4>(a, kh, sc); break;
      case 8: head_avx512<8>(a, kh, sc); break;
      default: head_avx512<16>(a, kh, sc); break;
    }
  }
}

}  // namespace razor
