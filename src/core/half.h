// bf16 and fp16 storage formats <-> f32. Conversions to the 16-bit formats round to
// nearest even (as PyTorch / numpy do); NaN stays NaN, overflow becomes inf.
// Scalar, portable and exact; bulk helpers convert arrays.
#pragma once
#include <cstdint>
#include <cstring>

namespace razor {

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Round a float to the nearest fp16-representable value (used for quantizer scales).
inline float round_to_f16(float f) { return f16_to_f32(f32_to_f16(f)); }

void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
void f16_to_f32(const uint16_t* src, float* dst, int64_t n);
void f32_to_f16(const float* src, uint16_t* dst, int64_t n);

}  // namespace razor
