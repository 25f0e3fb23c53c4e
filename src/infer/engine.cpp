// The packed prefill / decode forward (see engine.h for the math and the buffers).
#include "infer/engine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "core/rope.h"  // the training forward's cos/sin and rotation
#include "core/threads.h"
#include "core/vmath.h"  // the row math the training ops share
#include "kernels/attention_kv8.h"
#include "kernels/qgemm.h"

namespace razor {

namespace {

// The part [b, e) of [0, total) thread th of nt owns.
inline void share(int64_t total, int th, int nt, int64_t& b, int64_t& e) {
  b = total * th / nt;
  e = total * (th + 1) / nt;
}

inline void barrier(int nt) {
  if (nt > 1) {
#pragma omp barrier
  }
}

// x[i] += h[i], i < n: the residual add.
inline void add_into(float* x, const float* h, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] += h[i];
}

}  // namespace

Engine::Engine(const PackedModel& m, int64_t max_context, int64_t chunk) : m_(m) {
  const ModelConfig& c = m.cfg;
  C_ = c.hidden_size, H_ = c.num_attention_heads, K_ = c.num_key_value_heads, D_ = c.head_dim;
  F_ = c.intermediate_size, V_ = c.vocab_size;
  G_ = m.embed.desc.G;
  RZ_CHECK(max_context >= 0 && chunk >= 1, "engine: max_context %lld and chunk %lld must be positive",
           (long long)max_context, (long long)chunk);
  max_ctx_ = max_context == 0 ? c.max_position_embeddings : max_context;
  RZ_CHECK(max_ctx_ <= c.max_position_embeddings,
           "context of %lld tokens exceeds the model's max_position_embeddings %lld", (long long)max_ctx_,
           (long long)c.max_position_embeddings);
  for (int64_t w : {C_, H_ * D_, F_})
    RZ_CHECK(w % G_ == 0, "engine: a linear input of width %lld is not divisible by the group size %d",
             (long long)w, G_);
  chunk_ = std::min(chunk, max_ctx_);
  // The tier's decode copies of the matrices it multiplies (AVX2: DecodeTiles); an untied
  // embedding is only looked up by row.
  for (const auto& e : m.matrices())
    if (e.second != &m.embed || c.tie_word_embeddings) qgemm_prepare(*e.second);
  if (!m.layers.empty())
    for (const PackedMatrix* w : {&m.layers[0].q, &m.layers[0].k, &m.layers[0].v, &m.layers[0].o, &m.layers[0].gate,
                                  &m.layers[0].up, &m.layers[0].down})
      layer_macs_ += w->desc.d_out * w->desc.d_in;
  const RopeTable rt = RopeTable::make(max_ctx_, c.rope_inv_freq());
  rope_cos_ = rt.cos;
  rope_sin_ = rt.sin;
  const int64_t n = chunk_, widest = std::max({C_, H_ * D_, F_});
  x_.resize(size_t(n * C_));
  h_.resize(size_t(n * C_));
  q_.resize(size_t(n * H_ * D_));
  k_.resize(size_t(n * K_ * D_));
  v_.resize(size_t(n * K_ * D_));
  att_.resize(size_t(n * H_ * D_));
  gate_.resize(size_t(n * F_));
  up_.resize(size_t(n * F_));
  qx_.resize(size_t(n * widest));
  sx_.resize(size_t(n * widest / G_));
  logits_.resize(size_t(V_));
  RZ_CHECK(H_ % K_ == 0 && H_ / K_ <= 64, "engine: %lld query heads per KV head (at most 64, a whole number)",
           (long long)(H_ / K_));
  // Per thread: HpK score rows [max_ctx] and one fp32 K/V row [D].
  score_stride_ = (H_ / K_) * max_ctx_ + D_;
  const size_t L = size_t(c.num_hidden_layers), kvn = L * size_t(max_ctx_ * K_);
  kq_.resize(kvn * size_t(D_));
  vq_.resize(kvn * size_t(D_));
  ks_.resize(kvn);
  vs_.resize(kvn);
  nrm_.resize(size_t(kMultiMaxTokens * widest));
  sumx_.resize(size_t(n * widest / G_));
  grow_thread_scratch();
}

void Engine::grow_thread_scratch() {
  score_threads_ = std::max(score_threads_, std::max(1, num_threads()));
  scores_.resize(size_t(score_threads_) * size_t(score_stride_));
  xp_.resize(size_t(score_threads_) * size_t(kMultiMaxTokens * C_));
}

// The steps prefill (run_chunk) and decode (decode_thread) share: one definition each, so the
// two paths compute the same bits by construction.

void Engine::embed_rows(const int32_t* ids, int64_t n, float* x) const {
  for (int64_t t = 0; t < n; ++t) dequantize_row(m_.embed, ids[t], x + t * C_);
}

void Engine::rope_and_cache(const PackedLayer& ly, int l, int64_t t, int64_t kh, int64_t p0) {
  const float eps = float(m_.cfg.rms_norm_eps);
  const bool qk_norm = m_.cfg.qk_norm();
  const int64_t half = D_ / 2, HpK = H_ / K_;
  const float* cs = rope_cos_.data() + (p0 + t) * half;
  const float* sn = rope_sin_.data() + (p0 + t) * half;
  for (int64_t hh = kh * HpK; hh < (kh + 1) * HpK; ++hh) {
    float* q = &q_[size_t((t * H_ + hh) * D_)];
    if (qk_norm) rmsnorm_row(q, ly.q_norm.data(), D_, eps, q);
    rope_row(q, q, cs, sn, D_);
  }
  float* k = &k_[size_t((t * K_ + kh) * D_)];
  if (qk_norm) rmsnorm_row(k, ly.k_norm.data(), D_, eps, k);
  rope_row(k, k, cs, sn, D_);
  // KV8: one scale per (token, kv head) over D (A8 with G = D). Cache rows are
  // [layer][kv head][position]: attention streams one head's rows contiguously.
  const size_t r = (size_t(l) * size_t(K_) + size_t(kh)) * size_t(max_ctx_) + size_t(p0 + t);
  quantize_a8_serial(k, 1, D_, int(D_), &kq_[r * size_t(D_)], &ks_[r]);
  quantize_a8_serial(&v_[size_t((t * K_ + kh) * D_)], 1, D_, int(D_), &vq_[r * size_t(D_)], &vs_[r]);
}

void Engine::linear(const PackedMatrix& W, const float* x, int64_t n, float* y) {
  const int64_t d_in = W.desc.d_in;
  RZ_ASSERT(W.desc.G == G_);
  quantize_a8(x, n, d_in, G_, qx_.data(), sx_.data());
  qgemm(W, qx_.data(), sx_.data(), n, y);
}

const float* Engine::forward(const int32_t* ids, int64_t n, bool all_logits) {
  RZ_CHECK(n >= 1, "engine: no tokens to run");
  RZ_CHECK(pos_ + n <= max_ctx_,
           "context of %lld tokens exceeds the limit of %lld (max_position_embeddings %lld); shorten the prompt or "
           "the generation",
           (long long)(pos_ + n), (long long)max_ctx_, (long long)m_.cfg.max_position_embeddings);
  for (int64_t i = 0; i < n; ++i)
    RZ_CHECK(ids[i] >= 0 && ids[i] < V_, "engine: token id %d is outside the vocabulary [0, %lld)", ids[i],
             (long long)V_);
  if (all_logits && all_logits_.size() < size_t(n * V_)) all_logits_.resize(size_t(n * V_));
  for (int64_t s = 0; s < n; s += chunk_) {
    const int64_t m = std::min(chunk_, n - s);
    const bool last = s + m == n;
    run_chunk(ids + s, m, all_logits ? all_logits_.data() + s * V_ : (last ? logits_.data() : nullptr), all_logits);
  }
  return all_logits ? all_logits_.data() : logits_.data();
}

void Engine::attention(int layer, int64_t n, int64_t p0) {
  const int64_t D = D_;
  const float scale = float(1.0 / std::sqrt(double(D)));
  const size_t lb = size_t(layer) * size_t(K_ * max_ctx_);  // first row of the layer
  if (n >= 8) {  // prefill: kernels/attention_kv8.h (cache rows: position stride 1, head stride max_ctx)
    attention_kv8(AttnKv8{q_.data(), kq_.data() + lb * size_t(D), vq_.data() + lb * size_t(D), ks_.data() + lb,
                          vs_.data() + lb, 1, max_ctx_, n, p0, H_, K_, D, scale, att_.data()});
    return;
  }

  const int nt = std::min(score_threads_, num_threads());
  // One work item = one token and one KV head with its HpK query heads: each cached K/V row
  // is read (and converted to fp32) once for all of them. The loops vectorise, so a region
  // pays for its fork/join from ~64 cached tokens at decode.
  const int64_t work = n * K_;
#pragma omp parallel for schedule(static) num_threads(nt) if (work > 1 && (p0 + n) * D * n * H_ > (int64_t(1) << 17))
  for (int64_t w = 0; w < work; ++w)
    attend(layer, w / K_, w % K_, p0, scores_.data() + size_t(omp_get_thread_num()) * size_t(score_stride_));
}

void Engine::attend(int layer, int64_t t, int64_t kh, int64_t p0, float* sc) {
  const int64_t HpK = H_ / K_, D = D_;
  const size_t hb = size_t(layer) * size_t(K_ * max_ctx_) + size_t(kh * max_ctx_);  // row of position 0
  attention_kv8_decode(AttnKv8Decode{q_.data() + (t * H_ + kh * HpK) * D, kq_.data() + hb * size_t(D),
                                     vq_.data() + hb * size_t(D), ks_.data() + hb, vs_.data() + hb, HpK, D, p0 + t + 1,
                                     float(1.0 / std::sqrt(double(D))), sc, max_ctx_,
                                     att_.data() + (t * H_ + kh * HpK) * D});
}

void Engine::run_chunk(const int32_t* ids, int64_t n, float* logits_out, bool all_logits) {
  const float eps = float(m_.cfg.rms_norm_eps);
  const int64_t p0 = pos_;
  if (score_threads_ < num_threads()) grow_thread_scratch();  // the thread count grew since construction (rare)
  if (one_region_ && n <= kMultiMaxTokens) return run_decode(ids, n, logits_out, all_logits);

  embed_rows(ids, n, x_.data());

  for (int l = 0; l < int(m_.layers.size()); ++l) {
    const PackedLayer& ly = m_.layers[size_t(l)];
    for (int64_t t = 0; t < n; ++t) rmsnorm_row(&x_[size_t(t * C_)], ly.attn_norm.data(), C_, eps, &h_[size_t(t * C_)]);
    // q, k, v from one A8 quantization of h (they share the input).
    quantize_a8(h_.data(), n, C_, G_, qx_.data(), sx_.data());
    {
      const PackedMatrix* W[3] = {&ly.q, &ly.k, &ly.v};
      float* Y[3] = {q_.data(), k_.data(), v_.data()};
      qgemm_multi(W, Y, 3, qx_.data(), sx_.data(), n);
    }
    for (int64_t t = 0; t < n; ++t)
      for (int64_t kh = 0; kh < K_; ++kh) rope_and_cache(ly, l, t, kh, p0);
    attention(l, n, p0);
    linear(ly.o, att_.data(), n, h_.data());
    add_into(x_.data(), h_.data(), n * C_);
    for (int64_t t = 0; t < n; ++t) rmsnorm_row(&x_[size_t(t * C_)], ly.mlp_norm.data(), C_, eps, &h_[size_t(t * C_)]);
    quantize_a8(h_.data(), n, C_, G_, qx_.data(), sx_.data());
    {
      const PackedMatrix* W[2] = {&ly.gate, &ly.up};
      float* Y[2] = {gate_.data(), up_.data()};
      qgemm_multi(W, Y, 2, qx_.data(), sx_.data(), n);
    }
    swiglu_row(gate_.data(), up_.data(), gate_.data(), n * F_);
    linear(ly.down, gate_.data(), n, h_.data());
    add_into(x_.data(), h_.data(), n * C_);
  }
  pos_ += n;
  if (!logits_out) return;
  // Final norm and lm_head: every row with all_logits, else only the last.
  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  for (int64_t t = first; t < n; ++t)
    rmsnorm_row(&x_[size_t(t * C_)], m_.final_norm.data(), C_, eps, &h_[size_t((t - first) * C_)]);
  linear(m_.head(), h_.data(), rows, logits_out);
}

int Engine::decode_threads() const {
  int nt = std::min(score_threads_, num_threads());
  if (decode_min_macs_ > 0) nt = int(std::max<int64_t>(1, std::min<int64_t>(nt, layer_macs_ / decode_min_macs_)));
  return nt;
}

void Engine::run_decode(const int32_t* ids, int64_t n, float* logits_out, bool all_logits) {
  const int full = decode_threads();
  // Load adaptation (engine.h): one timed step of each choice, then the faster; the other again
  // after tune_interval_ steps (doubling while the choice stands).
  const bool tuning = tune_on_ && full > 1;
  int choice = 0;
  if (tuning) {
    if (!tune_warm_) {
      choice = 1;  // the untimed warm-up step on one thread: cheap even on a loaded machine
    } else if (tune_n_[0] == 0 || tune_n_[1] == 0) {
      choice = tune_n_[0] == 0 ? 0 : 1;
    } else if (++tune_wait_ >= tune_interval_) {
      choice = 1 - tune_best_;
      tune_wait_ = 0;
    } else {
      choice = tune_best_;
    }
  }
  const int nt = choice == 1 ? 1 : full;
  const double t0 = omp_get_wtime();
  if (nt <= 1) {
    decode_thread(ids, n, logits_out, all_logits, 0, 1);
  } else {
#pragma omp parallel num_threads(nt)
    decode_thread(ids, n, logits_out, all_logits, omp_get_thread_num(), omp_get_num_threads());
  }
  if (tuning && !tune_warm_) {
    tune_warm_ = true;  // the first step (cold caches, page faults) is not timed
  } else if (tuning) {
    const double per_token = (omp_get_wtime() - t0) / double(n);
    double& avg = tune_sec_[choice];
    avg = tune_n_[choice] == 0 ? per_token : 0.75 * avg + 0.25 * per_token;
    ++tune_n_[choice];
    const int best = tune_sec_[1] < tune_sec_[0] ? 1 : 0;
    if (tune_n_[0] > 0 && tune_n_[1] > 0) {
      if (choice != tune_best_)  // a probe: the interval doubles if it confirmed the choice
        tune_interval_ = best == tune_best_ ? std::min(2 * tune_interval_, kProbeMax) : kProbeFirst;
      tune_best_ = best;
    }
  }
  pos_ += n;
}

// One thread's part of a decode step (see engine.h). Every value is computed by exactly the
// operations of run_chunk, so the logits equal the general path's bit for bit. Shared buffers
// are written in disjoint parts (rows, groups, KV heads) and read only after a barrier.
void Engine::decode_thread(const int32_t* ids, int64_t n, float* logits_out, bool all_logits, int th, int nt) {
  const float eps = float(m_.cfg.rms_norm_eps);
  const int64_t p0 = pos_;
  float* x = xp_.data() + size_t(th) * size_t(kMultiMaxTokens * C_);  // private residual stream
  float* sc = scores_.data() + size_t(th) * size_t(score_stride_);

  // A8 codes, scales and code sums of this thread's groups of y [rows, d].
  auto quant_part = [&](const float* y, int64_t rows, int64_t d) {
    const int64_t ng = d / G_;
    int64_t g0, g1;
    share(ng, th, nt, g0, g1);
    if (g0 == g1) return;
    for (int64_t t = 0; t < rows; ++t) {
      const size_t o = size_t(t * d + g0 * G_);
      quantize_a8_serial(y + o, 1, (g1 - g0) * G_, G_, qx_.data() + o, sx_.data() + t * ng + g0);
      qgemm_group_sums(qx_.data() + o, 1, (g1 - g0) * G_, G_, sumx_.data() + t * ng + g0);
    }
  };
  // RMSNorm of the private x rows [first, first + rows) (each thread reduces the whole row, in
  // the same order) into its own groups of nrm_ rows [0, rows), then their A8.
  auto norm_quant = [&](const float* w, int64_t first, int64_t rows) {
    int64_t g0, g1;
    share(C_ / G_, th, nt, g0, g1);
    for (int64_t t = 0; t < rows; ++t) rmsnorm_row(x + (first + t) * C_, w, C_, eps, nrm_.data() + t * C_, g0 * G_, g1 * G_);
    quant_part(nrm_.data(), rows, C_);
  };
  auto gemv = [&](const PackedMatrix* const* W, float* const* Y, int count, int64_t rows) {
    qgemm_multi_part(W, Y, count, qx_.data(), sx_.data(), sumx_.data(), rows, th, nt);
  };
  auto gemv1 = [&](const PackedMatrix& W, float* y, int64_t rows) {
    const PackedMatrix* w = &W;
    gemv(&w, &y, 1, rows);
  };

  embed_rows(ids, n, x);

  for (int l = 0; l < int(m_.layers.size()); ++l) {
    const PackedLayer& ly = m_.layers[size_t(l)];
    norm_quant(ly.attn_norm.data(), 0, n);
    barrier(nt);
    {
      const PackedMatrix* W[3] = {&ly.q, &ly.k, &ly.v};
      float* Y[3] = {q_.data(), k_.data(), v_.data()};
      gemv(W, Y, 3, n);
    }
    barrier(nt);
    // Per KV head: q/k norm and RoPE of its heads, KV8 into the cache, then attention.
    int64_t k0, k1;
    share(K_, th, nt, k0, k1);
    for (int64_t kh = k0; kh < k1; ++kh) {
      for (int64_t t = 0; t < n; ++t) rope_and_cache(ly, l, t, kh, p0);
      for (int64_t t = 0; t < n; ++t) attend(l, t, kh, p0, sc);
    }
    barrier(nt);
    quant_part(att_.data(), n, H_ * D_);
    barrier(nt);
    gemv1(ly.o, h_.data(), n);
    barrier(nt);
    add_into(x, h_.data(), n * C_);
    norm_quant(ly.mlp_norm.data(), 0, n);
    barrier(nt);
    {
      const PackedMatrix* W[2] = {&ly.gate, &ly.up};
      float* Y[2] = {gate_.data(), up_.data()};
      gemv(W, Y, 2, n);
    }
    barrier(nt);
    {
      int64_t g0, g1;
      share(F_ / G_, th, nt, g0, g1);
      for (int64_t t = 0; t < n; ++t)
        swiglu_row(gate_.data() + t * F_ + g0 * G_, up_.data() + t * F_ + g0 * G_, gate_.data() + t * F_ + g0 * G_,
                   (g1 - g0) * G_);
      quant_part(gate_.data(), n, F_);
    }
    barrier(nt);
    gemv1(ly.down, h_.data(), n);
    barrier(nt);
    add_into(x, h_.data(), n * C_);
  }
  if (!logits_out) return;
  // Final norm and lm_head: every row with all_logits, else only the last.
  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  norm_quant(m_.final_norm.data(), first, rows);
  barrier(nt);
  gemv1(m_.head(), logits_out, rows);
}

std::vector<float> packed_logits(const PackedModel& m, const std::vector<int32_t>& ids) {
  Engine e(m, int64_t(ids.size()), 256);
  const float* z = e.forward(ids.data(), int64_t(ids.size()), true);
  return std::vector<float>(z, z + ids.size() * size_t(m.cfg.vocab_size));
}

}  // namespace razor
