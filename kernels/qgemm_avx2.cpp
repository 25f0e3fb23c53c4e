// AVX2 tier of the packed-weight GEMM (no VNNI): blocks decode to unsigned offset codes u,
// vpmaddubsw(u, x) gives int16 pair sums (no saturation: |u| <= 15, |x| <= 127, and a group
// of <= 256 weights sums to <= 30480 per lane), vpmaddwd widens once per group, and
// off * sum(x) turns sum(u x) into sum(q x) exactly. Per group the int32 lanes are scaled by
// s_w * s_x and accumulated in fp32 lanes; tokens are processed 4 at a time so one decode
// serves 4 tokens.
#include <immintrin.h>

#include <algorithm>
#include <vector>

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
  static thread_local std::vector<int8_t> buf;
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

// xperm: for ternary5, the activations in plane order (t5_plane_acts); unused otherwise.
template <RowKind K, int NT>
void row_tokens_avx2(const QgemmArgs& a, int64_t i, int64_t n0, const int8_t* xperm) {
  const PackedMatrix& W = *a.W;
  const int G = W.desc.G;
  const int64_t d_in = W.desc.d_in, d_out = W.desc.d_out, ng = W.groups();
  const int64_t gb = group_code_bytes(K, G);
  const int32_t off = code_offset(K);
  const uint8_t* row = W.row(i);
  const uint16_t* sw = W.row_scales(i);
  const int sub = G / 64;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 accf[NT];
  for (int t = 0; t < NT; ++t) accf[t] = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* blk = row + g * gb;
    // Rows are contiguous, so this runs ahead into the next rows' codes too.
    _mm_prefetch(reinterpret_cast<const char*>(blk + kPrefetchBytes), _MM_HINT_T0);
    __m256i acc[NT];
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
    }
    for (int s = 0; s < (K == RowKind::Ternary5 ? 0 : sub); ++s) {
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

template <RowKind K>
void row_avx2(const QgemmArgs& a, int64_t i, const int8_t* xperm) {
  int64_t n0 = 0;
  for (; n0 + 4 <= a.N; n0 += 4) row_tokens_avx2<K, 4>(a, i, n0, xperm);
  switch (a.N - n0) {
    case 3: row_tokens_avx2<K, 3>(a, i, n0, xperm); break;
    case 2: row_tokens_avx2<K, 2>(a, i, n0, xperm); break;
    case 1: row_tokens_avx2<K, 1>(a, i, n0, xperm); break;
    default: break;
  }
}

}  // namespace

void qgemm_rows_avx2(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  const int8_t* xperm = a.W->desc.layout == PackedLayout::Ternary5 ? t5_plane_acts(a) : nullptr;
  for (int64_t i = row_begin; i < row_end; ++i) {
    switch (a.W->row_kind(i)) {
      case RowKind::Ternary2: row_avx2<RowKind::Ternary2>(a, i, xperm); break;
      case RowKind::Ternary5: row_avx2<RowKind::Ternary5>(a, i, xperm); break;
      case RowKind::Int4: row_avx2<RowKind::Int4>(a, i, xperm); break;
    }
  }
}

void quantize_a8_avx2(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  if (G % 32 != 0) return quantize_a8_ref(x, N, C, G, q, scales);
  quantize_a8_avx2_body(x, N, C, G, q, scales);
}

}  // namespace razor
