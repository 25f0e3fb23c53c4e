// AVX-512 + VNNI tier of the packed-weight GEMM: one zmm holds a 64-weight block's unsigned
// offset codes and vpdpbusd accumulates u * x straight into int32 lanes (no int16 stage).
// Compiles on any x86-64 build; runs only where the CPU has AVX-512 VNNI (qtier_supported).
// GCC 12 reports its own _mm512_undefined_*() self-initialisation inside the intrinsics
// headers as uninitialised use (a known false positive); silence it for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/qgemm.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemm_x86.h"

namespace razor {

namespace {

// ---- Step path (ternary2 and int4 rows, G in {64, 128, 256}) ----
// A "step" is 4 consecutive 64-weight blocks of a row (256 weights). One step's codes decode
// into four zmm of unsigned offset codes u_k, k = 0..3, whose byte 16b + j is weight 16k + j
// of block b (b = 0..3):
//   ternary2: one 64-byte load (4 blocks of 16 bytes, block b in 128-bit lane b);
//             u_k = (v >> 2k) & 3.
//   int4:     two 64-byte loads A (blocks 0, 1), B (blocks 2, 3); lo = lanes (A0 A2 B0 B2) hold
//             bytes 0..15 of each block, hi = (A1 A3 B1 B3) bytes 16..31; u0 = lo & 15,
//             u1 = hi & 15, u2 = lo >> 4 & 15, u3 = hi >> 4 & 15.
// The activations are laid out once per call in the same order (StepActs::x[k]), so every
// int32 lane of the vpdpbusd accumulator holds a partial dot of one block, and lanes
// 4b..4b+3 belong to group (4 * step + b) * 64 / G. Per step and token the accumulator starts
// at the offset correction (-off * sum_x of each group, in the group's first lane), so each
// group's lanes sum to its exact int32 dot; it is converted to fp32 and scaled per lane by
// s_w(group) * s_x(group) (the row's 1..4 fp16 scales of the step, expanded by vpermps).
// Per step this is ~20 instructions for 256 weights, and one row's step serves up to 4 tokens.
struct alignas(64) StepActs {
  int8_t x[4][64];   // activations in decode order (zero past d_in)
  int32_t nc1[16];   // -1 * sum_x of the lane's group in its first lane, else 0 (ternary rows)
  int32_t nc8[16];   // -8 * sum_x likewise (int4 rows)
  float sx[16];      // s_x of the lane's group (0 past d_in)
};

// Mask of the first n bytes of a 64-byte vector (n clamped to [0, 64]).
inline __mmask64 low_bytes(int64_t n) { return n >= 64 ? ~0ull : n <= 0 ? 0ull : (1ull << n) - 1; }

// Software prefetch distance into the code stream of the interleaved-row kernels (quads, blocks
// of 16). One core's hardware prefetchers alone reached ~9 GB/s from DRAM on the first AVX-512
// machine's GEMV; 3-6 KiB ahead reached ~13 GB/s (2 and 8 KiB: less).
constexpr int64_t kStepPrefetch = 4096;

// Decode (N = 1) takes the quad kernels (activations loaded once per four rows: ~25% faster
// when the codes are in cache) only on matrices this small; larger ones are read from DRAM on
// every token, where four interleaved rows stream ~10-15% slower than one row at a time.
constexpr int64_t kQuadMaxBytes = int64_t(128) << 10;

// A step's code bytes (64 ternary, 128 int4) through stream_prefetch_line (qgemm_x86.h).
template <bool Int4>
__attribute__((always_inline)) inline void stream_prefetch(const uint8_t* p) {
  stream_prefetch_line(p);
  if (Int4) stream_prefetch_line(p + 64);
}

bool step_path_ok(const PackedMatrix& W) {
  const int G = W.desc.G;
  return W.desc.layout != PackedLayout::Ternary5 && (G == 64 || G == 128 || G == 256);
}

// acts[n * steps + s] for every token n < N (thread-local buffer, reused across calls).
const StepActs* prepare_step_acts(const QgemmArgs& a, int64_t steps) {
  static thread_local std::vector<StepActs> buf;
  const PackedMatrix& W = *a.W;
  const int G = W.desc.G, lanes_per_group = G / 16;
  const int64_t d_in = W.desc.d_in, ng = W.groups(), nblk = d_in / 64;
  if (buf.size() < size_t(a.N * steps)) buf.resize(size_t(a.N * steps));
  for (int64_t n = 0; n < a.N; ++n)
    for (int64_t s = 0; s < steps; ++s) {
      StepActs& A = buf[size_t(n * steps + s)];
      const int8_t* x = a.qx + n * d_in;
      for (int b = 0; b < 4; ++b) {
        const int64_t blk = 4 * s + b;
        for (int k = 0; k < 4; ++k) {
          const __m128i v = blk < nblk ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + blk * 64 + 16 * k))
                                       : _mm_setzero_si128();
          _mm_store_si128(reinterpret_cast<__m128i*>(&A.x[k][16 * b]), v);
        }
      }
      const int lg = G == 64 ? 6 : G == 128 ? 7 : 8;  // log2(G): no division per lane
      for (int L = 0; L < 16; ++L) {
        const int64_t g = (s * 256 + L * 16) >> lg;
        const bool valid = 4 * s + L / 4 < nblk;
        const bool first = L % lanes_per_group == 0;
        const int32_t sum = valid && first ? a.sumx[n * ng + g] : 0;
        A.nc1[L] = -sum;
        A.nc8[L] = -8 * sum;
        A.sx[L] = valid ? a.sx[n * ng + g] : 0.0f;
      }
    }
  return buf.data();
}

// GF2P8AFFINEQB matrix taking bits 2k and 2k + 1 of each byte to bits 0 and 1 (all other
// result bits 0): result bit i is the parity of (matrix byte 7 - i) & source byte.
inline __m512i field_matrix(int k) {
  return _mm512_set1_epi64(int64_t((uint64_t(1u << (2 * k)) << 56) | (uint64_t(2u << (2 * k)) << 48)));
}

// One step (256 weights) of a row's codes -> unsigned codes u0..u3 of its four 64-weight
// blocks, in the lane order the prepared activations use. Ternary2: one 64-byte vector, fields at
// bits 0/2/4/6. Int4: two 64-byte vectors, 128-bit halves regrouped, low and high nibbles. A
// partial last step (left < step bytes) loads only the row's bytes. GF (CPUs with GFNI):
// ternary fields 1..3 come out of one GF2P8AFFINEQB each (a bit matrix moving bits 2k, 2k+1
// of every byte to bits 0, 1 and clearing the rest) instead of a shift and a mask: three fewer
// vector instructions per 64-byte line, on the ports the vpdpbusd chain also needs.
template <bool Int4, bool GF>
__attribute__((always_inline)) inline void decode_step(const uint8_t* p, int64_t left, __m512i& u0, __m512i& u1,
                                                       __m512i& u2, __m512i& u3) {
  if (!Int4) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i v = left >= 64 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(low_bytes(left), p);
    u0 = _mm512_and_si512(v, m3);
    if (GF) {
      u1 = _mm512_gf2p8affine_epi64_epi8(v, field_matrix(1), 0);
      u2 = _mm512_gf2p8affine_epi64_epi8(v, field_matrix(2), 0);
      u3 = _mm512_gf2p8affine_epi64_epi8(v, field_matrix(3), 0);
      return;
    }
    u1 = _mm512_and_si512(_mm512_srli_epi16(v, 2), m3);
    u2 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m3);
    u3 = _mm512_and_si512(_mm512_srli_epi16(v, 6), m3);
    return;
  }
  const __m512i m15 = _mm512_set1_epi8(15);
  __m512i a, b;
  if (left >= 128) {
    a = _mm512_loadu_si512(p);
    b = _mm512_loadu_si512(p + 64);
  } else {
    a = _mm512_maskz_loadu_epi8(low_bytes(left), p);
    b = _mm512_maskz_loadu_epi8(low_bytes(left - 64), p + 64);
  }
  const __m512i lo = _mm512_shuffle_i64x2(a, b, 0x88), hi = _mm512_shuffle_i64x2(a, b, 0xDD);
  u0 = _mm512_and_si512(lo, m15);
  u1 = _mm512_and_si512(hi, m15);
  u2 = _mm512_and_si512(_mm512_srli_epi16(lo, 4), m15);
  u3 = _mm512_and_si512(_mm512_srli_epi16(hi, 4), m15);
}

// One step's int32 sums of u * x for one token, offset-corrected: starts from the prepared
// -off * sum(x) lanes (nc1 for ternary, nc8 for int4) and adds the four blocks' vpdpbusd.
template <bool Int4>
__attribute__((always_inline)) inline __m512i step_dot(const StepActs& S, __m512i u0, __m512i u1, __m512i u2,
                                                       __m512i u3) {
  __m512i acc = _mm512_load_si512(Int4 ? S.nc8 : S.nc1);
  acc = _mm512_dpbusd_epi32(acc, u0, _mm512_load_si512(S.x[0]));
  acc = _mm512_dpbusd_epi32(acc, u1, _mm512_load_si512(S.x[1]));
  acc = _mm512_dpbusd_epi32(acc, u2, _mm512_load_si512(S.x[2]));
  return _mm512_dpbusd_epi32(acc, u3, _mm512_load_si512(S.x[3]));
}

// Tokens n0 .. n0 + NT - 1 of row i over all steps into out[t] (16 fp32 lanes to be summed);
// acts = prepared activations of token 0.
template <RowKind K, int NT, bool GF>
void row_steps_avx512(const QgemmArgs& a, const StepActs* acts, int64_t steps, int64_t i, const uint8_t* row,
                      int64_t n0, __m512i sidx, __m512* out) {
  const PackedMatrix& W = *a.W;
  const int G = W.desc.G, gps = 256 / G;
  const int64_t d_in = W.desc.d_in;
  const int64_t step_bytes = K == RowKind::Int4 ? 128 : 64;
  const int64_t row_bytes = K == RowKind::Int4 ? d_in / 2 : d_in / 4;  // row_code_bytes(), inline
  const uint16_t* sw = W.row_scales(i);
  __m512 accf[NT];
  for (int t = 0; t < NT; ++t) accf[t] = _mm512_setzero_ps();
  const StepActs* at = acts + n0 * steps;
  for (int64_t s = 0; s < steps; ++s) {
    const uint8_t* p = row + s * step_bytes;
    const int64_t left = row_bytes - s * step_bytes;  // < step_bytes only on a partial last step
    __m512i u0, u1, u2, u3;
    // Rows are contiguous: this runs ahead into the next rows' codes (and harmlessly past the
    // buffer on the last rows; prefetches do not fault).
    stream_prefetch<K == RowKind::Int4>(p);
    decode_step<K == RowKind::Int4, GF>(p, left, u0, u1, u2, u3);
    // The step's gps fp16 scales (a full 8-byte load: rows' scales are contiguous and the
    // buffer is padded; lanes past the row's groups meet s_x = 0).
    const __m128 sw4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sw + s * gps)));
    const __m512 swv = _mm512_permutexvar_ps(sidx, _mm512_castps128_ps512(sw4));
    for (int t = 0; t < NT; ++t) {
      const StepActs& A = at[t * steps + s];
      const __m512i acc = step_dot<K == RowKind::Int4>(A, u0, u1, u2, u3);
      accf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(swv, _mm512_load_ps(A.sx)), accf[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = accf[t];
}

// Decode (N = 1) of one row at G = 256, where a step is one group: its scale s_w * s_x is one
// number per step, formed for up to 16 steps with one conversion and one multiply and then
// broadcast from memory, so a step costs the decode, 4 vpdpbusd, one conversion and one FMA
// (row_steps_avx512 also expands and multiplies the scales per step). The products and the
// accumulation are the same operations as row_steps_avx512's, so the result is bit for bit
// the same. Needs d_in % 256 == 0 (G = 256 implies it).
template <RowKind K, bool GF>
__m512 row_n1_g256_avx512(const StepActs* A, int64_t steps, const float* sx, const uint8_t* row,
                          const uint16_t* sw) {
  constexpr bool kInt4 = K == RowKind::Int4;
  constexpr int64_t kStepBytes = kInt4 ? 128 : 64;
  alignas(64) float scale[16];
  __m512 accf = _mm512_setzero_ps();
  for (int64_t s0 = 0; s0 < steps; s0 += 16) {
    const int m = int(std::min<int64_t>(16, steps - s0));
    const __mmask16 k = __mmask16((1u << m) - 1);
    const __m512 swf = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, sw + s0));
    _mm512_store_ps(scale, _mm512_mul_ps(swf, _mm512_maskz_loadu_ps(k, sx + s0)));
    for (int j = 0; j < m; ++j) {
      const StepActs& S = A[s0 + j];
      const uint8_t* p = row + (s0 + j) * kStepBytes;
      stream_prefetch<kInt4>(p);
      __m512i u0, u1, u2, u3;
      decode_step<kInt4, GF>(p, kStepBytes, u0, u1, u2, u3);
      const __m512i acc = step_dot<kInt4>(S, u0, u1, u2, u3);
      accf = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(scale[j]), accf);
    }
  }
  return accf;
}

template <RowKind K, bool GF>
void row_tile_avx512(const QgemmArgs& a, const StepActs* acts, int64_t steps, int64_t i, const uint8_t* row,
                     int64_t n0, int nt, __m512i sidx, __m512* out) {
  switch (nt) {
    case 4: row_steps_avx512<K, 4, GF>(a, acts, steps, i, row, n0, sidx, out); break;
    case 3: row_steps_avx512<K, 3, GF>(a, acts, steps, i, row, n0, sidx, out); break;
    case 2: row_steps_avx512<K, 2, GF>(a, acts, steps, i, row, n0, sidx, out); break;
    default: row_steps_avx512<K, 1, GF>(a, acts, steps, i, row, n0, sidx, out); break;
  }
}

// The lane sums of four rows' accumulators: {sum a, sum b, sum c, sum d}. Each row's lanes are
// added in the same order whatever its neighbours, so a row's result does not depend on how
// rows are split across threads.
inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  auto half = [](__m512 v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); };
  const __m256 ab = _mm256_hadd_ps(half(a), half(b)), cd = _mm256_hadd_ps(half(c), half(d));
  const __m256 abcd = _mm256_hadd_ps(ab, cd);  // 128-bit lane h: {a, b, c, d} partial sums of half h
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// Decode (N = 1) on four rows at once: each step's activations are loaded once for the four
// rows, the rows' independent chains overlap, and one reduction gives the four outputs.
// KM bit q set: row q is int4 (else ternary2). Same per-row arithmetic as row_steps_avx512,
// so results are identical to it bit for bit.
template <unsigned KM, bool GF>
void quad_n1_avx512(const StepActs* A, int64_t steps, int64_t d_in, int gps, const uint8_t* const* rp,
                    const uint16_t* const* sw, __m512i sidx, float* y) {
  __m512 accf[4];
  for (int q = 0; q < 4; ++q) accf[q] = _mm512_setzero_ps();
  for (int64_t s = 0; s < steps; ++s) {
    const StepActs& S = A[s];
    const __m512i x0 = _mm512_load_si512(S.x[0]), x1 = _mm512_load_si512(S.x[1]);
    const __m512i x2 = _mm512_load_si512(S.x[2]), x3 = _mm512_load_si512(S.x[3]);
    const __m512 sxv = _mm512_load_ps(S.sx);
    for (int q = 0; q < 4; ++q) {
      const bool int4 = (KM >> q) & 1u;
      const int64_t step_bytes = int4 ? 128 : 64, row_bytes = int4 ? d_in / 2 : d_in / 4;
      const uint8_t* p = rp[q] + s * step_bytes;
      const int64_t left = row_bytes - s * step_bytes;
      _mm_prefetch(reinterpret_cast<const char*>(p + kStepPrefetch), _MM_HINT_T0);
      __m512i u0, u1, u2, u3;
      if (int4) {
        _mm_prefetch(reinterpret_cast<const char*>(p + kStepPrefetch + 64), _MM_HINT_T0);
        decode_step<true, GF>(p, left, u0, u1, u2, u3);
      } else {
        decode_step<false, GF>(p, left, u0, u1, u2, u3);
      }
      const __m128 sw4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sw[q] + s * gps)));
      const __m512 swv = _mm512_permutexvar_ps(sidx, _mm512_castps128_ps512(sw4));
      __m512i acc = _mm512_load_si512(int4 ? S.nc8 : S.nc1);
      acc = _mm512_dpbusd_epi32(acc, u0, x0);
      acc = _mm512_dpbusd_epi32(acc, u1, x1);
      acc = _mm512_dpbusd_epi32(acc, u2, x2);
      acc = _mm512_dpbusd_epi32(acc, u3, x3);
      accf[q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(swv, sxv), accf[q]);
    }
  }
  _mm_storeu_ps(y, reduce4(accf[0], accf[1], accf[2], accf[3]));
}

using QuadFn = void (*)(const StepActs*, int64_t, int64_t, int, const uint8_t* const*, const uint16_t* const*,
                        __m512i, float*);
// Indexed by the quad's kind mask.
template <bool GF>
const QuadFn kQuadN1[16] = {
    quad_n1_avx512<0, GF>,  quad_n1_avx512<1, GF>,  quad_n1_avx512<2, GF>,  quad_n1_avx512<3, GF>,
    quad_n1_avx512<4, GF>,  quad_n1_avx512<5, GF>,  quad_n1_avx512<6, GF>,  quad_n1_avx512<7, GF>,
    quad_n1_avx512<8, GF>,  quad_n1_avx512<9, GF>,  quad_n1_avx512<10, GF>, quad_n1_avx512<11, GF>,
    quad_n1_avx512<12, GF>, quad_n1_avx512<13, GF>, quad_n1_avx512<14, GF>, quad_n1_avx512<15, GF>,
};

// ---- Decode (N = 1), G = 256, one-group rows (d_in = 256): blocks of 16 rows ----
// With G = 256 a step is one group, so a row's exact int32 step sum is the sum of its
// accumulator's 16 lanes. Per step the 16 rows' accumulators are reduced together (a
// transpose-and-add tree: 16 vectors -> one vector of 16 row sums, 45 instructions), converted
// once and scaled by the 16 rows' s_w (rows' scales are consecutive: one or two loads per
// block and one permute per step) times the step's s_x. This replaces, per row and step, the
// conversion, scale expansion and multiply, and per four rows a horizontal float reduction: the
// costs that dominate when a row is one step (the tiny shapes). The kernel handles up to 4 steps,
// but at 3-4 steps it measured slower than the quads (16 interleaved rows from DRAM outrun the
// prefetch distance; docs/packed.md), so it is used for one step only. Every
// row's arithmetic is the same whatever block it falls in (integer sums, then per step one
// conversion and one fused multiply-add in step order), so results do not depend on the row
// range or the thread split.
constexpr int64_t kRows16MaxSteps = 1;

// v[16] -> lane r = the sum of the 16 lanes of v[r] (exact int32 adds).
inline __m512i reduce16_epi32(const __m512i* v) {
  __m512i t[8], u[4];
  for (int i = 0; i < 8; ++i)  // per 128-bit lane: {a0+a2, b0+b2, a1+a3, b1+b3}
    t[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i)  // per 128-bit lane: rows 4i .. 4i+3, partial over that lane
    u[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * i], t[2 * i + 1]), _mm512_unpackhi_epi64(t[2 * i], t[2 * i + 1]));
  const __m512i w0 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], 0x88), _mm512_shuffle_i32x4(u[0], u[1], 0xDD));
  const __m512i w1 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[2], u[3], 0x88), _mm512_shuffle_i32x4(u[2], u[3], 0xDD));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(w0, w1, 0x88), _mm512_shuffle_i32x4(w0, w1, 0xDD));
}

// One row's step: its accumulator (int32 lanes summing to the step's exact dot, the offset
// correction included), as two vpdpbusd chains of two.
template <bool Int4, bool GF>
__attribute__((always_inline)) inline __m512i step_acc(const uint8_t* p, __m512i nc, __m512i x0, __m512i x1,
                                                       __m512i x2, __m512i x3) {
  __m512i u0, u1, u2, u3;
  _mm_prefetch(reinterpret_cast<const char*>(p + kStepPrefetch), _MM_HINT_T0);
  if (Int4) _mm_prefetch(reinterpret_cast<const char*>(p + kStepPrefetch + 64), _MM_HINT_T0);
  decode_step<Int4, GF>(p, Int4 ? 128 : 64, u0, u1, u2, u3);
  __m512i a0 = _mm512_dpbusd_epi32(nc, u0, x0);
  __m512i a1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u2, x2);
  a0 = _mm512_dpbusd_epi32(a0, u1, x1);
  a1 = _mm512_dpbusd_epi32(a1, u3, x3);
  return _mm512_add_epi32(a0, a1);
}

// Rows i .. i + nrows - 1 (nrows <= 16): codes rp[r], int4 where bit r of int4_mask is set, fp16
// scales sw[r * steps + s] (consecutive rows), outputs y[0, nrows). KIND: 0 all 16 rows ternary,
// 1 all 16 int4 (fully unrolled, no branches), 2 anything (per-row kind, partial blocks).
template <int KIND, bool GF>
void rows16_g256_avx512(const StepActs* A, int64_t steps, const uint8_t* const* rp, unsigned int4_mask, int nrows,
                        const uint16_t* sw, float* y) {
  const int words = int(nrows * steps);  // <= 64
  const __m512i w_lo = _mm512_maskz_loadu_epi16(words >= 32 ? ~0u : (1u << words) - 1, sw);
  const __m512i w_hi = words <= 32 ? _mm512_setzero_si512()
                                   : _mm512_maskz_loadu_epi16(words >= 64 ? ~0u : (1u << (words - 32)) - 1, sw + 32);
  // Word index r * steps + s for lanes r < 16 (permutex2var: 0..31 from w_lo, 32..63 from w_hi).
  alignas(64) static const int16_t kLane[32] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  __m512i idx = _mm512_mullo_epi16(_mm512_load_si512(kLane), _mm512_set1_epi16(short(steps)));
  __m512 accf = _mm512_setzero_ps();
  for (int64_t s = 0; s < steps; ++s, idx = _mm512_add_epi16(idx, _mm512_set1_epi16(1))) {
    const StepActs& S = A[s];
    const __m512i x0 = _mm512_load_si512(S.x[0]), x1 = _mm512_load_si512(S.x[1]);
    const __m512i x2 = _mm512_load_si512(S.x[2]), x3 = _mm512_load_si512(S.x[3]);
    __m512i acc[16];
    if (KIND == 0) {
      const __m512i nc1 = _mm512_load_si512(S.nc1);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) acc[r] = step_acc<false, GF>(rp[r] + s * 64, nc1, x0, x1, x2, x3);
    } else if (KIND == 1) {
      const __m512i nc8 = _mm512_load_si512(S.nc8);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) acc[r] = step_acc<true, GF>(rp[r] + s * 128, nc8, x0, x1, x2, x3);
    } else {
      const __m512i nc1 = _mm512_load_si512(S.nc1), nc8 = _mm512_load_si512(S.nc8);
      for (int r = 0; r < 16; ++r)
        acc[r] = r >= nrows                 ? _mm512_setzero_si512()
                 : (int4_mask >> r) & 1u ? step_acc<true, GF>(rp[r] + s * 128, nc8, x0, x1, x2, x3)
                                          : step_acc<false, GF>(rp[r] + s * 64, nc1, x0, x1, x2, x3);
    }
    const __m512i sums = reduce16_epi32(acc);
    const __m512 swv = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(w_lo, idx, w_hi)));
    accf = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(swv, _mm512_set1_ps(S.sx[0])), accf);
  }
  _mm512_mask_storeu_ps(y, __mmask16(nrows >= 16 ? 0xffff : (1u << nrows) - 1), accf);
}

template <bool GF>
void qgemm_rows_steps_avx512(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  const PackedMatrix& W = *a.W;
  const int64_t steps = (W.desc.d_in / 64 + 3) / 4, d_out = W.desc.d_out;
  const StepActs* acts = prepare_step_acts(a, steps);
  // Lane L of a step belongs to the step's group L / (G / 16).
  const __m512i sidx = _mm512_srlv_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(W.desc.G == 64 ? 2 : W.desc.G == 128 ? 3 : 4));
  const int64_t b4 = row_code_bytes(RowKind::Int4, W.desc.G, W.desc.d_in);
  const int64_t b2 = row_code_bytes(RowKind::Ternary2, W.desc.G, W.desc.d_in);
  const uint8_t* row = W.row(row_begin);  // rows are contiguous: walk them without row_offset()
  // Four rows at a time: their accumulators are reduced together (one store of 4 outputs per
  // token instead of four horizontal sums); tokens in tiles of 4 per row (codes stay in L1).
  int64_t i = row_begin;
  if (a.N == 1 && W.desc.G == 256 && steps <= kRows16MaxSteps) {  // decode, short rows: blocks of 16
    RowCursor cur(W, row_begin);
    for (; i < row_end; i += 16) {
      const int nrows = int(std::min<int64_t>(16, row_end - i));
      const uint8_t* rp[16];
      const uint16_t* sw = cur.scales;
      unsigned km = 0;
      for (int r = 0; r < nrows; ++r, cur.next()) {
        km |= unsigned(cur.kind == RowKind::Int4) << r;
        rp[r] = cur.row;
      }
      if (nrows == 16 && km == 0)
        rows16_g256_avx512<0, GF>(acts, steps, rp, km, nrows, sw, a.y + i);
      else if (nrows == 16 && km == 0xffffu)
        rows16_g256_avx512<1, GF>(acts, steps, rp, km, nrows, sw, a.y + i);
      else
        rows16_g256_avx512<2, GF>(acts, steps, rp, km, nrows, sw, a.y + i);
    }
    return;
  }
  if (a.N == 1 && W.stream_bytes() <= kQuadMaxBytes) {  // decode, small matrix: whole quads
    const int gps = 256 / W.desc.G;
    for (; i + 4 <= row_end; i += 4) {
      const uint8_t* rp[4];
      const uint16_t* sw[4];
      unsigned km = 0;
      for (int q = 0; q < 4; ++q) {
        const bool int4 = W.row_kind(i + q) == RowKind::Int4;
        km |= unsigned(int4) << q;
        rp[q] = row;
        sw[q] = W.row_scales(i + q);
        row += int4 ? b4 : b2;
      }
      kQuadN1<GF>[km](acts, steps, W.desc.d_in, gps, rp, sw, sidx, a.y + i);
    }
  }
  const bool n1_g256 = a.N == 1 && W.desc.G == 256;  // one token, one group per step: row_n1_g256
  for (; i < row_end; i += 4) {
    const int r = int(std::min<int64_t>(4, row_end - i));
    const uint8_t* rp[4];
    bool int4[4];
    for (int q = 0; q < r; ++q) {
      rp[q] = row;
      int4[q] = W.row_kind(i + q) == RowKind::Int4;
      row += int4[q] ? b4 : b2;
    }
    for (int64_t n0 = 0; n0 < a.N; n0 += 4) {
      const int nt = int(std::min<int64_t>(4, a.N - n0));
      __m512 acc[4][4];
      for (int q = 0; q < 4; ++q)
        for (int t = 0; t < 4; ++t) acc[q][t] = _mm512_setzero_ps();
      for (int q = 0; q < r; ++q) {
        if (n1_g256)
          acc[q][0] = int4[q] ? row_n1_g256_avx512<RowKind::Int4, GF>(acts, steps, a.sx, rp[q], W.row_scales(i + q))
                              : row_n1_g256_avx512<RowKind::Ternary2, GF>(acts, steps, a.sx, rp[q], W.row_scales(i + q));
        else if (int4[q])
          row_tile_avx512<RowKind::Int4, GF>(a, acts, steps, i + q, rp[q], n0, nt, sidx, acc[q]);
        else
          row_tile_avx512<RowKind::Ternary2, GF>(a, acts, steps, i + q, rp[q], n0, nt, sidx, acc[q]);
      }
      for (int t = 0; t < nt; ++t) {
        const __m128 y4 = reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]);
        float* y = a.y + (n0 + t) * d_out + i;
        if (r == 4) {
          _mm_storeu_ps(y, y4);
        } else {
          alignas(16) float tmp[4];
          _mm_store_ps(tmp, y4);
          for (int q = 0; q < r; ++q) y[q] = tmp[q];
        }
      }
    }
  }
}

// ---- Group path (ternary5, and G = 192): one group's blocks per iteration ----

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
  if (step_path_ok(*a.W))
    return qgemm_avx512_gfni() ? qgemm_rows_steps_avx512<true>(a, row_begin, row_end)
                               : qgemm_rows_steps_avx512<false>(a, row_begin, row_end);
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
