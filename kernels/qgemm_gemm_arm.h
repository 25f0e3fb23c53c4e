// The layout part of the ARM prefill GEMM path (qgemm_gemm.h), shared by qgemm_gemm_dotprod.cpp
// (SDOT micro-kernel) and qgemm_gemm_neon.cpp (SMULL/SADALP micro-kernel); the threaded
// schedule is qgemm_gemm_driver.h. Only include from files compiled for aarch64; anonymous
// namespace: each including file gets its own copy built with its own flags.
//
// The x86 design (docs/packed.md, "Prefill GEMM path") with one simplification: SDOT and SMULL
// multiply signed by signed bytes, so a tile holds the signed codes q (-7..7, -1..1) themselves
// rather than offset codes u = q + off, and the -off * sum(x) correction disappears (x86 needs
// unsigned codes for vpdpbusd / vpmaddubsw).
//   Tile  (kRows = 16 rows): wt[K/4][16][4] int8 -- one 16-byte vector = 4 consecutive codes of
//         4 rows, the operand of SDOT; sw[ng][16] fp32 row scales; then a decode buffer.
//   Block (kTok = 4 tokens): xq[K/4][4][4] int8 -- one 16-byte load = 4 codes of each of the 4
//         tokens, so SDOT-by-element picks a token's 4 codes with its lane index (no broadcast);
//         then xs[ng][4] fp32 token scales. Missing tokens of the last block: zero codes and scales.
// The micro-kernels sum each group's int32 dot exactly, then c += float(dot) * (s_w * s_x) as a
// multiply and an add (not fused), in group order: the very operations of qgemm_ref, so the
// outputs are bitwise equal to the reference's for any scales.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/qgemm_neon.h"

namespace razor {
namespace {

// 4 x 4 transpose of 32-bit lanes: out[k] = {r0[k], r1[k], r2[k], r3[k]}.
inline void transpose4x4_u32(const uint32x4_t r[4], uint32x4_t out[4]) {
  const uint32x4_t t0 = vtrn1q_u32(r[0], r[1]), t1 = vtrn2q_u32(r[0], r[1]);
  const uint32x4_t t2 = vtrn1q_u32(r[2], r[3]), t3 = vtrn2q_u32(r[2], r[3]);
  out[0] = vreinterpretq_u32_u64(vtrn1q_u64(vreinterpretq_u64_u32(t0), vreinterpretq_u64_u32(t2)));
  out[1] = vreinterpretq_u32_u64(vtrn1q_u64(vreinterpretq_u64_u32(t1), vreinterpretq_u64_u32(t3)));
  out[2] = vreinterpretq_u32_u64(vtrn2q_u64(vreinterpretq_u64_u32(t0), vreinterpretq_u64_u32(t2)));
  out[3] = vreinterpretq_u32_u64(vtrn2q_u64(vreinterpretq_u64_u32(t1), vreinterpretq_u64_u32(t3)));
}

struct ArmGemmLayout {
  static constexpr int kRows = 16, kTok = 4;

  static int64_t block_bytes(int64_t K, int64_t ng) { return K * kTok + ((ng * kTok * 4 + 63) & ~int64_t(63)); }
  // wt, sw, then the decode buffer: kRows rows of K + 64 bytes (ternary5 decoding writes past a group).
  static int64_t tile_bytes(int64_t K, int64_t ng) { return K * kRows + ng * kRows * 4 + kRows * (K + 64); }

  static void pack_block(const int8_t* qx, const float* sx, int64_t K, int G, int64_t n0, int count, uint8_t* blk) {
    const int64_t ng = K / G;
    float* xs = reinterpret_cast<float*>(blk + K * kTok);
    const uint8_t* src[kTok];
    for (int t = 0; t < kTok; ++t) src[t] = t < count ? reinterpret_cast<const uint8_t*>(qx + (n0 + t) * K) : nullptr;
    // Token t's dword j goes to xq[j][t]: 4 x 4 dword transposes, 64 bytes stored per 4 dwords.
    for (int64_t j0 = 0; j0 < K / 4; j0 += 4) {
      uint32x4_t r[kTok], o[kTok];
      for (int t = 0; t < kTok; ++t) r[t] = src[t] ? vreinterpretq_u32_u8(vld1q_u8(src[t] + 4 * j0)) : vdupq_n_u32(0);
      transpose4x4_u32(r, o);
      for (int k = 0; k < kTok; ++k) vst1q_u32(reinterpret_cast<uint32_t*>(blk) + (j0 + k) * kTok, o[k]);
    }
    for (int64_t g = 0; g < ng; ++g)
      for (int t = 0; t < kTok; ++t) xs[g * kTok + t] = t < count ? sx[(n0 + t) * ng + g] : 0.0f;
  }

  // Rows row0 .. row0 + nrows - 1 of W as signed codes (rows past nrows: zero codes and scales).
  static void unpack_tile(const PackedMatrix& W, int64_t row0, int nrows, uint8_t* tile) {
    const int G = W.desc.G;
    const int64_t K = W.desc.d_in, ng = W.groups(), stride = K + 64;
    float* sw = reinterpret_cast<float*>(tile + K * kRows);
    uint8_t* nat = tile + K * kRows + ng * kRows * 4;
    for (int r = 0; r < kRows; ++r) {
      uint8_t* out = nat + r * stride;
      if (r >= nrows) {
        for (int64_t g = 0; g < ng; ++g) sw[g * kRows + r] = 0.0f;
        std::memset(out, 0, size_t(K));
        continue;
      }
      const int64_t i = row0 + r;
      const RowKind kind = W.row_kind(i);
      const int64_t gb = group_code_bytes(kind, G);
      const uint8_t* src = W.row(i);
      const uint16_t* s = W.row_scales(i);
      const uint8x16_t off = vdupq_n_u8(uint8_t(code_offset(kind)));
      for (int64_t g = 0; g < ng; ++g) {
        sw[g * kRows + r] = f16_bits_to_f32(s[g]);
        const uint8_t* b = src + g * gb;
        uint8_t* o = out + g * G;
        if (kind == RowKind::Ternary5) {
          decode_t5_neon(b, G, o);  // digits 0..2, natural order; writes past o + G (the buffer has room)
          for (int k = 0; k < G; k += 16) vst1q_u8(o + k, vsubq_u8(vld1q_u8(o + k), off));
          continue;
        }
        for (int sb = 0; sb < G / 64; ++sb) {
          uint8x16_t u[4];
          if (kind == RowKind::Ternary2)
            decode_t2_neon(b + 16 * sb, u);
          else
            decode_q4_neon(b + 32 * sb, u);
          for (int k = 0; k < 4; ++k) vst1q_u8(o + 64 * sb + 16 * k, vsubq_u8(u[k], off));  // q = u - off, mod 256
        }
      }
    }
    // Row r's dword j goes to wt[j][r]: 4 x 4 dword transposes of 4 rows.
    for (int r0 = 0; r0 < kRows; r0 += 4)
      for (int64_t j0 = 0; j0 < K / 4; j0 += 4) {
        uint32x4_t v[4], o[4];
        for (int r = 0; r < 4; ++r) v[r] = vreinterpretq_u32_u8(vld1q_u8(nat + (r0 + r) * stride + 4 * j0));
        transpose4x4_u32(v, o);
        for (int k = 0; k < 4; ++k) vst1q_u32(reinterpret_cast<uint32_t*>(tile) + (j0 + k) * kRows + r0, o[k]);
      }
  }
};

// c[t][r] += float(acc) * (s_w[r] * s_x[t]) for 4 rows (one vector): multiply, then add.
inline void scale_add(float* c, int32x4_t acc, float32x4_t sw, float sx) {
  vst1q_f32(c, vaddq_f32(vld1q_f32(c), vmulq_f32(vcvtq_f32_s32(acc), vmulq_n_f32(sw, sx))));
}

}  // namespace
}  // namespace razor
