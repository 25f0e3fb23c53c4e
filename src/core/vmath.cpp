// See vmath.h. The loops are written for the auto-vectoriser (`omp simd`): exp_approx is
// branch-free and inlined, so each iteration is a handful of FMAs and blends.
#include "core/vmath.h"

#include <algorithm>
#include <cmath>

namespace razor {

double exp_shifted_sum(const float* x, float shift, float* out, int64_t n) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) vexp::exp8_approx_shifted(x + k, shift, out + k);
  for (; k < n; ++k) out[k] = exp_approx(x[k] - shift);
  // Eight double partial sums in a fixed lane order, then combined: deterministic and vectorisable.
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += double(out[i + j]);
  for (; i < n; ++i) part[0] += double(out[i]);
  return ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
}

double log_prob_at(const float* z, int64_t V, int32_t y) {
  double mx = z[0];
  for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(z[v]));
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(double(z[v]) - mx);
  return double(z[y]) - mx - std::log(s);
}

}  // namespace razor
