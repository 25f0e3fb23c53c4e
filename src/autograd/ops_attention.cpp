// Causal grouped-query attention.
//  attention(): fused, flash-attention style. The forward streams over key blocks with an
//    online softmax (running max m, running sum l, rescaled accumulator), so no [T, T] matrix
//    is formed; it saves only the per-row logsumexp [B, H, T]. The backward recomputes each
//    score row from q, k and the saved logsumexp (p = exp(s - lse)), so its memory is one
//    [T] row per thread plus per-head dK/dV partials, which are summed over the query heads
//    of each KV group in a fixed order (deterministic). OpenMP over (batch, head).
//    Inner loops run over keys (scores) or over D (accumulators), never as a float
//    reduction, so they vectorise without -ffast-math (`omp simd`: -O2's cheap cost model
//    would not version them for aliasing and leaves them scalar; the results are unchanged): K and V are copied transposed [D, T]
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

constexpr int64_t kKeyBlock = 64;

// dst[d * T + j] = src row j (rows of stride `stride`), j < T: a [T, D] slab transposed.
void transpose_rows(const float* src, int64_t stride, int64_t T, int64_t D, float* dst) {
  for (int64_t j = 0; j < T; ++j)
    for (int64_t d = 0; d < D; ++d) dst[d * T + j] = src[j * stride + d];
}

// sc[jj] = scale * q . k_{j0 + jj} for jj < n, with Kt the transposed keys [D, T].
// The accumulation order over d is fixed, so forward and backward get the same bits.
inline void score_row(const float* q, const float* Kt, int64_t T, int64_t D, int64_t j0, int64_t n, float scale,
                      float* sc) {
  for (int64_t jj = 0; jj < n; ++jj) sc[jj] = 0.0f;
  for (int64_t d = 0; d < D; ++d) {
    const float qd = q[d];
    const float* kr = Kt + d * T + j0;
    #pragma omp simd
    for (int64_t jj = 0; jj < n; ++jj) sc[jj] += qd * kr[jj];
  }
  #pragma omp simd
  for (int64_t jj = 0; jj < n; ++jj) sc[jj] *= scale;
}

}  // namespace

// q [B, T, H, D], k, v [B, T, K, D] -> [B, T, H, D]
Var attention(const Var& q, const Var& k, const Var& v) {
  const AttnDims a = attn_dims("attention", q, k, v);
  const int64_t B = a.B, T = a.T, H = a.H, K = a.K, D = a.D, G = a.G;
  const float scale = float(1.0 / std::sqrt(double(D)));
  Tensor o = Tensor::empty(q.shape());
  Tensor lse = Tensor::empty(Shape{B, H, T});
  const float* Q = q.value().data();
  const float* Kp = k.value().data();
  const float* Vp = v.value().data();
  const int64_t qs = H * D, ks = K * D;  // row strides over t
  // attention_forward
#pragma omp parallel
  {
    const size_t nDT = size_t(D * T);
    std::vector<float> Kt(nDT), sc(static_cast<size_t>(kKeyBlock)), acc(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H, h = bh % H, kv = h / G;
      const float* kb = Kp + b * T * ks + kv * D;
      const float* vb = Vp + b * T * ks + kv * D;
      transpose_rows(kb, ks, T, D, Kt.data());
      for (int64_t t = 0; t < T; ++t) {
        const float* qt = Q + (b * T + t) * qs + h * D;
        float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
        for (int64_t d = 0; d < D; ++d) acc[size_t(d)] = 0.0f;
        for (int64_t j0 = 0; j0 <= t; j0 += kKeyBlock) {
          const int64_t n = std::min(t + 1, j0 + kKeyBlock) - j0;
          score_row(qt, Kt.data(), T, D, j0, n, scale, sc.data());
          float bm = sc[0];
          for (int64_t jj = 1; jj < n; ++jj) bm = std::max(bm, sc[size_t(jj)]);
          const float mnew = std::max(m, bm);
          const float corr = std::exp(m - mnew);  // 0 on the first block (m = -inf)
          l *= corr;
          #pragma omp simd
          for (int64_t d = 0; d < D; ++d) acc[size_t(d)] *= corr;
          for (int64_t jj = 0; jj < n; ++jj) {
            const float p = std::exp(sc[size_t(jj)] - mnew);
            l += p;
            const float* vr = vb + (j0 + jj) * ks;
            #pragma omp simd
            for (int64_t d = 0; d < D; ++d) acc[size_t(d)] += p * vr[d];
          }
          m = mnew;
        }
        float* ot = o.data() + (b * T + t) * qs + h * D;
        const float inv = 1.0f / l;
        for (int64_t d = 0; d < D; ++d) ot[d] = acc[size_t(d)] * inv;
        lse[(b * H + h) * T + t] = m + std::log(l);
      }
    }
  }
  Var out = make_output(o, {&q, &k, &v});
  if (!out.requires_grad()) return out;
  // attention_backward reads q, k, v (values), the output o, the saved lse [B, H, T] and dO.
  //   p = exp(s - lse); dv_j += p_j dO; dp_j = dO . v_j; ds_j = p_j (dp_j - dO . o);
  //   dq += scale sum_j ds_j k_j; dk_j += scale ds_j q.
  tape().record([q = q, k = k, v = v, out, lse, a, scale]() mutable {
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
      std::vector<float> Kt(nDT), Vt(nDT), p(nT), ds(nT), dq(nD);
#pragma omp for schedule(dynamic, 1)
      for (int64_t bh = 0; bh < B * H; ++bh) {
        const int64_t b = bh / H, h = bh % H, kv = h / G;
        const float* kb = Kp + b * T * ks + kv * D;
        const float* vb = Vp + b * T * ks + kv * D;
        transpose_rows(kb, ks, T, D, Kt.data());
        transpose_rows(vb, ks, T, D, Vt.data());
        float* dkh = want_kv ? dkp.data() + bh * T * D : nullptr;
        float* dvh = want_kv ? dvp.data() + bh * T * D : nullptr;
        for (int64_t t = 0; t < T; ++t) {
          const float* qt = Q + (b * T + t) * qs + h * D;
          const float* got = dO + (b * T + t) * qs + h * D;
          const float* ot = O + (b * T + t) * qs + h * D;
          const float L = lse[(b * H + h) * T + t];
          const int64_t n = t + 1;
          float Dt = 0.0f;
          for (int64_t d = 0; d < D; ++d) Dt += got[d] * ot[d];
          score_row(qt, Kt.data(), T, D, 0, n, scale, p.data());
          for (int64_t j = 0; j < n; ++j) p[size_t(j)] = std::exp(p[size_t(j)] - L);
          // dp_j = dO . v_j, vectorised over j with the transposed values.
          for (int64_t j = 0; j < n; ++j) ds[size_t(j)] = 0.0f;
          for (int64_t d = 0; d < D; ++d) {
            const float g = got[d];
            const float* vr = Vt.data() + d * T;
            #pragma omp simd
            for (int64_t j = 0; j < n; ++j) ds[size_t(j)] += g * vr[j];
          }
          #pragma omp simd
          for (int64_t j = 0; j < n; ++j) ds[size_t(j)] = p[size_t(j)] * (ds[size_t(j)] - Dt);
          if (dQ) {
            for (int64_t d = 0; d < D; ++d) dq[size_t(d)] = 0.0f;
            for (int64_t j = 0; j < n; ++j) {
              const float w = ds[size_t(j)];
              const float* kr = kb + j * ks;
              #pragma omp simd
              for (int64_t d = 0; d < D; ++d) dq[size_t(d)] += w * kr[d];
            }
            float* dqt = dQ + (b * T + t) * qs + h * D;
            #pragma omp simd
            for (int64_t d = 0; d < D; ++d) dqt[d] += scale * dq[size_t(d)];
          }
          if (dkh) {
            for (int64_t j = 0; j < n; ++j) {
              const float wk = scale * ds[size_t(j)], wv = p[size_t(j)];
              float* dk = dkh + j * D;
              float* dv = dvh + j * D;
              #pragma omp simd
              for (int64_t d = 0; d < D; ++d) {
                dk[d] += wk * qt[d];
                dv[d] += wv * got[d];
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
  });
  return out;
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
