// Seeded, reproducible RNG: xoshiro256** seeded through splitmix64.
// The same seed gives the same stream on every platform and compiler (no <random>
// distributions, whose output is implementation-defined).
#pragma once
#include <cstdint>

namespace razor {

class Tensor;

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);
  uint64_t next_u64();
  uint32_t next_u32() { return uint32_t(next_u64() >> 32); }
  // Uniform in [0, 1) with 24 random bits.
  float uniform();
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift, bias < 2^-32).
  uint64_t below(uint64_t n);
  // Standard normal (Box-Muller; deterministic).
  float normal();
  // State, for checkpoints.
  uint64_t s[4];
};

// Fill with N(0, std^2) / U(lo, hi).
void fill_normal(Tensor& t, Rng& rng, float std);
void fill_uniform(Tensor& t, Rng& rng, float lo, float hi);

}  // namespace razor
