// AVX-512 + VNNI tier of the packed-weight GEMM: one zmm holds a 64-weight block's unsigned
// offset codes and vpdpbusd accumulates u * x straight into int32 lanes (no int16 stage).
// Compiles on any x86-64 build; runs only where the CPU has AVX-512 VNNI (qtier_supported).
// GCC 12 reports its own _mm512_undefined_*() self-initialisation inside the intrinsics
// headers as uninitialised use (a known false positive); silence it for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "kernels/qgemm.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemm_x86.h"

namespace razor {

namespace {

template <RowKind K, int NT>
void row_tokens_avx512(const QgemmArgs& a, int64_t i, int64_t n0) {
  const PackedMatrix& W = *a.W;
  const int G = W.desc.G;
  const int64_t d_in = W.desc.d_in, d_out = W.desc.d_out, ng = W.groups();
  const int64_t gb = group_code_bytes(K, G);
  const int32_t off = code_offset(K);
  const uint8_t* row = W.row(i);
  const uint16_t* sw = W.row_scales(i);
  const int sub = G / 64;
  const __m512i shifts = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m256i m15 = _mm256_set1_epi8(15);
  alignas(64) uint8_t tmp[256 + 64];
  __m512 accf[NT];
  for (int t = 0; t < NT; ++t) accf[t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* blk = row + g * gb;
    if (K == RowKind::Ternary5) decode_t5_avx2(blk, G, tmp);
    __m512i acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_si512();
    for (int s = 0; s < sub; ++s) {
      __m512i u;
      if (K == RowKind::Ternary2) {
        const __m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * s)));
        u = _mm512_and_si512(_mm512_srlv_epi32(b, shifts), m3);
      } else if (K == RowKind::Int4) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * s));
        u = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m15)),
                               _mm256_and_si256(_mm256_srli_epi16(v, 4), m15), 1);
      } else {
        u = _mm512_load_si512(tmp + 64 * s);
      }
      const int8_t* xs = a.qx + n0 * d_in + g * G + 64 * s;
      for (int t = 0; t < NT; ++t) acc[t] = _mm512_dpbusd_epi32(acc[t], u, _mm512_loadu_si512(xs + t * d_in));
    }
    const float swf = _cvtsh_ss(sw[g]);
    for (int t = 0; t < NT; ++t) {
      const int64_t ix = (n0 + t) * ng + g;
      const __m512i v = _mm512_add_epi32(acc[t], _mm512_maskz_set1_epi32(1, -off * a.sumx[ix]));
      accf[t] = _mm512_add_ps(accf[t], _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(swf * a.sx[ix])));
    }
  }
  for (int t = 0; t < NT; ++t) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(accf[t]),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(accf[t]), 1)));
    a.y[(n0 + t) * d_out + i] = hsum_avx2(h);
  }
}

template <RowKind K>
void row_avx512(const QgemmArgs& a, int64_t i) {
  int64_t n0 = 0;
  for (; n0 + 4 <= a.N; n0 += 4) row_tokens_avx512<K, 4>(a, i, n0);
  switch (a.N - n0) {
    case 3: row_tokens_avx512<K, 3>(a, i, n0); break;
    case 2: row_tokens_avx512<K, 2>(a, i, n0); break;
    case 1: row_tokens_avx512<K, 1>(a, i, n0); break;
    default: break;
  }
}

}  // namespace

void qgemm_rows_avx512(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  for (int64_t i = row_begin; i < row_end; ++i) {
    switch (a.W->row_kind(i)) {
      case RowKind::Ternary2: row_avx512<RowKind::Ternary2>(a, i); break;
      case RowKind::Ternary5: row_avx512<RowKind::Ternary5>(a, i); break;
      case RowKind::Int4: row_avx512<RowKind::Int4>(a, i); break;
    }
  }
}

void quantize_a8_avx512(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  // The quantizer is a small share of the work; the AVX2 body is exact and sufficient.
  if (G % 32 != 0) return quantize_a8_ref(x, N, C, G, q, scales);
  quantize_a8_avx2_body(x, N, C, G, q, scales);
}

}  // namespace razor
