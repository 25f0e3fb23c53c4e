#include "quant/asym.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/quantize.h"

namespace razor {

AsymParams asym_params(float lo, float hi, int bits) {
  RZ_ASSERT(bits >= 2 && bits <= 8);
  AsymParams p;
  p.qmax = (1 << bits) - 1;
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  p.scale = std::max(hi - lo, kQuantEps) / float(p.qmax);
  float z = std::nearbyint(-lo / p.scale);
  p.zero_point = int(std::min(std::max(z, 0.0f), float(p.qmax)));
  return p;
}

int asym_code(float x, const AsymParams& p) {
  float q = std::nearbyint(x / p.scale) + float(p.zero_point);
  return int(std::min(std::max(q, 0.0f), float(p.qmax)));
}

float asym_dequant(float x, const AsymParams& p) { return float(asym_code(x, p) - p.zero_point) * p.scale; }

AsymParams asym_group(const float* w, int64_t n, int bits, uint8_t* codes, float* out) {
  float lo = w[0], hi = w[0];
  for (int64_t k = 1; k < n; ++k) {
    lo = std::min(lo, w[k]);
    hi = std::max(hi, w[k]);
  }
  AsymParams p = asym_params(lo, hi, bits);
  for (int64_t k = 0; k < n; ++k) {
    int c = asym_code(w[k], p);
    if (codes) codes[k] = uint8_t(c);
    if (out) out[k] = float(c - p.zero_point) * p.scale;
  }
  return p;
}

float log2_group(const float* w, int64_t n, int bits, int8_t* codes, float* out) {
  RZ_ASSERT(bits >= 2 && bits <= 8);
  const int K = (1 << (bits - 1)) - 1;
  float s = 0;
  for (int64_t k = 0; k < n; ++k) s = std::max(s, std::fabs(w[k]));
  for (int64_t i = 0; i < n; ++i) {
    int code = 0;
    float v = 0;
    float a = std::fabs(w[i]);
    if (s >= kQuantEps && a > 0) {
      float e = std::nearbyint(-std::log2(a / s));
      if (e < float(K)) {
        int k = int(std::max(e, 0.0f));
        code = (w[i] < 0 ? -1 : 1) * (k + 1);
        v = std::copysign(std::ldexp(s, -k), w[i]);
      }
    }
    if (codes) codes[i] = int8_t(code);
    if (out) out[i] = v;
  }
  return s;
}

Tensor calibrated_quant_weight(const std::string& name, const Tensor& w, CalibratedKind kind, int bits, int group) {
  RZ_CHECK(bits >= 2 && bits <= 8, "%s: %s quantization needs 2..8 bits (got %d)", name.c_str(),
           kind == CalibratedKind::Asym ? "asymmetric" : "log2", bits);
  check_quantizable(name, w, WeightLayout::uniform(bits, group));
  const int64_t n = w.numel();
  for (int64_t i = 0; i < n; ++i)
    RZ_CHECK(std::isfinite(w[i]), "%s: non-finite weight at index %lld", name.c_str(), (long long)i);
  Tensor out = Tensor::empty(w.shape());
  const int64_t groups = n / group;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    const float* src = w.data() + g * group;
    float* dst = out.data() + g * group;
    if (kind == CalibratedKind::Asym)
      asym_group(src, group, bits, nullptr, dst);
    else
      log2_group(src, group, bits, nullptr, dst);
  }
  return out;
}

double calibrated_bits(CalibratedKind kind, int bits, int group) {
  return kind == CalibratedKind::Asym ? bits + (16.0 + bits) / group : bits + 16.0 / group;
}

}  // namespace razor
