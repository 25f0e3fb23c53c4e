// PTQ baselines: RTN, RTN + gamma, PTQTP trit-planes.
#include "quant/ptq.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace razor {

namespace {
constexpr int64_t kParallelMin = 16384;
inline int64_t rows_of(const Tensor& w) { return w.dim() == 2 ? w.size(0) : 1; }
}  // namespace

QuantizedWeight rtn(const std::string& name, const Tensor& w, const WeightLayout& layout) {
  return quantize_weight(name, w, layout);
}

Tensor rtn_gamma(const std::string& name, const Tensor& w, const WeightLayout& layout) {
  const QuantizedWeight q = quantize_weight(name, w, layout);
  Tensor out = q.dequantize();
  const int64_t n = out.numel(), g = layout.group;
  const float* src = w.data();
  float* dst = out.data();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t start = 0; start < n; start += g) {
    double ew = 0, eq = 0;
    for (int64_t k = 0; k < g; ++k) {
      ew += double(src[start + k]) * src[start + k];
      eq += double(dst[start + k]) * dst[start + k];
    }
    if (eq <= 0.0) continue;  // all codes zero: nothing to rescale
    const float gamma = float(std::sqrt(ew / eq));
    for (int64_t k = 0; k < g; ++k) dst[start + k] *= gamma;
  }
  return out;
}

// ---------------------------------------------------------------- PTQTP

namespace {

// The 9 (t1, t2) pairs in tie-break order.
constexpr int kPairs[9][2] = {{0, 0}, {1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {1, -1}, {-1, 1}, {-1, -1}};

double plane_error(const float* w, int n, const int8_t* t1, const int8_t* t2, double a1, double a2) {
  double e = 0;
  for (int k = 0; k < n; ++k) {
    const double d = double(w[k]) - (a1 * t1[k] + a2 * t2[k]);
    e += d * d;
  }
  return e;
}

// (a): best pair per element for fixed (a1, a2).
void assign_planes(const float* w, int n, double a1, double a2, int8_t* t1, int8_t* t2) {
  for (int k = 0; k < n; ++k) {
    double best = 0;
    int bi = 0;
    for (int i = 0; i < 9; ++i) {
      const double d = double(w[k]) - (a1 * kPairs[i][0] + a2 * kPairs[i][1]);
      if (i == 0 || d * d < best) {
        best = d * d;
        bi = i;
      }
    }
    t1[k] = int8_t(kPairs[bi][0]);
    t2[k] = int8_t(kPairs[bi][1]);
  }
}

// (b): ridge least squares min ||w - a1 T1 - a2 T2||^2 + lambda ||a||^2, lambda raised x10
// from lambda0 until the symmetric 2x2 normal matrix has cond <= max_cond.
void solve_coefficients(const float* w, int n, const int8_t* t1, const int8_t* t2, const PtqtpOptions& opt,
                        double& a1, double& a2) {
  double n11 = 0, n12 = 0, n22 = 0, b1 = 0, b2 = 0;
  for (int k = 0; k < n; ++k) {
    n11 += double(t1[k]) * t1[k];
    n12 += double(t1[k]) * t2[k];
    n22 += double(t2[k]) * t2[k];
    b1 += double(t1[k]) * w[k];
    b2 += double(t2[k]) * w[k];
  }
  const double mean = 0.5 * (n11 + n22);
  const double dev = std::sqrt(0.25 * (n11 - n22) * (n11 - n22) + n12 * n12);
  const double ev_max = mean + dev, ev_min = mean - dev;  // eigenvalues of the Gram matrix (>= 0)
  double lambda = opt.lambda0;
  for (int i = 0; i < 40 && (ev_max + lambda) > opt.max_cond * (ev_min + lambda); ++i) lambda *= 10.0;
  const double m11 = n11 + lambda, m22 = n22 + lambda;
  const double det = m11 * m22 - n12 * n12;
  if (!(det > 0.0)) return;  // keep the previous coefficients
  a1 = (m22 * b1 - n12 * b2) / det;
  a2 = (m11 * b2 - n12 * b1) / det;
}

}  // namespace

void ptqtp_group(const float* w, int group, float* out, const PtqtpOptions& opt, PtqtpTrace* trace) {
  RZ_ASSERT(group >= 1);
  std::vector<int8_t> t1(static_cast<size_t>(group)), t2(static_cast<size_t>(group));
  std::vector<float> resid(static_cast<size_t>(group));
  const QuantGroupFormat tf = QuantGroupFormat::ternary(group);
  double a1 = quantize_group(w, tf, t1.data());
  for (int k = 0; k < group; ++k) resid[size_t(k)] = w[k] - float(a1) * t1[size_t(k)];
  double a2 = quantize_group(resid.data(), tf, t2.data());
  double err = plane_error(w, group, t1.data(), t2.data(), a1, a2);
  if (trace) {
    trace->errors.assign(1, err);
    trace->iterations = 0;
  }

  std::vector<int8_t> n1(static_cast<size_t>(group)), n2(static_cast<size_t>(group));
  int it = 0;
  while (it < opt.max_iters && err > 0.0) {
    ++it;
    const double prev = err;
    // (a) assignment: the exact minimiser for fixed (a1, a2), never worse than the current planes.
    assign_planes(w, group, a1, a2, n1.data(), n2.data());
    const double ea = plane_error(w, group, n1.data(), n2.data(), a1, a2);
    if (ea <= err) {
      t1.swap(n1);
      t2.swap(n2);
      err = ea;
    }
    // (b) coefficients.
    double c1 = a1, c2 = a2;
    solve_coefficients(w, group, t1.data(), t2.data(), opt, c1, c2);
    const double eb = plane_error(w, group, t1.data(), t2.data(), c1, c2);
    if (eb <= err) {
      a1 = c1;
      a2 = c2;
      err = eb;
    }
    if (trace) trace->errors.push_back(err);
    if ((prev - err) <= opt.rel_tol * prev) break;
  }
  // The coefficients are kept as fp32; the output is exactly a1 * T1 + a2 * T2 in fp32.
  const float f1 = float(a1), f2 = float(a2);
  for (int k = 0; k < group; ++k) out[k] = f1 * float(t1[size_t(k)]) + f2 * float(t2[size_t(k)]);
  if (trace) {
    trace->iterations = it;
    trace->a1 = f1;
    trace->a2 = f2;
    trace->t1 = t1;
    trace->t2 = t2;
  }
}

Tensor ptqtp(const std::string& name, const Tensor& w, const WeightLayout& layout, const PtqtpOptions& opt,
             PtqtpStats* stats) {
  check_quantizable(name, w, layout);
  RZ_CHECK(layout.quantized(), "%s: PTQTP needs a quantized layout (got none)", name.c_str());
  RZ_CHECK(opt.max_iters >= 0 && opt.rel_tol >= 0 && opt.lambda0 > 0 && opt.max_cond > 1,
           "%s: invalid PTQTP options", name.c_str());
  const int64_t d_out = rows_of(w), d_in = w.size(-1), g = layout.group, ng = d_in / g;
  Tensor out = Tensor::empty({d_out, d_in});
  const float* src = w.data();
  float* dst = out.data();
  int64_t bad_row = -1, groups = 0, iter_sum = 0;
  int iter_max = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(max : bad_row, iter_max) reduction(+ : groups, iter_sum) \
    if (w.numel() >= kParallelMin)
  for (int64_t i = 0; i < d_out; ++i) {
    const float* row = src + i * d_in;
    bool ok = true;
    for (int64_t k = 0; k < d_in; ++k) ok &= std::isfinite(row[k]);
    if (!ok) {
      bad_row = std::max(bad_row, i);
      continue;
    }
    const QuantGroupFormat f = layout.row_format(i);
    if (f.kind != QuantGroupFormat::Kind::kTernary) {
      fake_quant_row(row, d_in, f, dst + i * d_in);
      continue;
    }
    PtqtpTrace tr;
    for (int64_t gi = 0; gi < ng; ++gi) {
      ptqtp_group(row + gi * g, int(g), dst + i * d_in + gi * g, opt, stats ? &tr : nullptr);
      if (stats) {
        ++groups;
        iter_sum += tr.iterations;
        iter_max = std::max(iter_max, tr.iterations);
      }
    }
  }
  RZ_CHECK(bad_row < 0, "%s: row %lld has a non-finite value; cannot quantize", name.c_str(), (long long)bad_row);
  if (stats) {
    stats->groups = groups;
    stats->mean_iterations = groups ? double(iter_sum) / double(groups) : 0.0;
    stats->max_iterations = iter_max;
  }
  return out;
}

double sum_squared_error(const Tensor& a, const Tensor& b) {
  RZ_CHECK(a.numel() == b.numel(), "sum_squared_error: %s vs %s", a.shape_str().c_str(), b.shape_str().c_str());
  double e = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double(a[i]) - double(b[i]);
    e += d * d;
  }
  return e;
}

}  // namespace razor
