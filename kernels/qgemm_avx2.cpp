// AVX2 tier of the packed-weight GEMM (no VNNI): blocks decode to unsigned offset codes u,
// vpmaddubsw(u, x) gives int16 pair sums (no saturation: |u| <= 15, |x| <= 127, and a group
// of <= 256 weights sums to <= 30480 per lane), vpmaddwd widens once per group, and
// off * sum(x) turns sum(u x) into sum(q x) exactly. Several tokens (prefill tails, N <= 4):
// per group the int32 lanes are scaled by s_w * s_x and accumulated in fp32 lanes, 4 tokens per
// decode of a block. One token (decode): kernels specialised on G, the groups' int32 sums
// reduced eight (or four) at a time before one correction, conversion and scale (row1_avx2);
// rows are walked with a RowCursor (no division per row).
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/isa_local.h"
#include "kernels/qgemm.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemm_x86.h"

namespace razor {

namespace {

// Software prefetch distance into the weight stream (hides DRAM latency on decode GEMV).
constexpr int kPrefetchBytes = 1024;

// Ternary5 digits are decoded in "plane order" straight from 32-byte loads of a group's
// bytes (plane k, byte j = weight k * nb + j), with no stores: the activations are laid out
// in the same order once per call (t5_plane_acts), zero where a slot holds no weight, so
// junk digits (padding, bytes past the group) contribute nothing.
inline int t5_chunks(int G) { return ((G + 4) / 5 + 31) / 32; }

const int8_t* t5_plane_acts(const QgemmArgs& a) {
  static thread_local IsaVector<int8_t> buf;
  const PackedMatrix& W = *a.W;
  const int G = W.desc.G, nb = (G + 4) / 5, chunks = t5_chunks(G);
  const int64_t ng = W.groups(), d_in = W.desc.d_in, per = 5 * chunks * 32;
  buf.assign(size_t(a.N * ng * per), 0);
  for (int64_t n = 0; n < a.N; ++n)
    for (int64_t g = 0; g < ng; ++g) {
      int8_t* o = buf.data() + (n * ng + g) * per;
      const int8_t* x = a.qx + n * d_in + g * G;
      for (int k = 0; k < 5; ++k)
        for (int j = 0; j < nb && k * nb + j < G; ++j) o[(k * chunks + j / 32) * 32 + j % 32] = x[k * nb + j];
    }
  return buf.data();
}

// int16 pair sums of group g of row `row` with tokens n0 .. n0 + NT - 1 (acc[t] = sum over the
// group of u * x in 16 int16 lanes; the caller widens and corrects by off * sum(x)).
// xperm: for ternary5, the activations in plane order (t5_plane_acts); unused otherwise.
// gb: code bytes of one group (group_code_bytes(K, G)).
template <RowKind K, int NT>
__attribute__((always_inline)) inline void group_acc(const QgemmArgs& a, const uint8_t* row, int64_t gb, int64_t g,
                                                     int64_t n0, const int8_t* xperm, __m256i* acc) {
  const int G = a.W->desc.G;
  const int64_t d_in = a.W->desc.d_in, ng = a.W->desc.d_in / G;
  const uint8_t* blk = row + g * gb;
  // Rows are contiguous, so this runs ahead into the next rows' codes too.
  _mm_prefetch(reinterpret_cast<const char*>(blk + kPrefetchBytes), _MM_HINT_T0);
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_si256();
  if (K == RowKind::Ternary5) {
    // int16 lanes: <= 10 vpmaddubsw of digits <= 2 per group, |sum| <= 10 * 508.
    const int chunks = t5_chunks(G), per = 5 * chunks * 32;
    const __m256i t86 = _mm256_set1_epi8(char(86)), t171 = _mm256_set1_epi8(char(171));
    for (int c = 0; c < chunks; ++c) {
      __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * c));
      for (int k = 0; k < 5; ++k) {
        const __m256i ge1 = _mm256_cmpeq_epi8(_mm256_max_epu8(x, t86), x);
        const __m256i ge2 = _mm256_cmpeq_epi8(_mm256_max_epu8(x, t171), x);
        const __m256i d = _mm256_sub_epi8(_mm256_sub_epi8(_mm256_setzero_si256(), ge1), ge2);
        for (int t = 0; t < NT; ++t) {
          const int8_t* xp = xperm + ((n0 + t) * ng + g) * per + (k * chunks + c) * 32;
          acc[t] = _mm256_add_epi16(acc[t], _mm256_maddubs_epi16(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp))));
        }
        x = _mm256_add_epi8(x, _mm256_add_epi8(x, x));
      }
    }
    return;
  }
  for (int s = 0; s < G / 64; ++s) {
    __m256i u0, u1;
    if (K == RowKind::Ternary2) {
      decode_t2_avx2(blk + 16 * s, u0, u1);
    } else {
      decode_q4_avx2(blk + 32 * s, u0, u1);
    }
    const int8_t* xs = a.qx + n0 * d_in + g * G + 64 * s;
    for (int t = 0; t < NT; ++t) {
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + t * d_in));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + t * d_in + 32));
      acc[t] = _mm256_add_epi16(acc[t], _mm256_add_epi16(_mm256_maddubs_epi16(u0, x0), _mm256_maddubs_epi16(u1, x1)));
    }
  }
}

// ---- Decode (one token), ternary2 / int4 rows, G = 64 * SUB known at compile time ----
// Per group: SUB block decodes, 2 * SUB vpmaddubsw, one vpmaddwd; per eight (or four) groups:
// one hadd tree to the groups' int32 sums, one offset correction, one conversion and one fused
// multiply by s_w * s_x. The int32 sums are exact (|sum| <= 256 * 15 * 127 < 2^24), so with
// integer scales the result is exact, as the reference.

template <RowKind K, int SUB>
__attribute__((always_inline)) inline __m256i gsum_avx2(const uint8_t* blk, const int8_t* x) {
  __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int s = 0; s < SUB; ++s) {
    __m256i u0, u1;
    if (K == RowKind::Ternary2) {
      decode_t2_avx2(blk + 16 * s, u0, u1);
    } else {
      decode_q4_avx2(blk + 32 * s, u0, u1);
    }
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * s));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * s + 32));
    acc = _mm256_add_epi16(acc, _mm256_add_epi16(_mm256_maddubs_epi16(u0, x0), _mm256_maddubs_epi16(u1, x1)));
  }
  return _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
}

// Sums of the 4 groups g..g+3 as [lo halves of g..g+3 | hi halves of g..g+3].
template <RowKind K, int SUB>
__attribute__((always_inline)) inline __m256i gsum4_avx2(const uint8_t* b, const int8_t* x) {
  constexpr int64_t gb = (K == RowKind::Ternary2 ? 16 : 32) * SUB, G = 64 * SUB;
  const __m256i h01 = _mm256_hadd_epi32(gsum_avx2<K, SUB>(b, x), gsum_avx2<K, SUB>(b + gb, x + G));
  const __m256i h23 = _mm256_hadd_epi32(gsum_avx2<K, SUB>(b + 2 * gb, x + 2 * G), gsum_avx2<K, SUB>(b + 3 * gb, x + 3 * G));
  return _mm256_hadd_epi32(h01, h23);
}

// row, sw: row i's codes and scales.
template <RowKind K, int SUB>
void row1_avx2(const QgemmArgs& a, int64_t i, const uint8_t* row, const uint16_t* sw, int64_t n0) {
  constexpr int64_t gb = (K == RowKind::Ternary2 ? 16 : 32) * SUB, G = 64 * SUB;
  constexpr int shift = K == RowKind::Int4 ? 3 : 0;  // off = 8 or 1
  const PackedMatrix& W = *a.W;
  const int64_t d_in = W.desc.d_in, ng = d_in / G;
  const int8_t* x = a.qx + n0 * d_in;
  const int32_t* sumx = a.sumx + n0 * ng;
  const float* sx = a.sx + n0 * ng;
  __m256 acc8 = _mm256_setzero_ps();
  __m128 acc4 = _mm_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= ng; g += 8) {
    const uint8_t* b = row + g * gb;
    for (int64_t o = 0; o < 8 * gb; o += 64) stream_prefetch_line(b + o);
    const __m256i lo = gsum4_avx2<K, SUB>(b, x + g * G), hi = gsum4_avx2<K, SUB>(b + 4 * gb, x + (g + 4) * G);
    __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
    sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sumx + g)), shift));
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sw + g))),
                                       _mm256_loadu_ps(sx + g));
    acc8 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc8);
  }
  for (; g + 4 <= ng; g += 4) {
    const uint8_t* b = row + g * gb;
    for (int64_t o = 0; o < 4 * gb; o += 64) stream_prefetch_line(b + o);
    const __m256i v = gsum4_avx2<K, SUB>(b, x + g * G);
    __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    sums = _mm_sub_epi32(sums, _mm_slli_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sumx + g)), shift));
    const __m128 scale = _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sw + g))), _mm_loadu_ps(sx + g));
    acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), scale, acc4);
  }
  float tail = 0;
  for (; g < ng; ++g) {
    const __m256i v = gsum_avx2<K, SUB>(row + g * gb, x + g * G);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s4 = _mm_hadd_epi32(s4, s4);
    s4 = _mm_hadd_epi32(s4, s4);
    tail += float(_mm_cvtsi128_si32(s4) - sumx[g] * (1 << shift)) * (_cvtsh_ss(sw[g]) * sx[g]);
  }
  acc4 = _mm_add_ps(acc4, _mm_add_ps(_mm256_castps256_ps128(acc8), _mm256_extractf128_ps(acc8, 1)));
  acc4 = _mm_add_ps(acc4, _mm_movehl_ps(acc4, acc4));
  acc4 = _mm_add_ss(acc4, _mm_movehdup_ps(acc4));
  a.y[n0 * W.desc.d_out + i] = _mm_cvtss_f32(acc4) + tail;
}

template <RowKind K, int NT>
void row_tokens_avx2(const QgemmArgs& a, int64_t i, const uint8_t* row, const uint16_t* sw, int64_t n0,
                     const int8_t* xperm) {
  const PackedMatrix& W = *a.W;
  const int64_t d_out = W.desc.d_out, ng = W.groups();
  const int32_t off = code_offset(K);
  const int64_t gb = group_code_bytes(K, W.desc.G);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 accf[NT];
  for (int t = 0; t < NT; ++t) accf[t] = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g < ng; ++g) {
    __m256i acc[NT];
    group_acc<K, NT>(a, row, gb, g, n0, xperm, acc);
    const float swf = _cvtsh_ss(sw[g]);
    for (int t = 0; t < NT; ++t) {
      const int64_t ix = (n0 + t) * ng + g;
      __m256i v = _mm256_madd_epi16(acc[t], ones);
      v = _mm256_add_epi32(v, _mm256_setr_epi32(-off * a.sumx[ix], 0, 0, 0, 0, 0, 0, 0));
      accf[t] = _mm256_add_ps(accf[t], _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(swf * a.sx[ix])));
    }
  }
  for (int t = 0; t < NT; ++t) a.y[(n0 + t) * d_out + i] = hsum_avx2(accf[t]);
}

// One token, four consecutive rows of one kind, for short rows (fewer than 8 groups: the
// per-row reduction would dominate): per group, the four rows' int32 sums come out of one hadd
// tree as one 4-lane vector, scaled by the rows' s_w and the token's s_x; the four outputs
// are stored at once. rb: code bytes of one row.
template <RowKind K, int SUB>
void rows4_avx2(const QgemmArgs& a, int64_t i, const uint8_t* row, int64_t rb, const uint16_t* sw, int64_t n0) {
  constexpr int64_t gb = (K == RowKind::Ternary2 ? 16 : 32) * SUB, G = 64 * SUB;
  constexpr int shift = K == RowKind::Int4 ? 3 : 0;
  const PackedMatrix& W = *a.W;
  const int64_t d_in = W.desc.d_in, ng = d_in / G;
  const int8_t* x = a.qx + n0 * d_in;
  __m128 acc = _mm_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* b = row + g * gb;
    for (int r = 0; r < 4; ++r) _mm_prefetch(reinterpret_cast<const char*>(b + r * rb + kPrefetchBytes), _MM_HINT_T0);
    const int8_t* xg = x + g * G;
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(gsum_avx2<K, SUB>(b, xg), gsum_avx2<K, SUB>(b + rb, xg)),
                                        _mm256_hadd_epi32(gsum_avx2<K, SUB>(b + 2 * rb, xg), gsum_avx2<K, SUB>(b + 3 * rb, xg)));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    s4 = _mm_sub_epi32(s4, _mm_set1_epi32(a.sumx[n0 * ng + g] * (1 << shift)));
    const __m128i w16 = _mm_setr_epi16(short(sw[g]), short(sw[ng + g]), short(sw[2 * ng + g]), short(sw[3 * ng + g]), 0, 0, 0, 0);
    const __m128 scale = _mm_mul_ps(_mm_cvtph_ps(w16), _mm_set1_ps(a.sx[n0 * ng + g]));
    acc = _mm_fmadd_ps(_mm_cvtepi32_ps(s4), scale, acc);
  }
  _mm_storeu_ps(a.y + n0 * W.desc.d_out + i, acc);
}

// rows4_avx2 for a runtime G (64, 128, 192, 256); false when G is none of them.
template <RowKind K>
bool rows4_dispatch_avx2(const QgemmArgs& a, int64_t i, const uint8_t* row, int64_t rb, const uint16_t* sw) {
  switch (a.W->desc.G) {
    case 64: rows4_avx2<K, 1>(a, i, row, rb, sw, 0); return true;
    case 128: rows4_avx2<K, 2>(a, i, row, rb, sw, 0); return true;
    case 192: rows4_avx2<K, 3>(a, i, row, rb, sw, 0); return true;
    case 256: rows4_avx2<K, 4>(a, i, row, rb, sw, 0); return true;
    default: return false;
  }
}

// One token: the compile-time-G kernels above for ternary2 / int4 (G = 64, 128, 192, 256, all
// that check_packed_desc admits), the general one for ternary5.
template <RowKind K>
void row1_dispatch_avx2(const QgemmArgs& a, int64_t i, const uint8_t* row, const uint16_t* sw, int64_t n0,
                        const int8_t* xperm) {
  if (K != RowKind::Ternary5) {
    switch (a.W->desc.G) {
      case 64: return row1_avx2<K, 1>(a, i, row, sw, n0);
      case 128: return row1_avx2<K, 2>(a, i, row, sw, n0);
      case 192: return row1_avx2<K, 3>(a, i, row, sw, n0);
      case 256: return row1_avx2<K, 4>(a, i, row, sw, n0);
      default: break;
    }
  }
  row_tokens_avx2<K, 1>(a, i, row, sw, n0, xperm);
}

template <RowKind K>
void row_avx2(const QgemmArgs& a, int64_t i, const uint8_t* row, const uint16_t* sw, const int8_t* xperm) {
  int64_t n0 = 0;
  for (; n0 + 4 <= a.N; n0 += 4) row_tokens_avx2<K, 4>(a, i, row, sw, n0, xperm);
  switch (a.N - n0) {
    case 3: row_tokens_avx2<K, 3>(a, i, row, sw, n0, xperm); break;
    case 2: row_tokens_avx2<K, 2>(a, i, row, sw, n0, xperm); break;
    case 1: row1_dispatch_avx2<K>(a, i, row, sw, n0, xperm); break;
    default: break;
  }
}

// ---- Decode (one token) on the decode copy (DecodeTiles, qformat.h): 8 rows per vector ----
// No horizontal sums: lanes 2r, 2r + 1 of the int16 pair sums (and lane r of the int32 sums)
// belong to row r of the tile. Ternary: per group G / 4 steps of one vpmaddubsw against the
// broadcast 4 activation bytes, alternating between two int16 accumulators (each at most
// G / 8 steps of |pair| <= 2 * 2 * 127: <= 16,256, their sum <= 32,512 at G 256); int4: the two
// nibble planes in two accumulators widened every 8 steps (8 * 2 * 15 * 127 = 30,480).

// Four activation bytes read as one (unaligned) dword, for a broadcast from memory.
typedef int32_t I32u __attribute__((may_alias, aligned(1)));

template <int SUB>
__attribute__((always_inline)) inline __m256i tile_group_t2(const uint8_t* b, const int8_t* x8) {
  const __m256i m3 = _mm256_set1_epi8(3);
  const I32u* x = reinterpret_cast<const I32u*>(x8);
  __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
  for (int h = 0; h < SUB; ++h, b += 128, x += 16) {  // 64 weights: 4 vectors of 4 planes
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m256i L = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32 * v));
      a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(_mm256_and_si256(L, m3), _mm256_set1_epi32(x[4 * v])));
      a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(L, 2), m3), _mm256_set1_epi32(x[4 * v + 1])));
      a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(L, 4), m3), _mm256_set1_epi32(x[4 * v + 2])));
      a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(L, 6), m3), _mm256_set1_epi32(x[4 * v + 3])));
    }
  }
  return _mm256_madd_epi16(_mm256_add_epi16(a0, a1), _mm256_set1_epi16(1));
}

template <int SUB>
__attribute__((always_inline)) inline __m256i tile_group_q4(const uint8_t* b, const int8_t* x8) {
  const __m256i m15 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
  const I32u* x = reinterpret_cast<const I32u*>(x8);
  __m256i s = _mm256_setzero_si256();
  for (int h = 0; h < SUB; ++h, b += 256, x += 16) {  // 64 weights: 8 vectors of 2 nibble planes
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) {
      const __m256i L = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32 * v));
      a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(_mm256_and_si256(L, m15), _mm256_set1_epi32(x[2 * v])));
      a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(L, 4), m15), _mm256_set1_epi32(x[2 * v + 1])));
    }
    s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_madd_epi16(a0, ones), _mm256_madd_epi16(a1, ones)));
  }
  return s;
}

// One tile of 8 rows times one token: out[r] = sum_g float(dot_g) * (s_w * s_x), groups in order.
template <RowKind K, int SUB>
void tile_gemv_avx2(const uint8_t* codes, const uint16_t* sc, const int8_t* x, const int32_t* sumx, const float* sx,
                    int64_t ng, float* out) {
  constexpr int64_t G = 64 * SUB, tgb = (K == RowKind::Int4 ? 4 : 2) * G;
  constexpr int shift = K == RowKind::Int4 ? 3 : 0;  // off = 8 or 1
  __m256 acc = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* b = codes + g * tgb;
    for (int64_t o = 0; o < tgb; o += 64) stream_prefetch_line(b + o);
    __m256i s = K == RowKind::Int4 ? tile_group_q4<SUB>(b, x + g * G) : tile_group_t2<SUB>(b, x + g * G);
    s = _mm256_sub_epi32(s, _mm256_set1_epi32(sumx[g] * (1 << shift)));
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(sc + 8 * g))),
                                       _mm256_set1_ps(sx[g]));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc);
  }
  _mm256_storeu_ps(out, acc);
}

template <RowKind K>
void tile_dispatch_avx2(int G, const uint8_t* codes, const uint16_t* sc, const int8_t* x, const int32_t* sumx,
                        const float* sx, int64_t ng, float* out) {
  switch (G) {
    case 64: return tile_gemv_avx2<K, 1>(codes, sc, x, sumx, sx, ng, out);
    case 128: return tile_gemv_avx2<K, 2>(codes, sc, x, sumx, sx, ng, out);
    case 192: return tile_gemv_avx2<K, 3>(codes, sc, x, sumx, sx, ng, out);
    default: return tile_gemv_avx2<K, 4>(codes, sc, x, sumx, sx, ng, out);
  }
}

// The decode copy: the chunks whose first row lies in [row_begin, row_end) (the callers' ranges
// partition the rows, so each chunk is computed once), token by token (N < 8 here: more go to
// the GEMM path; a tile's codes stay in L1 between tokens).
void tiles_rows_avx2(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  const PackedMatrix& W = *a.W;
  const DecodeTiles& T = *W.tiles;
  const int G = W.desc.G;
  const int64_t ng = W.groups(), CR = T.chunk_rows, d_out = W.desc.d_out;
  alignas(32) float out[8];
  for (int64_t c = (row_begin + CR - 1) / CR; c * CR < row_end; ++c) {
    // One tile per chunk and the chunk whole: lane r is row r of the chunk, stored straight into y.
    const bool direct = T.tiles() == 1 && c * CR + 8 <= d_out;
    for (int ti = 0; ti < T.tiles(); ++ti) {
      const uint8_t* codes = T.tile_codes(c, ti);
      const uint16_t* sc = T.tile_scales(c, ti);
      for (int64_t n = 0; n < a.N; ++n) {
        const int8_t* x = a.qx + n * W.desc.d_in;
        const int32_t* sumx = a.sumx + n * ng;
        const float* sx = a.sx + n * ng;
        float* o = direct ? a.y + n * d_out + c * CR : out;
        if (T.int4(ti))
          tile_dispatch_avx2<RowKind::Int4>(G, codes, sc, x, sumx, sx, ng, o);
        else
          tile_dispatch_avx2<RowKind::Ternary2>(G, codes, sc, x, sumx, sx, ng, o);
        if (direct) continue;
        for (int r = 0; r < 8; ++r) {
          const int64_t i = T.lane_output_row(c, ti, r);
          if (i < d_out) a.y[n * d_out + i] = out[r];
        }
      }
    }
  }
}

}  // namespace

void qgemm_rows_avx2(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  if (row_begin >= row_end) return;
  const PackedMatrix& W = *a.W;
  if (W.tiles && qgemm_avx2_tiles()) return tiles_rows_avx2(a, row_begin, row_end);
  RZ_ASSERT_MSG(W.codes.size() > 0, "qgemm: the matrix's packed rows were released; turn the decode tiles back on");
  const int8_t* xperm = W.desc.layout == PackedLayout::Ternary5 ? t5_plane_acts(a) : nullptr;
  // Walk the rows with a cursor (no division per row: the row's kind, code and scale pointers
  // advance by precomputed strides).
  RowCursor cur(W, row_begin);
  // One token and short rows: four rows of one kind at a time where the run allows.
  const bool four = a.N == 1 && W.groups() < 8 && W.desc.layout != PackedLayout::Ternary5;
  for (int64_t i = row_begin; i < row_end; ++i, cur.next()) {
    // Ternary2 only: for int4 rows (2x the bytes per group) the four-row walk measured 3.6x slower
    // than row1_avx2 on a 65536 x 1024 G 256 matrix streamed from DRAM (and no faster in cache).
    if (four && i + 4 <= row_end && cur.kind == RowKind::Ternary2 &&
        (!cur.mixed || (cur.r != 0 && cur.r + 4 <= cur.P))) {  // mixed: ternary rows 1..P-1 of a super-group
      const int64_t rb = cur.bytes[int(cur.kind)];
      if (rows4_dispatch_avx2<RowKind::Ternary2>(a, i, cur.row, rb, cur.scales)) {
        for (int r = 0; r < 3; ++r, ++i) cur.next();
        continue;
      }
    }
    switch (cur.kind) {
      case RowKind::Ternary2: row_avx2<RowKind::Ternary2>(a, i, cur.row, cur.scales, xperm); break;
      case RowKind::Ternary5: row_avx2<RowKind::Ternary5>(a, i, cur.row, cur.scales, xperm); break;
      case RowKind::Int4: row_avx2<RowKind::Int4>(a, i, cur.row, cur.scales, xperm); break;
    }
  }
}

void quantize_a8_avx2(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  if (G % 32 != 0) return quantize_a8_ref(x, N, C, G, q, scales);
  quantize_a8_avx2_body(x, N, C, G, q, scales);
}

}  // namespace razor
