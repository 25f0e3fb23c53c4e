// A8 / KV8 activation quantizers: 8-bit absmax per group, fp32 scales.
#include "quant/act_quant.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/quantize.h"

namespace razor {

namespace {

constexpr float kA8Max = 127.0f;
constexpr int64_t kParallelMin = 16384;

inline float a8_scale(const float* x, int n) {
  float m = 0.0f;
#pragma omp simd reduction(max : m)
  for (int k = 0; k < n; ++k) m = std::max(m, std::fabs(x[k]));
  return std::max(m, kQuantEps) / kA8Max;
}

void check_groups(const char* what, const Tensor& x, int group) {
  RZ_CHECK(group >= 1, "%s: group size must be at least 1 (got %d)", what, group);
  RZ_CHECK(x.dim() >= 1 && x.data() != nullptr, "%s: input tensor is undefined", what);
  RZ_CHECK(x.size(-1) % group == 0, "%s: last dimension %lld of %s is not divisible by the group size %d", what,
           (long long)x.size(-1), x.shape_str().c_str(), group);
}

void check_a8_row(int64_t n, int group) {
  RZ_CHECK(group >= 1 && n % group == 0, "A8: row length %lld is not divisible by group size %d", (long long)n,
           group);
}

}  // namespace

void quantize_a8_row(const float* x, int64_t n, int group, int8_t* codes, float* scales) {
  check_a8_row(n, group);
  for (int64_t g = 0; g < n / group; ++g) {
    const float* xg = x + g * group;
    int8_t* c = codes + g * group;
    const float s = a8_scale(xg, group);
    scales[g] = s;
#pragma omp simd
    for (int k = 0; k < group; ++k) {
      float q = std::nearbyint(xg[k] / s);
      q = q > -kA8Max ? q : -kA8Max;  // NaN -> -127: codes are always in range
      q = q < kA8Max ? q : kA8Max;
      c[k] = int8_t(q);
    }
  }
}

void fake_quant_a8_row(const float* x, int64_t n, int group, float* out) {
  check_a8_row(n, group);
  for (int64_t g = 0; g < n / group; ++g) {
    const float* xg = x + g * group;
    float* o = out + g * group;
    const float s = a8_scale(xg, group);
#pragma omp simd
    for (int k = 0; k < group; ++k) {
      const float r = std::nearbyint(xg[k] / s);
      // Clamped as quantize_a8_row clamps, then NaN restored (it propagates). This form
      // vectorises (compares and blends); `q < -M ? -M : q` stayed a scalar branch.
      float q = r > -kA8Max ? r : -kA8Max;
      q = q < kA8Max ? q : kA8Max;
      q = r != r ? r : q;
      o[k] = (q + 0.0f) * s;  // + 0: -0 becomes +0, bit-equal to int8 0 * s
    }
  }
}

void quantize_a8(const Tensor& x, int group, int8_t* codes, float* scales) {
  check_groups("A8", x, group);
  const int64_t c = x.size(-1), rows = x.numel() / c, ng = c / group;
  const float* src = x.data();
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) quantize_a8_row(src + r * c, c, group, codes + r * c, scales + r * ng);
}

void fake_quant_a8(const Tensor& x, Tensor& out, int group) {
  check_groups("A8", x, group);
  if (out.data() == nullptr) out = Tensor::empty(x.shape());
  RZ_CHECK(out.numel() == x.numel(), "A8: output has shape %s, expected %s", out.shape_str().c_str(),
           x.shape_str().c_str());
  const int64_t c = x.size(-1), rows = x.numel() / c;
  const float* src = x.data();
  float* dst = out.data();
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) fake_quant_a8_row(src + r * c, c, group, dst + r * c);
}

void quantize_kv8(const Tensor& x, int8_t* codes, float* scales) {
  RZ_CHECK(x.dim() >= 1 && x.data() != nullptr, "KV8: input tensor is undefined");
  RZ_CHECK(x.size(-1) <= (int64_t(1) << 30), "KV8: head_dim %lld too large", (long long)x.size(-1));
  quantize_a8(x, int(x.size(-1)), codes, scales);
}

void fake_quant_kv8(const Tensor& x, Tensor& out) {
  RZ_CHECK(x.dim() >= 1 && x.data() != nullptr, "KV8: input tensor is undefined");
  RZ_CHECK(x.size(-1) <= (int64_t(1) << 30), "KV8: head_dim %lld too large", (long long)x.size(-1));
  fake_quant_a8(x, out, int(x.size(-1)));
}

}  // namespace razor
