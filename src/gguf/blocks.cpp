#include "gguf/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"

namespace razor {

namespace {

uint16_t fp16_bits_exact(float d) {
  uint16_t h = f32_to_f16(d);
  RZ_ASSERT(f16_to_f32(h) == d || (std::isnan(d) && std::isnan(f16_to_f32(h))));
  return h;
}

// Trits of one TQ1_0 byte group, most significant first, as the base-3 fixed-point byte.
uint8_t pack_trits(const int* t, int count) {
  int v = 0;
  for (int n = 0; n < 5; ++n) v = v * 3 + (n < count ? t[n] : 0);
  return uint8_t((v * 256 + 242) / 243);  // ceil(v * 256 / 243); v <= 242 -> <= 255
}
int unpack_trit(uint8_t byte, int n) {
  static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
  uint8_t shifted = uint8_t(byte * pow3[n]);  // mod 256 drops the more significant trits
  return (int(shifted) * 3) >> 8;
}

}  // namespace

void encode_q4_0(const int8_t* q, float d, BlockQ4_0* out) {
  out->d = fp16_bits_exact(d);
  for (int j = 0; j < 16; ++j) {
    RZ_ASSERT(q[j] >= -8 && q[j] <= 7 && q[j + 16] >= -8 && q[j + 16] <= 7);
    out->qs[j] = uint8_t((q[j] + 8) | ((q[j + 16] + 8) << 4));
  }
}

void decode_q4_0(const BlockQ4_0& b, int8_t* q, float* d) {
  *d = f16_to_f32(b.d);
  for (int j = 0; j < 16; ++j) {
    q[j] = int8_t((b.qs[j] & 15) - 8);
    q[j + 16] = int8_t((b.qs[j] >> 4) - 8);
  }
}

void encode_q8_0(const int8_t* q, float d, BlockQ8_0* out) {
  out->d = fp16_bits_exact(d);
  std::memcpy(out->qs, q, 32);
}

void decode_q8_0(const BlockQ8_0& b, int8_t* q, float* d) {
  *d = f16_to_f32(b.d);
  std::memcpy(q, b.qs, 32);
}

void encode_tq2_0(const int8_t* q, float d, BlockTQ2_0* out) {
  out->d = fp16_bits_exact(d);
  for (int c = 0; c < 2; ++c)
    for (int m = 0; m < 32; ++m) {
      uint8_t byte = 0;
      for (int n = 0; n < 4; ++n) {
        int k = c * 128 + n * 32 + m;
        RZ_ASSERT(q[k] >= -1 && q[k] <= 1);
        byte = uint8_t(byte | ((q[k] + 1) << (2 * n)));
      }
      out->qs[c * 32 + m] = byte;
    }
}

void decode_tq2_0(const BlockTQ2_0& b, int8_t* q, float* d) {
  *d = f16_to_f32(b.d);
  for (int c = 0; c < 2; ++c)
    for (int m = 0; m < 32; ++m)
      for (int n = 0; n < 4; ++n) q[c * 128 + n * 32 + m] = int8_t(((b.qs[c * 32 + m] >> (2 * n)) & 3) - 1);
}

void encode_tq1_0(const int8_t* q, float d, BlockTQ1_0* out) {
  for (int k = 0; k < 256; ++k) RZ_ASSERT(q[k] >= -1 && q[k] <= 1);
  out->d = fp16_bits_exact(d);
  int t[5];
  for (int m = 0; m < 32; ++m) {
    for (int n = 0; n < 5; ++n) t[n] = q[m + 32 * n] + 1;
    out->qs[m] = pack_trits(t, 5);
  }
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 5; ++n) t[n] = q[160 + m + 16 * n] + 1;
    out->qs[32 + m] = pack_trits(t, 5);
  }
  for (int j = 0; j < 4; ++j) {
    for (int n = 0; n < 4; ++n) t[n] = q[240 + j + 4 * n] + 1;
    out->qh[j] = pack_trits(t, 4);
  }
}

void decode_tq1_0(const BlockTQ1_0& b, int8_t* q, float* d) {
  *d = f16_to_f32(b.d);
  for (int m = 0; m < 32; ++m)
    for (int n = 0; n < 5; ++n) q[m + 32 * n] = int8_t(unpack_trit(b.qs[m], n) - 1);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 5; ++n) q[160 + m + 16 * n] = int8_t(unpack_trit(b.qs[32 + m], n) - 1);
  for (int j = 0; j < 4; ++j)
    for (int n = 0; n < 4; ++n) q[240 + j + 4 * n] = int8_t(unpack_trit(b.qh[j], n) - 1);
}

bool gguf_type_supported(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ4_0:
    case GgmlType::kQ8_0:
    case GgmlType::kTQ1_0:
    case GgmlType::kTQ2_0: return true;
  }
  return false;
}

uint64_t gguf_row_bytes(GgmlType type, int64_t n) { return ggml_nbytes(type, {n}); }

static int64_t block_elems(GgmlType type) {
  int64_t be = 0, bb = 0;
  RZ_ASSERT(ggml_type_size(uint32_t(type), &be, &bb));
  return be;
}

void encode_row(GgmlType type, const int8_t* codes, const float* scales, int64_t n, int group, uint8_t* out) {
  RZ_ASSERT(group > 0 && n % group == 0);
  const int64_t be = block_elems(type);
  if (be == 1) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) v[size_t(k)] = float(codes[k]) * scales[k / group];
    encode_floats(type, v.data(), n, out);
    return;
  }
  RZ_ASSERT(group % be == 0 && n % be == 0);
  for (int64_t b = 0; b < n / be; ++b) {
    const int8_t* q = codes + b * be;
    float d = scales[b * be / group];
    switch (type) {
      case GgmlType::kQ4_0: encode_q4_0(q, d, reinterpret_cast<BlockQ4_0*>(out) + b); break;
      case GgmlType::kQ8_0: encode_q8_0(q, d, reinterpret_cast<BlockQ8_0*>(out) + b); break;
      case GgmlType::kTQ2_0: encode_tq2_0(q, d, reinterpret_cast<BlockTQ2_0*>(out) + b); break;
      case GgmlType::kTQ1_0: encode_tq1_0(q, d, reinterpret_cast<BlockTQ1_0*>(out) + b); break;
      default: RZ_ASSERT_MSG(false, "encode_row: unsupported type");
    }
  }
}

void encode_floats(GgmlType type, const float* x, int64_t n, uint8_t* out) {
  switch (type) {
    case GgmlType::kF32: std::memcpy(out, x, size_t(n) * 4); break;
    case GgmlType::kF16:
      for (int64_t k = 0; k < n; ++k) {
        uint16_t h = f32_to_f16(x[k]);
        std::memcpy(out + 2 * k, &h, 2);
      }
      break;
    case GgmlType::kBF16:
      for (int64_t k = 0; k < n; ++k) {
        uint16_t h = f32_to_bf16(x[k]);
        std::memcpy(out + 2 * k, &h, 2);
      }
      break;
    default: RZ_ASSERT_MSG(false, "encode_floats: not a float type");
  }
}

// Block b of a row: copied out of the (unaligned) row bytes, then decoded to codes and scale.
template <class Block>
static void decode_block_at(const uint8_t* in, int64_t b, void (*decode)(const Block&, int8_t*, float*), int8_t* q,
                            float* d) {
  Block blk;
  std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
  decode(blk, q, d);
}

void decode_row_codes(GgmlType type, const uint8_t* in, int64_t n, int8_t* codes, float* block_scales) {
  const int64_t be = block_elems(type);
  RZ_ASSERT(be > 1 && n % be == 0);
  for (int64_t b = 0; b < n / be; ++b) {
    int8_t* q = codes + b * be;
    float* d = block_scales + b;
    switch (type) {
      case GgmlType::kQ4_0: decode_block_at(in, b, decode_q4_0, q, d); break;
      case GgmlType::kQ8_0: decode_block_at(in, b, decode_q8_0, q, d); break;
      case GgmlType::kTQ2_0: decode_block_at(in, b, decode_tq2_0, q, d); break;
      case GgmlType::kTQ1_0: decode_block_at(in, b, decode_tq1_0, q, d); break;
      default: RZ_ASSERT_MSG(false, "decode_row_codes: unsupported type");
    }
  }
}

void dequantize_row(GgmlType type, const uint8_t* in, int64_t n, float* out) {
  switch (type) {
    case GgmlType::kF32: std::memcpy(out, in, size_t(n) * 4); return;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (int64_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, in + 2 * k, 2);
        out[k] = type == GgmlType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    default: break;
  }
  const int64_t be = block_elems(type);
  std::vector<int8_t> q(static_cast<size_t>(n));
  std::vector<float> d(static_cast<size_t>(n / be));
  decode_row_codes(type, in, n, q.data(), d.data());
  for (int64_t k = 0; k < n; ++k) out[k] = float(q[size_t(k)]) * d[size_t(k / be)];
}

CodeStats code_stats(const int8_t* codes, const float* scales, int64_t d_out, int64_t d_in, int group) {
  RZ_ASSERT(group > 0 && d_in % group == 0);
  CodeStats st;
  st.min_code = 127;
  st.max_code = -128;
  const int64_t gpr = d_in / group;
  for (int64_t i = 0; i < d_out * gpr; ++i) {
    float s = scales[i];
    if (!std::isfinite(s) || round_to_f16(s) != s) st.scales_fp16 = false;
  }
  for (int64_t r = 0; r < d_out; ++r)
    for (int64_t k = 0; k < d_in; ++k) {
      int q = codes[r * d_in + k];
      st.min_code = std::min(st.min_code, q);
      st.max_code = std::max(st.max_code, q);
      float v = float(q) * scales[r * gpr + k / group];  // exact in fp32: 8 + 11 significant bits
      if (st.values_f16_exact && round_to_f16(v) != v) st.values_f16_exact = false;
    }
  if (d_out * d_in == 0) st.min_code = st.max_code = 0;
  return st;
}

TypeChoice choose_gguf_type(const std::string& name, const CodeStats& st, int64_t d_in, int group,
                            GgmlType ternary_type) {
  RZ_ASSERT(ternary_type == GgmlType::kTQ1_0 || ternary_type == GgmlType::kTQ2_0);
  if (!st.scales_fp16)
    fail("%s: a group scale is not an fp16 number; razor's quantizer rounds scales to fp16 before computing the "
         "integers, so this tensor was not produced by it (re-quantize it)",
         name.c_str());
  RZ_ASSERT(group > 0 && d_in % group == 0);
  const bool ternary = st.min_code >= -1 && st.max_code <= 1;
  const bool int4 = st.min_code >= -8 && st.max_code <= 7;
  TypeChoice c;
  c.natural = ternary ? ternary_type : int4 ? GgmlType::kQ4_0 : GgmlType::kQ8_0;
  const char* what = ternary ? "ternary" : int4 ? "4-bit" : "8-bit";
  if (ternary && group % 256 == 0) {
    c.type = ternary_type;
  } else if (int4 && group % 32 == 0) {
    c.type = GgmlType::kQ4_0;
    if (ternary)
      c.reason = strfmt("%s G=%d: %s needs one scale per 256 weights; Q4_0 (32 weights per fp16 scale) holds the "
                        "codes -1..1 with d = s exactly",
                        what, group, ggml_type_name(ternary_type));
  } else if (group % 32 == 0) {
    c.type = GgmlType::kQ8_0;
  } else if (st.values_f16_exact) {
    c.type = GgmlType::kF16;
    c.reason = strfmt("%s G=%d: G is not a multiple of 32, so no llama.cpp block type has one scale per razor "
                      "group; every q*s is an fp16 number, so F16 is exact",
                      what, group);
  } else {
    c.type = GgmlType::kF32;
    c.reason = strfmt("%s G=%d: G is not a multiple of 32 and some q*s are not fp16 numbers; F32 holds them exactly",
                      what, group);
  }
  c.widened = c.type != c.natural;
  return c;
}

}  // namespace razor
