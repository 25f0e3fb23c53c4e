// Causal grouped-query attention.
//  attention(): fused, blocked. Per (batch, KV head) and block of kQBlock queries, the G query
//    heads that share the KV head are stacked ([G * kQBlock, D], head-major), the scores over
//    the keys the block sees are one GEMM ([G * kQBlock, T] at most: no [T, T] matrix is
//    formed), each row gets a two-pass softmax, and P V is a second GEMM; it saves only the
//    per-row logsumexp [B, H, T]. The backward recomputes each block's probabilities from q, k
//    and the saved logsumexp (p = exp(s - lse)) with the same score GEMM, and forms dQ, dK and
//    dV with GEMMs; a task owns one (batch, KV head) and adds its blocks into dK / dV in order
//    (deterministic, no per-head partials). OpenMP over (batch, KV head[, query block]); the
//    GEMMs inside run on the calling thread (kernels/gemm.h), so the math is the tested sgemm's.
//  attention_composed(): the same function from matmul / scale / add(mask) / softmax_lastdim;
//    the reference the tests hold the fused op to.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "autograd/ops_util.h"
#include "kernels/gemm.h"

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

constexpr int64_t kQBlock = 64;  // queries per block: the rows of each score GEMM

}  // namespace

// The backward, beside the forward below it (same stem).
static void attention_backward(Var& q, Var& k, Var& v, Var& out, const Tensor& lse, const AttnDims& a, float scale);

// Rows [t0, t0 + nq) of the G heads h0 .. h0 + G - 1 of X [B, T, H, D] (batch b) into
// dst [G * nq, D], head-major; scatter_heads writes such a block back (add: X += instead of =).
static void gather_heads(const float* X, int64_t T, int64_t H, int64_t D, int64_t b, int64_t h0, int64_t G, int64_t t0,
                  int64_t nq, float* dst) {
  for (int64_t g = 0; g < G; ++g)
    for (int64_t i = 0; i < nq; ++i)
      std::memcpy(dst + (g * nq + i) * D, X + ((b * T + t0 + i) * H + h0 + g) * D, size_t(D) * sizeof(float));
}
static void scatter_heads(const float* src, int64_t T, int64_t H, int64_t D, int64_t b, int64_t h0, int64_t G, int64_t t0,
                   int64_t nq, float* X, bool add) {
  for (int64_t g = 0; g < G; ++g)
    for (int64_t i = 0; i < nq; ++i) {
      float* x = X + ((b * T + t0 + i) * H + h0 + g) * D;
      const float* r = src + (g * nq + i) * D;
      if (add) {
        RZ_SIMD
        for (int64_t d = 0; d < D; ++d) x[d] += r[d];
      } else {
        std::memcpy(x, r, size_t(D) * sizeof(float));
      }
    }
}

// The forward of both attention() (Tq = Tk) and attention_cached() (the queries are the last Tq
// of Tk positions): query t sees keys 0 .. Tk - Tq + t. Per (batch, KV head) and block of
// kQBlock queries, the G heads' queries are stacked, S = scale Q K^T over the keys the block's
// last query sees is one GEMM, each row gets an exact two-pass softmax (max, then exp and sum),
// and O = P V is a second GEMM. Every score is the same fused chain over d whatever block or
// caller computes it, and the keys a row does not see enter P V as exact zeros. Q [B, Tq, H, D],
// Kp, Vp [B, Tk, K, D] -> O [B, Tq, H, D] and, when lse is not null, lse [B, H, Tq].
static void attention_forward(const float* Q, const float* Kp, const float* Vp, int64_t B, int64_t Tq, int64_t Tk,
                              int64_t H, int64_t K, int64_t D, float* O, float* lse) {
  const int64_t G = H / K, P = Tk - Tq;
  const float scale = float(1.0 / std::sqrt(double(D)));
  const int64_t ks = K * D;  // key row stride over t
  const int64_t nblk = (Tq + kQBlock - 1) / kQBlock, QB = std::min(kQBlock, Tq);
#pragma omp parallel
  {
    std::vector<float> s(size_t(G * QB * Tk)), qg(size_t(G * QB * D)), og(qg.size());
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < B * K * nblk; ++task) {
      // Blocks with the most keys first, so the dynamic schedule ends evenly.
      const int64_t bk = task % (B * K), t0 = (nblk - 1 - task / (B * K)) * kQBlock;
      const int64_t b = bk / K, kv = bk % K, h0 = kv * G;
      const int64_t nq = std::min(kQBlock, Tq - t0), nk = P + t0 + nq;  // keys the block sees
      const float* kb = Kp + b * Tk * ks + kv * D;
      const float* vb = Vp + b * Tk * ks + kv * D;
      gather_heads(Q, Tq, H, D, b, h0, G, t0, nq, qg.data());
      sgemm(false, true, G * nq, nk, D, scale, qg.data(), D, kb, ks, 0.0f, s.data(), nk);
      for (int64_t r = 0; r < G * nq; ++r) {
        const int64_t g = r / nq, i = r % nq;
        float* si = s.data() + r * nk;
        const int64_t n = P + t0 + i + 1;  // keys this query sees
        const float m = row_max(si, n);
        const double l = exp_shifted_sum(si, m, si, n);
        const float inv = float(1.0 / l);
        RZ_SIMD
        for (int64_t j = 0; j < n; ++j) si[j] *= inv;
        for (int64_t j = n; j < nk; ++j) si[j] = 0.0f;
        if (lse) lse[(b * H + h0 + g) * Tq + t0 + i] = m + float(std::log(l));
      }
      sgemm(false, false, G * nq, D, nk, 1.0f, s.data(), nk, vb, ks, 0.0f, og.data(), D);
      scatter_heads(og.data(), Tq, H, D, b, h0, G, t0, nq, O, false);
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
// Per (batch, KV head) and block of kQBlock queries (the G heads stacked), with the keys
// [0, nk) the block sees:
//   P = exp(scale Q K^T - lse) (the forward's score GEMM, so the same scores), dP = dO V^T,
//   dS = P (dP - rowsum(dO o)), dQ += scale dS K, dK += scale dS^T Q, dV += P^T dO:
// five GEMMs. The task owns its (batch, KV head), so dK / dV are added in place, block by block.
static void attention_backward(Var& q, Var& k, Var& v, Var& out, const Tensor& lse, const AttnDims& a, float scale) {
  const float* dO = detail::grad_or_null(out);
  if (!dO) return;
  const int64_t B = a.B, T = a.T, H = a.H, K = a.K, D = a.D, G = a.G;
  const int64_t qs = H * D, ks = K * D;
  const float* Q = q.value().data();
  const float* Kp = k.value().data();
  const float* Vp = v.value().data();
  const float* O = out.value().data();
  float* dQ = q.requires_grad() ? q.grad().data() : nullptr;
  float* dK = k.requires_grad() ? k.grad().data() : nullptr;
  float* dV = v.requires_grad() ? v.grad().data() : nullptr;
  const int64_t QB = std::min(kQBlock, T);
#pragma omp parallel
  {
    const size_t nS = size_t(G * QB * T), nQ = size_t(G * QB * D);
    std::vector<float> p(nS), ds(nS), qg(nQ), gg(nQ), dqg(nQ);
#pragma omp for schedule(dynamic, 1)
    for (int64_t bk = 0; bk < B * K; ++bk) {
      const int64_t b = bk / K, kv = bk % K, h0 = kv * G;
      const float* kb = Kp + b * T * ks + kv * D;
      const float* vb = Vp + b * T * ks + kv * D;
      for (int64_t t0 = 0; t0 < T; t0 += kQBlock) {
        const int64_t nq = std::min(kQBlock, T - t0), nk = t0 + nq, M = G * nq;
        gather_heads(Q, T, H, D, b, h0, G, t0, nq, qg.data());
        gather_heads(dO, T, H, D, b, h0, G, t0, nq, gg.data());
        sgemm(false, true, M, nk, D, scale, qg.data(), D, kb, ks, 0.0f, p.data(), nk);
        sgemm(false, true, M, nk, D, 1.0f, gg.data(), D, vb, ks, 0.0f, ds.data(), nk);  // dP
        for (int64_t r = 0; r < M; ++r) {
          const int64_t g = r / nq, i = r % nq, t = t0 + i, n = t + 1;
          const float* got = gg.data() + r * D;
          const float* ot = O + (b * T + t) * qs + (h0 + g) * D;
          const float L = lse[(b * H + h0 + g) * T + t];
          float* pi = p.data() + r * nk;
          float* dsi = ds.data() + r * nk;
          float Dt = 0.0f;
          for (int64_t d = 0; d < D; ++d) Dt += got[d] * ot[d];
          RZ_SIMD
          for (int64_t j = 0; j < n; ++j) pi[j] -= L;
          exp_inplace(pi, n);
          RZ_SIMD
          for (int64_t j = 0; j < n; ++j) dsi[j] = pi[j] * (dsi[j] - Dt);
          for (int64_t j = n; j < nk; ++j) pi[j] = dsi[j] = 0.0f;  // causal: no contribution
        }
        if (dQ) {
          sgemm(false, false, M, D, nk, scale, ds.data(), nk, kb, ks, 0.0f, dqg.data(), D);
          scatter_heads(dqg.data(), T, H, D, b, h0, G, t0, nq, dQ, true);
        }
        if (dK) sgemm(true, false, nk, D, M, scale, ds.data(), nk, qg.data(), D, 1.0f, dK + b * T * ks + kv * D, ks);
        if (dV) sgemm(true, false, nk, D, M, 1.0f, p.data(), nk, gg.data(), D, 1.0f, dV + b * T * ks + kv * D, ks);
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
