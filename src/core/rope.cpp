// See rope.h.
#include "core/rope.h"

#include <cmath>

#include "core/error.h"

namespace razor {

RopeTable RopeTable::make(int64_t max_pos, int64_t head_dim, double theta) {
  if (max_pos < 0 || head_dim <= 0 || head_dim % 2 != 0)
    fail("rope: head_dim must be positive and even (got %lld), max_pos >= 0 (got %lld)", (long long)head_dim,
         (long long)max_pos);
  if (!(theta > 0.0)) fail("rope: theta must be positive, got %g", theta);
  std::vector<double> inv(size_t(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) inv[size_t(i)] = std::pow(theta, -double(2 * i) / double(head_dim));
  return make(max_pos, inv);
}

RopeTable RopeTable::make(int64_t max_pos, const std::vector<double>& inv_freq) {
  if (max_pos < 0 || inv_freq.empty())
    fail("rope: need at least one frequency (got %zu) and max_pos >= 0 (got %lld)", inv_freq.size(), (long long)max_pos);
  RopeTable t;
  t.max_pos = max_pos;
  const int64_t half = int64_t(inv_freq.size());
  t.head_dim = 2 * half;
  t.cos.resize(size_t(max_pos * half));
  t.sin.resize(size_t(max_pos * half));
  for (int64_t i = 0; i < half; ++i) {
    const double f = inv_freq[size_t(i)];
    if (!(f > 0.0) || !std::isfinite(f)) fail("rope: inverse frequency %lld is %g (must be positive)", (long long)i, f);
    for (int64_t p = 0; p < max_pos; ++p) {
      const double a = double(p) * f;
      t.cos[size_t(p * half + i)] = float(std::cos(a));
      t.sin[size_t(p * half + i)] = float(std::sin(a));
    }
  }
  return t;
}

}  // namespace razor
