// GPTQ on razor's grids: Cholesky / triangular inverse, the column sweep, the RTN preimage.
#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/error.h"

namespace razor {

namespace {

constexpr int64_t kCholBlock = 64;
constexpr int64_t kRowTile = 16;  // rows swept together (one OpenMP work item)

// Σ a[k]·b[k]; `omp simd reduction` allows the vector partial sums that -ffp-contract=off and
// strict IEEE order would otherwise forbid (the order is fixed for a given build).
inline double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) s += a[k] * b[k];
  return s;
}

}  // namespace

// ---------------------------------------------------------------- dense linear algebra

bool cholesky_lower(std::vector<double>& a, int64_t n) {
  RZ_ASSERT(int64_t(a.size()) == n * n);
  double* A = a.data();
  bool ok = true;
  // Right-looking blocked factorisation on the lower triangle (row-major: row i holds
  // L[i][0..i], so every inner product below runs over contiguous memory).
  for (int64_t k0 = 0; k0 < n && ok; k0 += kCholBlock) {
    const int64_t k1 = std::min(n, k0 + kCholBlock);
    // 1. The diagonal block, unblocked (its rows already carry the updates of columns < k0).
    for (int64_t j = k0; j < k1 && ok; ++j) {
      const double d = A[j * n + j] - dot(A + j * n + k0, A + j * n + k0, j - k0);
      if (!(d > 0) || !std::isfinite(d)) {
        ok = false;
        break;
      }
      const double ljj = std::sqrt(d);
      A[j * n + j] = ljj;
      for (int64_t i = j + 1; i < k1; ++i) {
        A[i * n + j] = (A[i * n + j] - dot(A + i * n + k0, A + j * n + k0, j - k0)) / ljj;
      }
    }
    if (!ok) break;
    // 2. The panel below: L21 = A21 · L11⁻ᵀ, row by row (independent rows).
#pragma omp parallel for schedule(static)
    for (int64_t i = k1; i < n; ++i) {
      double* ri = A + i * n;
      for (int64_t j = k0; j < k1; ++j) {
        const double* rj = A + j * n;
        ri[j] = (ri[j] - dot(ri + k0, rj + k0, j - k0)) / rj[j];
      }
    }
    // 3. Trailing update A22 -= L21 L21ᵀ (lower triangle only), tiles of rows in parallel.
    const int64_t nb = k1 - k0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i0 = k1; i0 < n; i0 += 16) {
      const int64_t i1 = std::min(n, i0 + 16);
      for (int64_t i = i0; i < i1; ++i) {
        const double* li = A + i * n + k0;
        double* ri = A + i * n;
        for (int64_t j = k1; j <= i; ++j) ri[j] -= dot(li, A + j * n + k0, nb);
      }
    }
  }
  if (!ok) return false;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) A[i * n + j] = 0;
  return true;
}

void invert_lower(std::vector<double>& l, int64_t n) {
  RZ_ASSERT(int64_t(l.size()) == n * n);
  std::vector<double> x(size_t(n * n), 0.0);
  const double* L = l.data();
  double* X = x.data();
  // Columns of X = L⁻¹ are independent: blocks of 32 columns, forward substitution down the
  // rows, each row's update an axpy over the block's contiguous 32 entries.
  constexpr int64_t W = 32;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c0 = 0; c0 < n; c0 += W) {
    const int64_t c1 = std::min(n, c0 + W);
    for (int64_t i = c0; i < n; ++i) {
      double* xi = X + i * n;
      const double* li = L + i * n;
      // X[i][c] = (δ_ic - Σ_{k<i} L[i][k] X[k][c]) / L[i][i]; X[k][c] = 0 for k < c.
      double acc[W];
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] = (c == i) ? 1.0 : 0.0;
      for (int64_t k = c0; k < i; ++k) {
        const double lik = li[k];
        if (lik == 0) continue;
        const double* xk = X + k * n;
        const int64_t cend = std::min(c1, k + 1);
        for (int64_t c = c0; c < cend; ++c) acc[c - c0] -= lik * xk[c];
      }
      const int64_t cend = std::min(c1, i + 1);
      for (int64_t c = c0; c < cend; ++c) xi[c] = acc[c - c0] / li[i];
    }
  }
  l.swap(x);
}

// ---------------------------------------------------------------- GPTQ factor

GptqFactor gptq_factor(const std::vector<double>& h, int64_t n, const GptqOptions& opt, const std::string& what) {
  RZ_CHECK(int64_t(h.size()) == n * n && n > 0, "%s: Hessian has %zu entries for %lld columns", what.c_str(),
           h.size(), (long long)n);
  RZ_CHECK(opt.damp >= 0 && std::isfinite(opt.damp), "%s: damping ratio must be >= 0 (got %g)", what.c_str(), opt.damp);
  GptqFactor f;
  f.n = n;
  std::vector<double> diag(static_cast<size_t>(n));
  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = h[size_t(i * n + i)];
    RZ_CHECK(std::isfinite(d) && d >= 0, "%s: Hessian diagonal %lld is %g (inputs not finite?)", what.c_str(),
             (long long)i, d);
    if (d == 0) ++f.dead;
    diag[size_t(i)] = d == 0 ? 1.0 : d;
    mean_diag += diag[size_t(i)];
  }
  mean_diag /= double(n);
  f.perm.resize(size_t(n));
  std::iota(f.perm.begin(), f.perm.end(), int64_t(0));
  if (opt.act_order)
    std::stable_sort(f.perm.begin(), f.perm.end(),
                     [&](int64_t a, int64_t b) { return diag[size_t(a)] > diag[size_t(b)]; });
  // Index-reversed, permuted Hessian: rev[i][j] = H[p[n-1-i]][p[n-1-j]] (dead columns: e_i).
  std::vector<double> rev(size_t(n * n));
  double ratio = opt.damp;
  for (;;) {
    const double lambda = ratio * mean_diag;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pi = f.perm[size_t(n - 1 - i)];
      const bool dead_i = h[size_t(pi * n + pi)] == 0;
      for (int64_t j = 0; j <= i; ++j) {
        const int64_t pj = f.perm[size_t(n - 1 - j)];
        const bool dead_j = h[size_t(pj * n + pj)] == 0;
        double v = (dead_i || dead_j) ? 0.0 : h[size_t(pi * n + pj)];
        if (i == j) v = diag[size_t(pi)] + lambda;
        rev[size_t(i * n + j)] = v;
      }
    }
    if (cholesky_lower(rev, n)) break;
    const double next = ratio > 0 ? ratio * 10 : 1e-6;
    RZ_CHECK(next <= 1e3, "%s: the Hessian is not positive definite even with damping %g of its mean diagonal",
             what.c_str(), ratio);
    std::fprintf(stderr, "razor: warning: %s: Cholesky of the Hessian failed with damping %g; raised to %g\n",
                 what.c_str(), ratio, next);
    ratio = next;
    ++f.raises;
  }
  f.damp = ratio;
  invert_lower(rev, n);
  // U = J·L⁻¹·J is the upper Cholesky factor of H⁻¹ (in visiting order).
  f.u.assign(size_t(n * n), 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) f.u[size_t(i * n + j)] = float(rev[size_t((n - 1 - i) * n + (n - 1 - j))]);
  return f;
}

// ---------------------------------------------------------------- the sweep

QuantizedWeight gptq_quantize(const std::string& name, const Tensor& w, const GptqFactor& f,
                              const WeightLayout& layout, const GptqOptions& opt, GptqStats* stats) {
  check_quantizable(name, w, layout);
  RZ_CHECK(layout.quantized(), "%s: GPTQ needs a quantized layout", name.c_str());
  const int64_t d_out = w.dim() == 2 ? w.size(0) : 1, n = w.dim() == 2 ? w.size(1) : w.numel();
  RZ_CHECK(n == f.n, "%s: %lld input columns but the Hessian has %lld", name.c_str(), (long long)n, (long long)f.n);
  RZ_CHECK(opt.block >= 1, "%s: GPTQ block must be >= 1", name.c_str());
  for (int64_t i = 0; i < w.numel(); ++i)
    RZ_CHECK(std::isfinite(w[i]), "%s: non-finite weight at row %lld", name.c_str(), (long long)(i / n));
  const int G = layout.group;
  const int64_t ng = n / G;
  QuantizedWeight q;
  q.d_out = d_out;
  q.d_in = n;
  q.layout = layout;
  q.codes.assign(size_t(d_out * n), 0);
  q.scales.assign(size_t(d_out * ng), 0.0f);
  // Position of each original column in the visiting order, and for each position the group
  // it enters (or -1 when its group was entered earlier).
  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[size_t(f.perm[size_t(i)])] = i;
  std::vector<int64_t> enters(size_t(n), -1);
  {
    std::vector<char> seen(size_t(ng), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t g = f.perm[size_t(i)] / G;
      if (!seen[size_t(g)]) enters[size_t(i)] = g, seen[size_t(g)] = 1;
    }
  }
  const int64_t B = opt.block;
  const float* U = f.u.data();
  int64_t forced = 0;
  const int64_t tiles = (d_out + kRowTile - 1) / kRowTile;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : forced)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t r0 = t * kRowTile, r1 = std::min(d_out, r0 + kRowTile), R = r1 - r0;
    // This tile's rows in visiting order, the block's scaled errors, per-row group state.
    std::vector<float> wt(size_t(R * n)), err(size_t(R * B)), tmp(static_cast<size_t>(G));
    std::vector<float> scale(size_t(R * ng), 0.0f);
    std::vector<int64_t> pin(size_t(R * ng), -1);  // absmax: position that must reach ±M
    std::vector<QuantGroupFormat> fmt;
    for (int64_t r = 0; r < R; ++r) {
      fmt.push_back(layout.row_format(r0 + r));
      const float* src = w.data() + (r0 + r) * n;
      for (int64_t i = 0; i < n; ++i) wt[size_t(r * n + i)] = src[f.perm[size_t(i)]];
    }
    for (int64_t b0 = 0; b0 < n; b0 += B) {
      const int64_t b1 = std::min(n, b0 + B);
      for (int64_t i = b0; i < b1; ++i) {
        const int64_t col = f.perm[size_t(i)], g = col / G;
        const float* ui = U + i * n;
        const float uii = ui[i];
        for (int64_t r = 0; r < R; ++r) {
          float* wr = wt.data() + r * n;
          const QuantGroupFormat& fr = fmt[size_t(r)];
          if (enters[size_t(i)] >= 0) {
            // Entering the group: its scale from the row's current values of its G columns.
            for (int k = 0; k < G; ++k) tmp[size_t(k)] = wr[pos[size_t(g * G + k)]];
            const float s = group_scale(tmp.data(), fr);
            scale[size_t(r * ng + g)] = s;
            if (opt.packable && fr.kind == QuantGroupFormat::Kind::kAbsmax) {
              int best = 0;
              for (int k = 1; k < G; ++k)
                if (std::fabs(tmp[size_t(k)]) > std::fabs(tmp[size_t(best)])) best = k;
              if (std::fabs(tmp[size_t(best)]) >= kQuantEps) pin[size_t(r * ng + g)] = pos[size_t(g * G + best)];
            }
          }
          const float s = scale[size_t(r * ng + g)];
          const float m = float(fr.qmax());
          const float x = wr[i];
          float c = std::nearbyint(x / s);
          c = c < -m ? -m : (c > m ? m : c);
          if (pin[size_t(r * ng + g)] == i && std::fabs(c) != m) {
            c = x < 0 ? -m : m;
            ++forced;
          }
          q.codes[size_t((r0 + r) * n + col)] = int8_t(c);
          const float e = (x - (c + 0.0f) * s) / uii;
          err[size_t(r * B + (i - b0))] = e;
          for (int64_t j = i + 1; j < b1; ++j) wr[j] -= e * ui[j];
        }
      }
      // Lazy update of the columns after the block: W[:, b1:] -= E · U[b0:b1, b1:].
      if (b1 < n) {
        for (int64_t i = b0; i < b1; ++i) {
          const float* ui = U + i * n;
          for (int64_t r = 0; r < R; ++r) {
            const float e = err[size_t(r * B + (i - b0))];
            if (e == 0) continue;
            float* wr = wt.data() + r * n;
            for (int64_t j = b1; j < n; ++j) wr[j] -= e * ui[j];
          }
        }
      }
    }
    for (int64_t r = 0; r < R; ++r)
      for (int64_t g = 0; g < ng; ++g) q.scales[size_t((r0 + r) * ng + g)] = scale[size_t(r * ng + g)];
  }
  if (stats) stats->forced += forced;
  return q;
}

// ---------------------------------------------------------------- helpers

double hessian_error(const Tensor& w, const Tensor& wq, const std::vector<double>& h) {
  const int64_t d_out = w.size(0), n = w.size(1);
  RZ_CHECK(wq.numel() == w.numel() && int64_t(h.size()) == n * n, "hessian_error: shape mismatch");
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int64_t r = 0; r < d_out; ++r) {
    std::vector<double> e(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) e[size_t(j)] = double(w[r * n + j]) - double(wq[r * n + j]);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (e[size_t(i)] == 0) continue;
      s += e[size_t(i)] * dot(h.data() + i * n, e.data(), n);
    }
    total += s;
  }
  return total;
}

Tensor rtn_preimage(const std::string& name, const QuantizedWeight& q) {
  const WeightLayout& l = q.layout;
  const int G = l.group;
  const int64_t n = q.d_in, ng = n / G;
  Tensor out = q.dequantize();
  bool bad = false;
  int64_t bad_row = -1;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < q.d_out; ++r) {
    const QuantGroupFormat f = l.row_format(r);
    std::vector<int8_t> chk(static_cast<size_t>(G));
    for (int64_t g = 0; g < ng; ++g) {
      float* o = out.data() + r * n + g * G;
      const int8_t* c = q.codes.data() + r * n + g * G;
      const float s = q.scales[size_t(r * ng + g)];
      if (f.kind == QuantGroupFormat::Kind::kTernary) {
        int nz = 0;
        for (int k = 0; k < G; ++k) nz += c[k] != 0;
        // Σ|w| must be G·s/beta; non-zeros at a in (s/2, 1.5 s), zeros at b in [0, s/2].
        const double total = double(G) * s / f.beta;
        double b = nz < G ? std::clamp((total - double(nz) * s) / double(G - nz), 0.0, 0.5 * s) : 0.0;
        double a = nz > 0 ? (total - double(G - nz) * b) / double(nz) : 0.0;
        float af = float(a), bf = float(b);
        if (nz > 0 && !(af / s > 0.5f)) af = std::nextafter(0.5f * s, 2.0f * s);
        while (nz > 0 && af / s > 0.5f && !(std::nearbyint(af / s) <= 1.0f)) af = std::nextafter(af, 0.0f);
        for (int k = 0; k < G; ++k) o[k] = c[k] > 0 ? af : c[k] < 0 ? -af : bf;
      }
      // Absmax: the dequantized group is its own preimage when a code reaches ±M.
      if (quantize_group(o, f, chk.data()) != s || !std::equal(chk.begin(), chk.end(), c)) {
#pragma omp critical(rtn_preimage_bad)
        {
          bad = true;
          if (bad_row < 0 || r < bad_row) bad_row = r;
        }
      }
    }
  }
  RZ_CHECK(!bad, "%s: row %lld: these codes and scales have no weights that re-quantize to them (%s)", name.c_str(),
           (long long)bad_row, l.str().c_str());
  return out;
}

}  // namespace razor
