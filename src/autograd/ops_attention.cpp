// Causal grouped-query attention.
//  attention(): fused, flash-attention style. The forward streams over key blocks with an
//    online softmax (running max m, running sum l, rescaled accumulator), so no [T, T] matrix
//    is formed; it saves only the per-row logsumexp [B, H, T]. The backward recomputes each
//    score row from q, k and the saved logsumexp (p = exp(s - lse)), so its memory is one
//    [T] row per thread plus per-head dK/dV partials, which are summed over the query heads
//    of each KV group in a fixed order (deterministic). OpenMP over (batch, head).
//    Inner loops run over keys (scores) or over D (accumulators), never as a float
//    reduction, so they vectorise without -ffast-math: K and V are copied transposed [D, T]
//    per task to make the score loop contiguous.
//  attention_composed(): the same function from matmul / scale / add(mask) / softmax_lastdim;
//    the reference the tests hold the fused op to.
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace razor {

namespace {

struct AttnDims {
  int64_t B, T, H, K, D, G;
};

AttnDims attn_dims(const char* op, const Var& q, const Var& k, const Var& v) {
  const Shape& sq = q.shape();
  const Shape& sk = k.shape();
  const Shape& sv = v.shape();
  auto bad = [&](const char* why) {
    fail("%s: %s: q %s, k %s, v %s (expected q [B, T, H, D], k and v [B, T, K, D], H %% K == 0)", op, why,
         sq.str().c_str(), sk.str().c_str(), sv.str().c_str());
  };
  if (sq.nd != 4 || sk.nd != 4 || sv.nd != 4) bad("wrong rank");
  if (sk != sv) bad("k and v differ");
  if (sk[0] != sq[0] || sk[1] != sq[1] || sk[3] != sq[3]) bad("batch, time or head dim differ");
  if (sk[2] <= 0 || sq[2] % sk[2] != 0) bad("query heads not a multiple of kv heads");
  if (sq[3] <= 0) bad("empty head dim");
  return AttnDims{sq[0], sq[1], sq[2], sk[2], sq[3], sq[2] / sk[2]};
}

constexpr int64_t kKeyBlock = 64;  // keys per online-softmax step (forward)
constexpr int64_t kQB = 4;         // queries per block (backward)

// dst[d * T + j] = src row j (rows of stride `stride`), j < T: a [T, D] slab transposed.
void transpose_rows(const float* src, int64_t stride, int64_t T, int64_t D, float* dst) {
  for (int64_t j = 0; j < T; ++j)
    for (int64_t d = 0; d < D; ++d) dst[d * T + j] = src[j * stride + d];
}

// sc[jj] = scale * q . k_{j0 + jj} for jj < n, with Kt the transposed keys [D, T].
// Keys are done 16 at a time with the partial sums held in registers across the d loop.
// Every score accumulates over d in the same order (d = 0, 1, ...), in blocks and in the
// tail alike, so forward and backward recompute identical bits.
inline void score_row(const float* q, const float* Kt, int64_t T, int64_t D, int64_t j0, int64_t n, float scale,
                      float* sc) {
  constexpr int64_t kW = 16;
  int64_t jj = 0;
  for (; jj + kW <= n; jj += kW) {
    float acc[kW] = {};
    for (int64_t d = 0; d < D; ++d) {
      const float qd = q[d];
      const float* kr = Kt + d * T + j0 + jj;
      RZ_SIMD
      for (int64_t u = 0; u < kW; ++u) acc[u] += qd * kr[u];
    }
    RZ_SIMD
    for (int64_t u = 0; u < kW; ++u) sc[jj + u] = acc[u] * scale;
  }
  if (jj == n) return;
  const int64_t m = n - jj;
  float* st = sc + jj;
  for (int64_t u = 0; u < m; ++u) st[u] = 0.0f;
  for (int64_t d = 0; d < D; ++d) {
    const float qd = q[d];
    const float* kr = Kt + d * T + j0 + jj;
    RZ_SIMD
    for (int64_t u = 0; u < m; ++u) st[u] += qd * kr[u];
  }
  RZ_SIMD
  for (int64_t u = 0; u < m; ++u) st[u] *= scale;
}

// acc[d] += sum_j w[j] * rows[j * stride + d] over j < n, four rows per pass over acc.
// Left-to-right evaluation makes this the same sum, in the same order, as one row at a time.
inline void axpy_rows(const float* w, const float* rows, int64_t stride, int64_t n, int64_t D, float* acc) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float w0 = w[j], w1 = w[j + 1], w2 = w[j + 2], w3 = w[j + 3];
    const float* r0 = rows + j * stride;
    const float* r1 = r0 + stride;
    const float* r2 = r1 + stride;
    const float* r3 = r2 + stride;
    RZ_SIMD
    for (int64_t d = 0; d < D; ++d) acc[d] = acc[d] + w0 * r0[d] + w1 * r1[d] + w2 * r2[d] + w3 * r3[d];
  }
  for (; j < n; ++j) {
    const float wj = w[j];
    const float* r = rows + j * stride;
    RZ_SIMD
    for (int64_t d = 0; d < D; ++d) acc[d] += wj * r[d];
  }
}

}  // namespace

// The backward, beside the forward below it (same stem).
static void attention_backward(Var& q, Var& k, Var& v, Var& out, const Tensor& lse, const AttnDims& a, float scale);

// The forward of both attention() (Tq = Tk) and attention_cached() (the queries are the last Tq
// of Tk positions): query t sees keys 0 .. Tk - Tq + t, streamed in kKeyBlock blocks from key 0,
// so a query row's arithmetic is the same whichever of the two computes it. Q [B, Tq, H, D],
// Kp, Vp [B, Tk, K, D] -> O [B, Tq, H, D] and, when lse is not null, lse [B, H, Tq].
static void attention_forward(const float* Q, const float* Kp, const float* Vp, int64_t B, int64_t Tq, int64_t Tk,
                              int64_t H, int64_t K, int64_t D, float* O, float* lse) {
  const int64_t G = H / K, P = Tk - Tq;
  const float scale = float(1.0 / std::sqrt(double(D)));
  const int64_t qs = H * D, ks = K * D;  // row strides over t
#pragma omp parallel
  {
    const size_t nDT = size_t(D * Tk);
    std::vector<float> Kt(nDT), sc(static_cast<size_t>(kKeyBlock)), acc(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H, h = bh % H, kv = h / G;
      const float* kb = Kp + b * Tk * ks + kv * D;
      const float* vb = Vp + b * Tk * ks + kv * D;
      transpose_rows(kb, ks, Tk, D, Kt.data());
      for (int64_t t = 0; t < Tq; ++t) {
        const int64_t last = P + t;  // the last key this query sees
        const float* qt = Q + (b * Tq + t) * qs + h * D;
        float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
        for (int64_t d = 0; d < D; ++d) acc[size_t(d)] = 0.0f;
        for (int64_t j0 = 0; j0 <= last; j0 += kKeyBlock) {
          const int64_t n = std::min(last + 1, j0 + kKeyBlock) - j0;
          score_row(qt, Kt.data(), Tk, D, j0, n, scale, sc.data());
          float bm = sc[0];
          for (int64_t jj = 1; jj < n; ++jj) bm = std::max(bm, sc[size_t(jj)]);
          const float mnew = std::max(m, bm);
          const float corr = std::exp(m - mnew);  // 0 on the first block (m = -inf)
          l *= corr;
          RZ_SIMD
          for (int64_t d = 0; d < D; ++d) acc[size_t(d)] *= corr;
          RZ_SIMD
          for (int64_t jj = 0; jj < n; ++jj) sc[size_t(jj)] -= mnew;
          exp_inplace(sc.data(), n);
          for (int64_t jj = 0; jj < n; ++jj) l += sc[size_t(jj)];
          axpy_rows(sc.data(), vb + j0 * ks, ks, n, D, acc.data());
          m = mnew;
        }
        float* ot = O + (b * Tq + t) * qs + h * D;
        const float inv = 1.0f / l;
        for (int64_t d = 0; d < D; ++d) ot[d] = acc[size_t(d)] * inv;
        if (lse) lse[(b * H + h) * Tq + t] = m + std::log(l);
      }
    }
  }
}

// q [B, T, H, D], k, v [B, T, K, D] -> [B, T, H, D]
Var attention(const Var& q, const Var& k, const Var& v) {
  const AttnDims a = attn_dims("attention", q, k, v);
  const int64_t B = a.B, T = a.T, H = a.H;
  const float scale = float(1.0 / std::sqrt(double(a.D)));
  Tensor o = Tensor::empty(q.shape());
  Tensor lse = Tensor::empty(Shape{B, H, T});
  attention_forward(q.value().data(), k.value().data(), v.value().data(), B, T, T, H, a.K, a.D, o.data(), lse.data());
  Var out = make_output(o, {&q, &k, &v});
  if (!out.requires_grad()) return out;
  tape().record([q = q, k = k, v = v, out, lse, a, scale]() mutable {
    attention_backward(q, k, v, out, lse, a, scale);
  });
  return out;
}

// q [B, Tq, H, D]: the last Tq of Tk positions; k, v [B, Tk, K, D] -> [B, Tq, H, D]. No gradient.
Var attention_cached(const Var& q, const Var& k, const Var& v) {
  const Shape& sq = q.shape();
  const Shape& sk = k.shape();
  if (sq.nd != 4 || sk.nd != 4 || sk != v.shape() || sk[0] != sq[0] || sk[3] != sq[3] || sk[1] < sq[1] ||
      sk[2] <= 0 || sq[2] % sk[2] != 0)
    fail("attention_cached: q %s, k %s, v %s (expected q [B, Tq, H, D], k and v [B, Tk, K, D], Tk >= Tq, H %% K == 0)",
         sq.str().c_str(), sk.str().c_str(), v.shape().str().c_str());
  RZ_CHECK(!q.requires_grad() && !k.requires_grad() && !v.requires_grad(),
           "attention_cached: inference only (no gradient); run it under NoGradGuard");
  Tensor o = Tensor::empty(sq);
  attention_forward(q.value().data(), k.value().data(), v.value().data(), sq[0], sq[1], sk[1], sq[2], sk[2], sq[3],
                    o.data(), nullptr);
  return Var(o, false);
}

// attention_backward reads q, k, v (values), the output o, the saved lse [B, H, T] and dO.
//   p = exp(s - lse); dv_j += p_j dO; dp_j = dO . v_j; ds_j = p_j (dp_j - dO . o);
//   dq += scale sum_j ds_j k_j; dk_j += scale ds_j q.
static void attention_backward(Var& q, Var& k, Var& v, Var& out, const Tensor& lse, const AttnDims& a, float scale) {
  const float* dO = detail::grad_or_null(out);
  if (!dO) return;
  const int64_t B = a.B, T = a.T, H = a.H, K = a.K, D = a.D, G = a.G;
  const int64_t qs = H * D, ks = K * D;
  const float* Q = q.value().data();
  const float* Kp = k.value().data();
  const float* Vp = v.value().data();
  const float* O = out.value().data();
  const bool want_q = q.requires_grad(), want_kv = k.requires_grad() || v.requires_grad();
  float* dQ = want_q ? q.grad().data() : nullptr;
  // Per query head dK / dV partials [B, H, T, D], summed per KV group below.
  std::vector<float> dkp(want_kv ? size_t(B * H * T * D) : 0, 0.0f), dvp(dkp.size(), 0.0f);
#pragma omp parallel
  {
    const size_t nDT = size_t(D * T), nT = size_t(T), nD = size_t(D);
    std::vector<float> Kt(nDT), Vt(nDT), p(size_t(kQB) * nT), ds(size_t(kQB) * nT), dq(nD);
#pragma omp for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H, h = bh % H, kv = h / G;
      const float* kb = Kp + b * T * ks + kv * D;
      const float* vb = Vp + b * T * ks + kv * D;
      transpose_rows(kb, ks, T, D, Kt.data());
      transpose_rows(vb, ks, T, D, Vt.data());
      float* dkh = want_kv ? dkp.data() + bh * T * D : nullptr;
      float* dvh = want_kv ? dvp.data() + bh * T * D : nullptr;
      // Queries in blocks of kQB: their p and ds rows are formed first, then every key row
      // of dK / dV is updated once per block instead of once per query.
      for (int64_t t0 = 0; t0 < T; t0 += kQB) {
        const int64_t nq = std::min(kQB, T - t0), nk = t0 + nq;  // keys [0, nk) cover the block
        for (int64_t i = 0; i < nq; ++i) {
          const int64_t t = t0 + i, n = t + 1;
          const float* qt = Q + (b * T + t) * qs + h * D;
          const float* got = dO + (b * T + t) * qs + h * D;
          const float* ot = O + (b * T + t) * qs + h * D;
          const float L = lse[(b * H + h) * T + t];
          float* pi = p.data() + i * T;
          float* dsi = ds.data() + i * T;
          float Dt = 0.0f;
          for (int64_t d = 0; d < D; ++d) Dt += got[d] * ot[d];
          score_row(qt, Kt.data(), T, D, 0, n, scale, pi);
          RZ_SIMD
          for (int64_t j = 0; j < n; ++j) pi[j] -= L;
          exp_inplace(pi, n);
          score_row(got, Vt.data(), T, D, 0, n, 1.0f, dsi);  // dp_j = dO . v_j
          RZ_SIMD
          for (int64_t j = 0; j < n; ++j) dsi[j] = pi[j] * (dsi[j] - Dt);
          for (int64_t j = n; j < nk; ++j) pi[j] = dsi[j] = 0.0f;  // causal: no contribution
          if (dQ) {
            for (int64_t d = 0; d < D; ++d) dq[size_t(d)] = 0.0f;
            axpy_rows(dsi, kb, ks, n, D, dq.data());
            float* dqt = dQ + (b * T + t) * qs + h * D;
            RZ_SIMD
            for (int64_t d = 0; d < D; ++d) dqt[d] += scale * dq[size_t(d)];
          }
        }
        if (!dkh) continue;
        const float* q0 = Q + (b * T + t0) * qs + h * D;
        const float* g0 = dO + (b * T + t0) * qs + h * D;
        for (int64_t j = 0; j < nk; ++j) {
          float* dk = dkh + j * D;
          float* dv = dvh + j * D;
          if (nq == kQB) {
            const float k0 = scale * ds[size_t(j)], k1 = scale * ds[size_t(T + j)],
                        k2 = scale * ds[size_t(2 * T + j)], k3 = scale * ds[size_t(3 * T + j)];
            const float v0 = p[size_t(j)], v1 = p[size_t(T + j)], v2 = p[size_t(2 * T + j)],
                        v3 = p[size_t(3 * T + j)];
            RZ_SIMD
            for (int64_t d = 0; d < D; ++d) {
              dk[d] = dk[d] + k0 * q0[d] + k1 * q0[qs + d] + k2 * q0[2 * qs + d] + k3 * q0[3 * qs + d];
              dv[d] = dv[d] + v0 * g0[d] + v1 * g0[qs + d] + v2 * g0[2 * qs + d] + v3 * g0[3 * qs + d];
            }
          } else {
            for (int64_t i = 0; i < nq; ++i) {
              const float wk = scale * ds[size_t(i * T + j)], wv = p[size_t(i * T + j)];
              RZ_SIMD
              for (int64_t d = 0; d < D; ++d) {
                dk[d] += wk * q0[i * qs + d];
                dv[d] += wv * g0[i * qs + d];
              }
            }
          }
        }
      }
    }
  }
  if (!want_kv) return;
  float* dK = k.requires_grad() ? k.grad().data() : nullptr;
  float* dV = v.requires_grad() ? v.grad().data() : nullptr;
  // Sum the partials of the G query heads of each KV head, in head order.
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const int64_t b = bt / T, t = bt % T;
    for (int64_t kv = 0; kv < K; ++kv)
      for (int64_t g = 0; g < G; ++g) {
        const int64_t h = kv * G + g;
        const size_t off = size_t(((b * H + h) * T + t) * D);
        float* dk = dK ? dK + bt * ks + kv * D : nullptr;
        float* dv = dV ? dV + bt * ks + kv * D : nullptr;
        for (int64_t d = 0; d < D; ++d) {
          if (dk) dk[d] += dkp[off + size_t(d)];
          if (dv) dv[d] += dvp[off + size_t(d)];
        }
      }
  }
}

Var attention_composed(const Var& q, const Var& k, const Var& v) {
  const AttnDims a = attn_dims("attention_composed", q, k, v);
  Var qt = transpose(q, 1, 2);  // [B, H, T, D]
  Var kt = transpose(k, 1, 2);  // [B, K, T, D]
  Var vt = transpose(v, 1, 2);
  if (a.G > 1) {  // repeat each KV head for its G query heads -> [B, H, T, D]
    std::vector<Var> ks, vs;
    for (int64_t h = 0; h < a.H; ++h) {
      ks.push_back(slice(kt, 1, h / a.G, 1));
      vs.push_back(slice(vt, 1, h / a.G, 1));
    }
    kt = concat(ks, 1);
    vt = concat(vs, 1);
  }
  Var s = scale(matmul(qt, kt, false, true), float(1.0 / std::sqrt(double(a.D))));  // [B, H, T, T]
  Tensor mask = Tensor::zeros(Shape{a.T, a.T});
  for (int64_t i = 0; i < a.T; ++i)
    for (int64_t j = i + 1; j < a.T; ++j) mask[i * a.T + j] = -std::numeric_limits<float>::infinity();
  Var p = softmax_lastdim(add(s, Var(mask)));
  return transpose(matmul(p, vt), 1, 2);  // [B, T, H, D]
}

}  // namespace razor
