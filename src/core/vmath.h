// Vectorisable elementwise math for hot loops over logits (softmax, KL): a float exp that the
// compiler turns into SIMD code (no libm call per element).
//
// exp_approx(x): Cody-Waite range reduction x = n ln2 + r (|r| <= ln2/2) and a degree-6
// polynomial for e^r, scaled by 2^n through the exponent bits. Relative error <= 2e-7 against
// the exact exponential for x in [-87.3, 88.3] (tests/test_core.cpp checks it over that range);
// below -87.3 it returns 0 (the true value is a denormal, < 1.2e-38), above 88.3 it saturates
// at exp(88.3). Deterministic: the same input gives the same bits on every build of one ISA.
#pragma once
#include <cstdint>
#include <cstring>

namespace razor {

inline float exp_approx(float x) {
  const float hi = 88.3f, lo = -87.3f;  // n in [-126, 127]: a normal 2^n
  const bool under = x < lo;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  // n = round(x / ln2) with the 1.5 * 2^23 trick (round to nearest even, no libm).
  const float shifter = 12582912.0f;
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  // r = x - n ln2 in two steps (ln2 = c1 + c2, c1 exact in few bits).
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  // e^r on |r| <= 0.347: Taylor-like minimax coefficients (Cephes expf).
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return under ? 0.0f : p * scale;
}

// out[i] = exp_approx(x[i] - shift), i < n; returns the sum of out[] accumulated in double
// (in a fixed order: the result is deterministic for a given n).
double exp_shifted_sum(const float* x, float shift, float* out, int64_t n);

// log softmax(z)[y] over z[0, V), exactly in double (max-shifted std::exp): the per-token
// log-probability `razor score` and `razor eval` report.
double log_prob_at(const float* z, int64_t V, int32_t y);

}  // namespace razor
