// The NEON row kernels shared by qgemm_neon.cpp (plain ARMv8 NEON) and qgemm_dotprod.cpp
// (ARMv8.2 SDOT), parameterised on the 16-byte signed dot step. Offset codes u <= 15 fit in
// int8, so u * x uses signed byte products; off * sum(x) then gives sum(q x) exactly. Groups
// are reduced to an int32 and summed in fp32 in order with the reference's operations (multiply,
// then add): the results are qgemm_ref's bits. One token's ternary2 / int4 rows go four at a time
// (quad_n1_neon), everything else row by row (row_tokens_neon, up to 4 tokens per decode).
// Anonymous namespace: each including file gets its own copy built with its own ISA flags.
#pragma once
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/qgemm_impl.h"

namespace razor {
namespace {

// Ternary2 block (64 weights, 16 bytes) -> four runs of 16 weights, codes in {0,1,2}.
inline void decode_t2_neon(const uint8_t* p, uint8x16_t u[4]) {
  const uint8x16_t b = vld1q_u8(p), m3 = vdupq_n_u8(3);
  u[0] = vandq_u8(b, m3);
  u[1] = vandq_u8(vshrq_n_u8(b, 2), m3);
  u[2] = vandq_u8(vshrq_n_u8(b, 4), m3);
  u[3] = vshrq_n_u8(b, 6);
}

// Int4 block (64 weights, 32 bytes) -> four runs of 16 weights, codes in [1, 15].
inline void decode_q4_neon(const uint8_t* p, uint8x16_t u[4]) {
  const uint8x16_t v0 = vld1q_u8(p), v1 = vld1q_u8(p + 16), m = vdupq_n_u8(15);
  u[0] = vandq_u8(v0, m);
  u[1] = vandq_u8(v1, m);
  u[2] = vshrq_n_u8(v0, 4);
  u[3] = vshrq_n_u8(v1, 4);
}

// Ternary5 group -> out[0, G) digits in natural order (see qformat.h); writes up to 16 bytes
// past out + G and reads up to 16 bytes past the block.
inline void decode_t5_neon(const uint8_t* p, int G, uint8_t* out) {
  const int nb = (G + 4) / 5, chunks = (nb + 15) / 16;  // G <= 256: at most 4 chunks
  uint8x16_t x[4];
  for (int c = 0; c < chunks; ++c) x[c] = vld1q_u8(p + 16 * c);
  const uint8x16_t t86 = vdupq_n_u8(86), t171 = vdupq_n_u8(171), three = vdupq_n_u8(3);
  for (int k = 0; k < 5; ++k)
    for (int c = 0; c < chunks; ++c) {
      // digit = (x * 3) >> 8 = [x >= 86] + [x >= 171]; masks are 0 or 0xff (= -1).
      const uint8x16_t d = vsubq_u8(vsubq_u8(vdupq_n_u8(0), vcgeq_u8(x[c], t86)), vcgeq_u8(x[c], t171));
      vst1q_u8(out + k * nb + 16 * c, d);  // increasing k: plane k+1 overwrites plane k's tail
      x[c] = vmulq_u8(x[c], three);         // x * 3 mod 256
    }
}

inline float f16_bits_to_f32(uint16_t h) {
  __fp16 v;
  std::memcpy(&v, &h, 2);
  return float(v);
}

template <class Dot, RowKind K, int NT>
void row_tokens_neon(const QgemmArgs& a, int64_t i, int64_t n0) {
  const PackedMatrix& W = *a.W;
  const int G = W.desc.G;
  const int64_t d_in = W.desc.d_in, d_out = W.desc.d_out, ng = W.groups();
  const int64_t gb = group_code_bytes(K, G);
  const int32_t off = code_offset(K);
  const uint8_t* row = W.row(i);
  const uint16_t* sw = W.row_scales(i);
  const int sub = G / 64;
  alignas(16) uint8_t tmp[256 + 64];
  float accs[NT];
  for (int t = 0; t < NT; ++t) accs[t] = 0.0f;
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* blk = row + g * gb;
    if (K == RowKind::Ternary5) decode_t5_neon(blk, G, tmp);
    // kChains independent accumulators per token (4 for one token): one chain of 4 dependent
    // SDOTs per 64 weights was latency-bound (tools/arm_cycle_model.sh).
    constexpr int kChains = NT == 1 ? 4 : NT == 2 ? 2 : 1;
    int32x4_t acc[NT][kChains];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
      for (int c = 0; c < kChains; ++c) acc[t][c] = vdupq_n_s32(0);
    for (int s = 0; s < sub; ++s) {
      uint8x16_t u[4];
      if (K == RowKind::Ternary2) {
        decode_t2_neon(blk + 16 * s, u);
      } else if (K == RowKind::Int4) {
        decode_q4_neon(blk + 32 * s, u);
      } else {
        for (int j = 0; j < 4; ++j) u[j] = vld1q_u8(tmp + 64 * s + 16 * j);
      }
      const int8_t* xs = a.qx + n0 * d_in + g * G + 64 * s;
      // Unrolled explicitly: at -O2 GCC 12 kept the j loop for NT = 1, storing the four decoded
      // vectors to the stack and reloading one per SDOT (seen in tools/arm_cycle_model.sh's
      // extracted loop).
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j)
          acc[t][j % kChains] = Dot::step(acc[t][j % kChains], vreinterpretq_s8_u8(u[j]), vld1q_s8(xs + t * d_in + 16 * j));
    }
    const float swf = f16_bits_to_f32(sw[g]);
    for (int t = 0; t < NT; ++t) {
      const int64_t ix = (n0 + t) * ng + g;
      int32x4_t sum = acc[t][0];
#pragma GCC unroll 4
      for (int c = 1; c < kChains; ++c) sum = vaddq_s32(sum, acc[t][c]);
      const int32_t dot = vaddvq_s32(sum) - off * a.sumx[ix];
      accs[t] += float(dot) * (swf * a.sx[ix]);
    }
  }
  for (int t = 0; t < NT; ++t) a.y[(n0 + t) * d_out + i] = accs[t];
}

template <class Dot, RowKind K>
void row_neon(const QgemmArgs& a, int64_t i) {
  int64_t n0 = 0;
  for (; n0 + 4 <= a.N; n0 += 4) row_tokens_neon<Dot, K, 4>(a, i, n0);
  switch (a.N - n0) {
    case 3: row_tokens_neon<Dot, K, 3>(a, i, n0); break;
    case 2: row_tokens_neon<Dot, K, 2>(a, i, n0); break;
    case 1: row_tokens_neon<Dot, K, 1>(a, i, n0); break;
    default: break;
  }
}

// One token, four rows i .. i+3 at a time (bit r of kMask: row r is int4, else ternary2): each
// 64-weight step's activations are loaded once for the four rows, and a group's epilogue is
// one vector op chain for the four rows (their dots summed by a pairwise-add tree, the offset
// correction, the conversion and s_w * s_x per lane), instead of per row. Per row the same
// operations as row_tokens_neon<.., 1> and qgemm_ref (multiply, then add, groups in order): the
// same bits whichever path a row takes.
template <class Dot, int kMask>
void quad_n1_neon(const QgemmArgs& a, int64_t i) {
  const PackedMatrix& W = *a.W;
  const int G = W.desc.G;
  const int64_t ng = W.groups();
  const int sub = G / 64;
  const uint8_t* row[4];
  const uint16_t* sw[4];
  int64_t gb[4];
  for (int r = 0; r < 4; ++r) {
    row[r] = W.row(i + r);
    sw[r] = W.row_scales(i + r);
    gb[r] = group_code_bytes((kMask >> r & 1) ? RowKind::Int4 : RowKind::Ternary2, G);
  }
  const int32x4_t off = {(kMask & 1) ? 8 : 1, (kMask & 2) ? 8 : 1, (kMask & 4) ? 8 : 1, (kMask & 8) ? 8 : 1};
  float32x4_t accf = vdupq_n_f32(0.0f);
  for (int64_t g = 0; g < ng; ++g) {
    int32x4_t acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) acc[r][0] = acc[r][1] = vdupq_n_s32(0);
    const int8_t* xg = a.qx + g * G;
    for (int s = 0; s < sub; ++s) {
      int8x16_t x[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) x[j] = vld1q_s8(xg + 64 * s + 16 * j);
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        uint8x16_t u[4];
        if (kMask >> r & 1)
          decode_q4_neon(row[r] + g * gb[r] + 32 * s, u);
        else
          decode_t2_neon(row[r] + g * gb[r] + 16 * s, u);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) acc[r][j & 1] = Dot::step(acc[r][j & 1], vreinterpretq_s8_u8(u[j]), x[j]);
      }
    }
    const int32x4_t s01 = vpaddq_s32(vaddq_s32(acc[0][0], acc[0][1]), vaddq_s32(acc[1][0], acc[1][1]));
    const int32x4_t s23 = vpaddq_s32(vaddq_s32(acc[2][0], acc[2][1]), vaddq_s32(acc[3][0], acc[3][1]));
    const int32x4_t dot = vmlsq_s32(vpaddq_s32(s01, s23), off, vdupq_n_s32(a.sumx[g]));  // lane r: row r
    const float32x4_t swv = {f16_bits_to_f32(sw[0][g]), f16_bits_to_f32(sw[1][g]), f16_bits_to_f32(sw[2][g]),
                             f16_bits_to_f32(sw[3][g])};
    accf = vaddq_f32(accf, vmulq_f32(vcvtq_f32_s32(dot), vmulq_n_f32(swv, a.sx[g])));
  }
  vst1q_f32(a.y + i, accf);
}

// quad_n1_neon<Dot, m> for a runtime mask m (0..15).
template <class Dot, int... M>
void (*quad_n1_for(int m, std::integer_sequence<int, M...>))(const QgemmArgs&, int64_t) {
  static constexpr void (*table[])(const QgemmArgs&, int64_t) = {quad_n1_neon<Dot, M>...};
  return table[m];
}

// Rows one at a time (and N > 1) through row_neon; for one token, quads of ternary2 / int4 rows
// (any mix: mixed super-groups give masks 0b0001 (P 4, 8) and 0b0101 (P 2)) through quad_n1_neon.
template <class Dot>
void rows_neon(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  int64_t i = row_begin;
  if (a.N == 1 && a.W->desc.G % 64 == 0)
    for (; i + 4 <= row_end; i += 4) {
      int mask = 0;
      bool ok = true;
      for (int r = 0; r < 4; ++r) {
        const RowKind k = a.W->row_kind(i + r);
        ok = ok && k != RowKind::Ternary5;
        mask |= (k == RowKind::Int4) << r;
      }
      if (!ok) break;
      quad_n1_for<Dot>(mask, std::make_integer_sequence<int, 16>{})(a, i);
    }
  for (; i < row_end; ++i) {
    switch (a.W->row_kind(i)) {
      case RowKind::Ternary2: row_neon<Dot, RowKind::Ternary2>(a, i); break;
      case RowKind::Ternary5: row_neon<Dot, RowKind::Ternary5>(a, i); break;
      case RowKind::Int4: row_neon<Dot, RowKind::Int4>(a, i); break;
    }
  }
}

}  // namespace
}  // namespace razor
