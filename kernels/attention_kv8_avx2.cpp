// AVX2 + FMA tier of the KV8 attention kernel (attention_kv8.h), shaped for prefill: the
// AVX-512 tier's design on 8-wide vectors. Per work item (a kv head, or a share of its query
// blocks when there are fewer kv heads than threads) the cache rows it needs are converted
// once to fp32 into thread-local scratch, in blocks laid out for the two inner loops:
//   keys   [ctx/16][D][16]  (16 keys of one dim contiguous: 16 scores per 2 ymm, no horizontal sums)
//   values [D/16][ctx][16]  (16 dims of one key contiguous)
// Then blocks of 4 queries (the kv head's query heads, token by token) take scores 16 keys x 4
// queries per pass (8 named ymm accumulators: the 8 FMAs in flight that 2 pipes x 4 cycles of
// latency need), a masked softmax with a polynomial exp (exp_neg below), and the weighted
// values 4 queries x 16 dims per pass. Same operations per score / weight as the reference
// ((q.k) * ks * scale, exp(s - max) * vs, o / sum); sums run in a different order (fp32 rounding).
// Also the decode tier (one token, one kv head; at the end of the file).
// Not here: the scalar reference and the dispatch (attention_kv8.cpp), the AVX-512 tier.
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

// exp(x) for x <= 0. Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2, ln2 split so n * c1 is
// exact), e^r by a degree-6 polynomial (Cephes expf coefficients: r + r^2 * P(r) + 1), 2^n built
// from the integer n + 127 shifted into the exponent bits (AVX2 has no vscalefps). Inputs are
// clamped at -87.3, so n >= -126 and 2^n is normal: below that the result is ~1e-38, not 0
// (callers zero masked lanes). Positive inputs are out of contract (garbage bits: callers mask).
inline __m256 exp_neg(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// All-ones lanes where j0 + l <= last (l = 0..7).
inline __m256 lanes_upto(int64_t j0, int64_t last) {
  const int64_t k = std::min<int64_t>(std::max<int64_t>(last - j0 + 1, 0), 8);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(int(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256 cvt8(const int8_t* p) {  // 8 int8 -> 8 fp32
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

struct Scratch {  // thread-local, grows to the largest call and is reused (no allocation once warm)
  IsaVector<float> kb, vb, ksh, vsh, s;
};

constexpr int kQ = 4;  // queries per block

// Query blocks part, part + parts, ... of kv head kh (query qi: token qi / HpK, head kh * HpK + qi % HpK).
template <int DV>  // D / 16
void head_avx2(const AttnKv8& a, int64_t kh, int64_t part, int64_t parts, Scratch& sc) {
  constexpr int64_t D = 16 * DV;
  const int64_t HpK = a.H / a.Kh, nq = a.n * HpK, nblk = (nq + kQ - 1) / kQ;
  if (part >= nblk) return;
  const int64_t last_blk = part + (nblk - 1 - part) / parts * parts;
  const int64_t ctx = a.p0 + (std::min(nq, (last_blk + 1) * kQ) - 1) / HpK + 1;  // rows this item reads
  const int64_t cp = (ctx + 15) / 16 * 16;
  if (sc.kb.size() < size_t(cp * D)) sc.kb.resize(size_t(cp * D));
  if (sc.vb.size() < size_t(cp * D)) sc.vb.resize(size_t(cp * D));
  if (sc.ksh.size() < size_t(cp)) sc.ksh.resize(size_t(cp));
  if (sc.vsh.size() < size_t(cp)) sc.vsh.resize(size_t(cp));
  if (sc.s.size() < size_t(kQ * cp)) sc.s.resize(size_t(kQ * cp));
  float* kb = sc.kb.data();
  float* vb = sc.vb.data();
  for (int64_t j = 0; j < ctx; ++j) {
    const int64_t row = j * a.pos_stride + kh * a.head_stride;
    const int8_t* kj = a.k + row * D;
    const int8_t* vj = a.v + row * D;
    float* kd = kb + (j / 16) * (16 * D) + j % 16;
    for (int64_t i = 0; i < D; ++i) kd[i * 16] = float(kj[i]);
    for (int c = 0; c < DV; ++c) {
      float* vd = vb + (c * cp + j) * 16;
      _mm256_storeu_ps(vd, cvt8(vj + 16 * c));
      _mm256_storeu_ps(vd + 8, cvt8(vj + 16 * c + 8));
    }
    sc.ksh[size_t(j)] = a.ks[row];
    sc.vsh[size_t(j)] = a.vs[row];
  }
  for (int64_t j = ctx; j < cp; ++j) {  // padding keys of the last block: finite zeros (masked later)
    float* kd = kb + (j / 16) * (16 * D) + j % 16;
    for (int64_t i = 0; i < D; ++i) kd[i * 16] = 0.0f;
    sc.ksh[size_t(j)] = 0.0f;
    sc.vsh[size_t(j)] = 0.0f;
  }
  const __m256 vscale = _mm256_set1_ps(a.scale);
  float* s = sc.s.data();
  for (int64_t blk = part; blk < nblk; blk += parts) {
    const int64_t q0 = blk * kQ;
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
    // Scores, 16 keys x 4 queries per pass: s = (q . k_j) * ks_j * scale. Named accumulators
    // (RZ_Q4): GCC keeps arrays of vectors in memory, a load and store per FMA.
#define RZ_Q4(M) M(0) M(1) M(2) M(3)
    const float *q_0 = qv[0], *q_1 = qv[1], *q_2 = qv[2], *q_3 = qv[3];
    for (int64_t j0 = 0; j0 <= pmax; j0 += 16) {
      const float* kk = kb + j0 * D;  // block j0 / 16: [D][16]
#define RZ_ZERO(b) __m256 a##b##_0 = _mm256_setzero_ps(), a##b##_1 = _mm256_setzero_ps();
      RZ_Q4(RZ_ZERO)
#undef RZ_ZERO
      for (int64_t i = 0; i < D; ++i) {
        const __m256 k0 = _mm256_loadu_ps(kk + i * 16), k1 = _mm256_loadu_ps(kk + i * 16 + 8);
#define RZ_FMA(b)                                    \
  {                                                  \
    const __m256 qb = _mm256_broadcast_ss(q_##b + i); \
    a##b##_0 = _mm256_fmadd_ps(qb, k0, a##b##_0);    \
    a##b##_1 = _mm256_fmadd_ps(qb, k1, a##b##_1);    \
  }
        RZ_Q4(RZ_FMA)
#undef RZ_FMA
      }
      const __m256 ks0 = _mm256_loadu_ps(&sc.ksh[size_t(j0)]), ks1 = _mm256_loadu_ps(&sc.ksh[size_t(j0 + 8)]);
#define RZ_STORE(b)                                                                             \
  _mm256_storeu_ps(s + b * cp + j0, _mm256_mul_ps(_mm256_mul_ps(a##b##_0, ks0), vscale));      \
  _mm256_storeu_ps(s + b * cp + j0 + 8, _mm256_mul_ps(_mm256_mul_ps(a##b##_1, ks1), vscale));
      RZ_Q4(RZ_STORE)
#undef RZ_STORE
    }
    // Softmax per query over j <= pos: weights w_j = exp(s_j - max) * vs_j (0 past pos, up to
    // pmax), and 1 / their exp sum.
    float inv[kQ];
    for (int b = 0; b < kQ; ++b) {
      float* sb = s + b * cp;
      __m256 mx = _mm256_set1_ps(-INFINITY);
      for (int64_t j0 = 0; j0 <= pos[b]; j0 += 8)
        mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_loadu_ps(sb + j0), lanes_upto(j0, pos[b])));
      const __m256 m = _mm256_set1_ps(hmax(mx));
      __m256 sum = _mm256_setzero_ps();
      for (int64_t j0 = 0; j0 <= pmax; j0 += 8) {
        const __m256 e = _mm256_and_ps(lanes_upto(j0, pos[b]), exp_neg(_mm256_sub_ps(_mm256_loadu_ps(sb + j0), m)));
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(sb + j0, _mm256_mul_ps(e, _mm256_loadu_ps(&sc.vsh[size_t(j0)])));
      }
      inv[b] = 1.0f / hsum(sum);
    }
    // o = sum_j w_j v_j: 4 queries x 16 dims (8 named accumulators) per pass over the keys.
    const float *w_0 = s, *w_1 = s + cp, *w_2 = s + 2 * cp, *w_3 = s + 3 * cp;
    for (int c = 0; c < DV; ++c) {
      const float* vc = vb + c * cp * 16;  // [ctx][16]: dims 16c .. 16c + 15
#define RZ_ZERO(b) __m256 o##b##_0 = _mm256_setzero_ps(), o##b##_1 = _mm256_setzero_ps();
      RZ_Q4(RZ_ZERO)
#undef RZ_ZERO
      for (int64_t j = 0; j <= pmax; ++j) {
        const __m256 v0 = _mm256_loadu_ps(vc + j * 16), v1 = _mm256_loadu_ps(vc + j * 16 + 8);
#define RZ_FMA(b)                                     \
  {                                                   \
    const __m256 x = _mm256_broadcast_ss(w_##b + j);  \
    o##b##_0 = _mm256_fmadd_ps(x, v0, o##b##_0);      \
    o##b##_1 = _mm256_fmadd_ps(x, v1, o##b##_1);      \
  }
        RZ_Q4(RZ_FMA)
#undef RZ_FMA
      }
#define RZ_STORE(b)                                                         \
  if (b < nb) {                                                             \
    const __m256 r = _mm256_set1_ps(inv[b]);                                \
    _mm256_storeu_ps(ov[b] + 16 * c, _mm256_mul_ps(o##b##_0, r));           \
    _mm256_storeu_ps(ov[b] + 16 * c + 8, _mm256_mul_ps(o##b##_1, r));       \
  }
      RZ_Q4(RZ_STORE)
#undef RZ_STORE
    }
#undef RZ_Q4
  }
}

// ---- Decode (attention_kv8_decode): one token, one kv head ----
// The AVX-512 decode tier's structure on 8-wide vectors: key rows converted once per head
// chunk, scores in the reference's exact operations, a vector softmax, values accumulated in
// registers. Products are mul then add, never FMA: the reference (built with
// -ffp-contract=off) rounds each product, and doing the same keeps scores and weighted values
// bit for bit equal to the reference's.

// Scores of heads h0 .. h0 + CH - 1 at every position. The reference's 16 partial sums are two
// registers per head (lanes 0-7, 8-15); hsum(lo + hi) is then its pairwise tree: (l + l+8),
// (l + l+4), lanes 0+2 and 1+3, 0+1.
template <int DV, int CH>  // DV = D / 16
void decode_scores(const AttnKv8Decode& a, int64_t h0) {
  constexpr int64_t D = 16 * DV;
  const float* q = a.q + h0 * D;
  for (int64_t j = 0; j < a.npos; ++j) {
    const int8_t* kj = a.k + j * D;
    __m256 lo[CH], hi[CH];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h) lo[h] = hi[h] = _mm256_setzero_ps();
    // Not fully unrolled: GCC then converts the whole key row up front (DV x 2 registers) and
    // spills with 16 ymm; as a loop only 2 x 2 key registers are live beside the accumulators.
#pragma GCC unroll 2
    for (int c = 0; c < DV; ++c) {
      const __m256 k0 = cvt8(kj + 16 * c), k1 = cvt8(kj + 16 * c + 8);
#pragma GCC unroll 16
      for (int h = 0; h < CH; ++h) {
        lo[h] = _mm256_add_ps(lo[h], _mm256_mul_ps(_mm256_loadu_ps(q + h * D + 16 * c), k0));
        hi[h] = _mm256_add_ps(hi[h], _mm256_mul_ps(_mm256_loadu_ps(q + h * D + 16 * c + 8), k1));
      }
    }
    const float ksj = a.ks[j];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h) a.scores[(h0 + h) * a.score_stride + j] = hsum(_mm256_add_ps(lo[h], hi[h])) * ksj * a.scale;
  }
}

// out of heads h0 .. h0 + CH - 1, dims d0 .. d0 + 8 NV - 1 = sum_j w_j v_j (w: the softmax
// numerators times vs_j, in the score rows), in CH x NV registers over the positions, times
// each head's 1 / sum. A head's whole row does not fit (D 128 is 16 ymm), so dims are chunked
// too: each value element is still converted once per head chunk.
template <int NV, int CH>
void decode_values(const AttnKv8Decode& a, int64_t h0, int64_t d0, const float* inv) {
  const int64_t D = a.D, np = a.npos, st = a.score_stride;
  const float* s = a.scores + h0 * st;
  __m256 o[CH][NV];
#pragma GCC unroll 16
  for (int h = 0; h < CH; ++h)
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) o[h][c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < np; ++j) {
    const int8_t* vj = a.v + j * D + d0;
    __m256 w[CH];
#pragma GCC unroll 16
    for (int h = 0; h < CH; ++h) w[h] = _mm256_broadcast_ss(s + h * st + j);
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) {
      const __m256 vf = cvt8(vj + 8 * c);
#pragma GCC unroll 16
      for (int h = 0; h < CH; ++h) o[h][c] = _mm256_add_ps(o[h][c], _mm256_mul_ps(w[h], vf));
    }
  }
#pragma GCC unroll 16
  for (int h = 0; h < CH; ++h) {
    const __m256 r = _mm256_set1_ps(inv[h0 + h]);
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) _mm256_storeu_ps(a.out + (h0 + h) * D + d0 + 8 * c, _mm256_mul_ps(o[h][c], r));
  }
}

template <int DV>
void decode_avx2(const AttnKv8Decode& a) {
  constexpr int64_t D = 16 * DV;
  const int64_t HpK = a.HpK, np = a.npos;
  // Scores: up to 4 heads per key row conversion (8 accumulators).
  int64_t h0 = 0;
  for (; h0 + 4 <= HpK; h0 += 4) decode_scores<DV, 4>(a, h0);
  for (; h0 + 2 <= HpK; h0 += 2) decode_scores<DV, 2>(a, h0);
  if (h0 < HpK) decode_scores<DV, 1>(a, h0);
  // Softmax per head: w_j = exp(s_j - max) * vs_j, and 1 / sum exp (8 lanes). Full vectors
  // unmasked, only the partial last one masked (masked loads and stores take more uops).
  float inv[64];  // HpK <= 64 (the engine checks)
  const int64_t nf = np / 8 * 8;
  const __m256 tail = lanes_upto(nf, np - 1);
  const __m256i tail_i = _mm256_castps_si256(tail);
  for (int64_t h = 0; h < HpK; ++h) {
    float* s = a.scores + h * a.score_stride;
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < nf; j0 += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + j0));
    if (nf < np) mx = _mm256_max_ps(mx, _mm256_blendv_ps(mx, _mm256_maskload_ps(s + nf, tail_i), tail));
    const __m256 m = _mm256_set1_ps(hmax(mx));
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j0 = 0; j0 < nf; j0 += 8) {
      const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(s + j0), m));
      sum = _mm256_add_ps(sum, e);
      _mm256_storeu_ps(s + j0, _mm256_mul_ps(e, _mm256_loadu_ps(a.vs + j0)));
    }
    if (nf < np) {
      const __m256 e = _mm256_and_ps(tail, exp_neg(_mm256_sub_ps(_mm256_maskload_ps(s + nf, tail_i), m)));
      sum = _mm256_add_ps(sum, e);
      _mm256_maskstore_ps(s + nf, tail_i, _mm256_mul_ps(e, _mm256_maskload_ps(a.vs + nf, tail_i)));
    }
    inv[h] = 1.0f / hsum(sum);
  }
  // Values: 2 heads x 32 dims (8 accumulators + 2 weights + 1 value row register), a lone
  // last head 64 dims at a time.
  h0 = 0;
  for (; h0 + 2 <= HpK; h0 += 2)
    for (int64_t d0 = 0; d0 < D; d0 += 32) decode_values<4, 2>(a, h0, d0, inv);
  if (h0 < HpK)
    for (int64_t d0 = 0; d0 < D; d0 += 64) decode_values<8, 1>(a, h0, d0, inv);
}

}  // namespace

bool attention_kv8_avx2_supported() { return isa_supported(Isa::Avx2); }

void attention_kv8_avx2_exp(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_neg(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float xb[8] = {0, 0, 0, 0, 0, 0, 0, 0}, yb[8];
    std::copy(x + i, x + n, xb);
    _mm256_storeu_ps(yb, exp_neg(_mm256_loadu_ps(xb)));
    std::copy(yb, yb + (n - i), y + i);
  }
}

void attention_kv8_decode_avx2(const AttnKv8Decode& a) {
  RZ_ASSERT_MSG(a.D == 64 || a.D == 128 || a.D == 256, "attention_kv8_decode_avx2: head dim must be 64, 128 or 256");
  RZ_ASSERT(a.HpK >= 1 && a.HpK <= 64 && a.npos >= 1);
  switch (a.D) {
    case 64: return decode_avx2<4>(a);
    case 128: return decode_avx2<8>(a);
    default: return decode_avx2<16>(a);
  }
}

void attention_kv8_avx2(const AttnKv8& a) {
  RZ_ASSERT_MSG(a.D == 64 || a.D == 128 || a.D == 256, "attention_kv8_avx2: head dim must be 64, 128 or 256");
  const int64_t DV = a.D / 16, HpK = a.H / a.Kh, nblk = (a.n * HpK + kQ - 1) / kQ;
  const int nth = (a.p0 + a.n) * a.n * a.H * a.D < (int64_t(1) << 16) ? 1 : std::max(1, num_threads());
  // Fewer kv heads than threads: each head's query blocks are dealt round-robin to `parts`
  // items (balanced under the causal mask); each item converts the cache rows it reads.
  const int64_t parts = nth > a.Kh ? std::min<int64_t>(nblk, (nth + a.Kh - 1) / a.Kh) : 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
  for (int64_t w = 0; w < a.Kh * parts; ++w) {
    static thread_local Scratch sc;
    const int64_t kh = w / parts, part = w % parts;
    switch (DV) {
      case 4: head_avx2<4>(a, kh, part, parts, sc); break;
      case 8: head_avx2<8>(a, kh, part, parts, sc); break;
      default: head_avx2<16>(a, kh, part, parts, sc); break;
    }
  }
}

}  // namespace razor
