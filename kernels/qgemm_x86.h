// AVX2 helpers shared by qgemm_avx2.cpp and qgemm_avx512.cpp: the two-level stream prefetch,
// block decoders to unsigned offset codes and the A8 quantizer body. Only include from files
// compiled with AVX2 flags.
// Everything is in an anonymous namespace: each including file gets its own copy compiled
// with its own ISA flags (a shared inline symbol could let the linker pick the AVX-512
// build for the AVX2 path).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace razor {
namespace {

// Rows walked one after another (decode on matrices too large to stay cached between tokens,
// and N > 1) read the codes as one ascending stream. Each 64-byte line is prefetched at two
// levels: into L2 8 KiB ahead and from there into L1 1 KiB ahead, so the L1 fill buffers wait
// on L2, not DRAM (docs/packed.md: 0.6B 1.58-bit decode +10% at 1 thread, +15% at 2 over the
// quads with one T0 prefetch 4 KiB ahead, Xeon with AVX-512, 2026-12-03; the AVX2 tier's rows
// +15-40% on the same machine).
constexpr int64_t kStreamFar = 8192, kStreamNear = 1024;

__attribute__((always_inline)) inline void stream_prefetch_line(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kStreamFar), _MM_HINT_T1);
  _mm_prefetch(reinterpret_cast<const char*>(p + kStreamNear), _MM_HINT_T0);
}

// Ternary2 block (64 weights, 16 bytes) -> u0 = weights 0..31, u1 = weights 32..63, in {0,1,2}.
inline void decode_t2_avx2(const uint8_t* p, __m256i& u0, __m256i& u1) {
  const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i m3 = _mm256_set1_epi8(3);
  u0 = _mm256_and_si256(_mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2)), m3);
  u1 = _mm256_and_si256(_mm256_srlv_epi32(b, _mm256_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6)), m3);
}

// Int4 block (64 weights, 32 bytes) -> u0 = weights 0..31, u1 = weights 32..63, in [1, 15].
inline void decode_q4_avx2(const uint8_t* p, __m256i& u0, __m256i& u1) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i m = _mm256_set1_epi8(15);
  u0 = _mm256_and_si256(v, m);
  u1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
}

// Ternary5 group -> out[0, G) unsigned digits in natural weight order. Writes up to 64
// bytes past out + G and reads up to 64 bytes past the block (both padded by callers).
inline void decode_t5_avx2(const uint8_t* p, int G, uint8_t* out) {
  const int nb = (G + 4) / 5, chunks = (nb + 31) / 32;  // G <= 256: at most 2 chunks
  __m256i x[2];
  for (int c = 0; c < chunks; ++c) x[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * c));
  const __m256i t86 = _mm256_set1_epi8(char(86)), t171 = _mm256_set1_epi8(char(171));
  for (int k = 0; k < 5; ++k) {
    for (int c = 0; c < chunks; ++c) {
      // digit = (x * 3) >> 8 = [x >= 86] + [x >= 171] (unsigned compares via max)
      const __m256i ge1 = _mm256_cmpeq_epi8(_mm256_max_epu8(x[c], t86), x[c]);
      const __m256i ge2 = _mm256_cmpeq_epi8(_mm256_max_epu8(x[c], t171), x[c]);
      const __m256i d = _mm256_sub_epi8(_mm256_sub_epi8(_mm256_setzero_si256(), ge1), ge2);
      // Planes stored in increasing k: plane k+1 overwrites the junk tail of plane k.
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k * nb + 32 * c), d);
      x[c] = _mm256_add_epi8(x[c], _mm256_add_epi8(x[c], x[c]));  // x * 3 mod 256
    }
  }
}

inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A8 quantizer, AVX2 body (G a multiple of 32); bit-identical to quantize_a8_ref: same
// max, the same scalar scale, a true division and round-half-even.
inline void quantize_a8_avx2_body(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  const int64_t ng = C / G;
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      const float* xg = x + n * C + g * G;
      int8_t* qg = q + n * C + g * G;
      __m256 m = _mm256_setzero_ps();
      for (int k = 0; k < G; k += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xg + k), absmask));
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float s = std::max(_mm_cvtss_f32(m4), 1e-5f) / 127.0f;
      const __m256 vs = _mm256_set1_ps(s);
      for (int k = 0; k < G; k += 32) {
        __m256i v[4];
        for (int j = 0; j < 4; ++j) {
          __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(xg + k + 8 * j), vs),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          v[j] = _mm256_cvtps_epi32(_mm256_min_ps(hi, _mm256_max_ps(lo, r)));
        }
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qg + k), _mm256_permutevar8x32_epi32(p, perm));
      }
      scales[n * ng + g] = s;
    }
  }
}

}  // namespace
}  // namespace razor
