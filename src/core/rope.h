// Rotary position embedding, rotate-half convention (HF Llama / Qwen), shared by the training
// op (autograd/ops_rope.cpp) and the packed engine (infer/engine.cpp):
//   y[i]       = x[i] * cos_i - x[i + D/2] * sin_i
//   y[i + D/2] = x[i + D/2] * cos_i + x[i] * sin_i,     i < D/2,
// angle_i(pos) = pos * inv_freq_i (theta^(-2i/D), or a scaled set: ModelConfig::rope_inv_freq).
#pragma once
#include <cstdint>
#include <vector>

namespace razor {

struct RopeTable {
  int64_t max_pos = 0, head_dim = 0;
  std::vector<float> cos, sin;  // [max_pos, head_dim/2], computed in double
  static RopeTable make(int64_t max_pos, int64_t head_dim, double theta);
  // From explicit inverse frequencies [head_dim / 2] (e.g. ModelConfig::rope_inv_freq()).
  static RopeTable make(int64_t max_pos, const std::vector<double>& inv_freq);
};

// Rotates one head vector x [D] with its position's cos / sin rows [D/2] into y (y == x
// allowed without kAccumulate). sign -1: the inverse rotation (the backward). kAccumulate: y +=.
template <bool kAccumulate = false>
inline void rope_row(const float* x, float* y, const float* cs, const float* sn, int64_t D, float sign = 1.0f) {
  const int64_t half = D / 2;
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const float c = cs[i], s = sign * sn[i];
    const float x1 = x[i], x2 = x[i + half];
    const float o1 = x1 * c - x2 * s, o2 = x2 * c + x1 * s;
    if (kAccumulate) {
      y[i] += o1;
      y[i + half] += o2;
    } else {
      y[i] = o1;
      y[i + half] = o2;
    }
  }
}

}  // namespace razor
