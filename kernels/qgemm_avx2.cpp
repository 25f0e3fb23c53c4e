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

// t5row: for ternary5, the whole row already decoded to unsigned digits (natural order).
template <RowKind K, int NT>
void row_tokens_avx2(const QgemmArgs& a, int64_t i, int64_t n0, const uint8_t* t5row) {
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
    for (int s = 0; s < sub; ++s) {
      __m256i u0, u1;
      if (K == RowKind::Ternary2) {
        decode_t2_avx2(blk + 16 * s, u0, u1);
      } else if (K == RowKind::Int4) {
        decode_q4_avx2(blk + 32 * s, u0, u1);
      } else {
        u0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t5row + g * G + 64 * s));
        u1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t5row + g * G + 64 * s + 32));
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
void row_avx2(const QgemmArgs& a, int64_t i) {
  // Ternary5 rows are decoded once, whole, before any dot product: the overlapping plane
  // stores are then long retired when the dot loads them (decoding one group and loading it
  // at once stalls on store forwarding), and the decode serves every token block.
  const uint8_t* t5row = nullptr;
  if (K == RowKind::Ternary5) {
    static thread_local std::vector<uint8_t> buf;
    const PackedMatrix& W = *a.W;
    const int G = W.desc.G;
    buf.resize(size_t(W.desc.d_in) + 64);
    const int64_t gb = group_code_bytes(K, G);
    for (int64_t g = 0; g < W.groups(); ++g) decode_t5_avx2(W.row(i) + g * gb, G, buf.data() + g * G);
    t5row = buf.data();
  }
  int64_t n0 = 0;
  for (; n0 + 4 <= a.N; n0 += 4) row_tokens_avx2<K, 4>(a, i, n0, t5row);
  switch (a.N - n0) {
    case 3: row_tokens_avx2<K, 3>(a, i, n0, t5row); break;
    case 2: row_tokens_avx2<K, 2>(a, i, n0, t5row); break;
    case 1: row_tokens_avx2<K, 1>(a, i, n0, t5row); break;
    default: break;
  }
}

}  // namespace

void qgemm_rows_avx2(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  for (int64_t i = row_begin; i < row_end; ++i) {
    switch (a.W->row_kind(i)) {
      case RowKind::Ternary2: row_avx2<RowKind::Ternary2>(a, i); break;
      case RowKind::Ternary5: row_avx2<RowKind::Ternary5>(a, i); break;
      case RowKind::Int4: row_avx2<RowKind::Int4>(a, i); break;
    }
  }
}

void quantize_a8_avx2(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  if (G % 32 != 0) return quantize_a8_ref(x, N, C, G, q, scales);
  quantize_a8_avx2_body(x, N, C, G, q, scales);
}

}  // namespace razor
