// The packed inference forward: prefill (many tokens) and decode (one token) on a PackedModel
// with an int8 KV cache (NUMERICS.md §4, §10).
//
// Per layer: RMSNorm -> A8 (kernels' quantize_a8 with the model's G; the QAT forward's
// act_quant gives identical codes, tests/test_infer.cpp holds them equal) -> q/k/v qgemm ->
// qwen3 per-head q/k RMSNorm -> RoPE (rotate-half, HF) -> KV8: K and V stored as int8 with one
// fp32 scale per (token, kv head) over head_dim, exactly the training KV8 -> causal GQA
// attention dequantizing K/V on the fly -> A8 -> o_proj -> residual -> RMSNorm -> A8 ->
// gate/up qgemm -> SwiGLU -> A8 -> down -> residual; final RMSNorm -> A8 -> lm_head qgemm.
// The embedding row is dequantized from its int4 codes. Q, scores, probabilities, norms and
// the residual stream stay fp32.
//
// All scratch (activations for a chunk of tokens, the KV cache for max_context tokens, logits)
// is allocated when the Engine is built: decoding allocates nothing per token. Prompts longer
// than the chunk are prefilled chunk by chunk. Threads: a decode step (at most kMultiMaxTokens
// tokens) is one OpenMP parallel region (run_decode): each thread takes a contiguous share of
// every matrix's rows, of the activation groups (norm, SwiGLU, A8) and of the KV heads
// (q/k norm, RoPE, KV8 store, attention), with a barrier between dependent steps (9 per
// layer) and no fork/join per kernel. Prefill chunks use the kernels' own regions (GEMM tiles)
// plus one parallel loop over (token, KV head) in attention.
// Deliberately not here: sampling and text (infer/generate.h), file IO (infer/pack.h).
#pragma once
#include <cstdint>
#include <vector>

#include "infer/pack.h"

namespace razor {

class Engine {
 public:
  // max_context: tokens the KV cache holds (0: max_position_embeddings); a value above
  // max_position_embeddings is an error. chunk: tokens per prefill step (scratch size).
  explicit Engine(const PackedModel& m, int64_t max_context = 0, int64_t chunk = 256);

  // Appends n tokens at positions pos()..pos()+n-1 and returns the logits of the last one [V].
  // With all_logits, returns logits of every token [n, V] (a buffer sized on first use).
  // Throws when the context would exceed max_context() or an id is outside the vocabulary.
  const float* forward(const int32_t* ids, int64_t n, bool all_logits = false);
  const float* decode(int32_t id) { return forward(&id, 1); }
  void reset() { pos_ = 0; }
  // Steps of at most kMultiMaxTokens tokens (decode) run in one parallel region per step
  // (run_decode); off: the general path, one region per kernel call (kept as the reference the
  // tests hold the one-region path equal to, bit for bit).
  void set_one_region_decode(bool on) { one_region_ = on; }
  // Threads a decode step uses: the thread count, capped so that each thread gets at least
  // kDecodeMacsPerThread multiply-adds of a layer's matrices between the layer's 9 barriers
  // (below that the barriers cost more than the split saves: the tiny shape, 0.8 M per layer,
  // decodes 22-34% faster on one thread than on two on the 2-core Zen 3; the Qwen3-0.6B shape,
  // 15.7 M, 1.6x faster on two). set_decode_min_macs(0) lifts the cap (tests).
  static constexpr int64_t kDecodeMacsPerThread = int64_t(2) << 20;
  int decode_threads() const;
  void set_decode_min_macs(int64_t macs) { decode_min_macs_ = macs; }
  // Load adaptation (on by default): decode steps are timed, and while other jobs hold the cores
  // (a descheduled thread stalls every barrier: 0.6B decode fell from ~100 to 1 tok/s on two
  // threads with one core busy, 43 tok/s on one) the steps run on one thread. After an untimed
  // warm-up step (on one thread), one step of each count is timed; then the faster per token (a
  // moving average) is used, and the other is timed again after kProbeFirst steps, the interval
  // doubling (up to kProbeMax) while the choice stands and starting over when it changes.
  // Results do not depend on it (decode is bit-identical at any thread count). Off: always
  // decode_threads().
  static constexpr int64_t kProbeFirst = 16, kProbeMax = 1024;
  void set_decode_tuning(bool on) { tune_on_ = on; }
  int64_t pos() const { return pos_; }
  int64_t max_context() const { return max_ctx_; }
  const PackedModel& model() const { return m_; }
  // Bytes of the KV cache (codes + scales) for max_context tokens.
  int64_t kv_bytes() const { return int64_t(kq_.size() + vq_.size() + 4 * (ks_.size() + vs_.size())); }

 private:
  void run_chunk(const int32_t* ids, int64_t n, float* logits_out, bool all_logits);
  void run_decode(const int32_t* ids, int64_t n, float* logits_out, bool all_logits);
  void decode_thread(const int32_t* ids, int64_t n, float* logits_out, bool all_logits, int th, int nt);
  // Attention of token t (position p0 + t) for KV head kh and its query heads, cache rows of
  // positions <= p0 + t; sc: the calling thread's score scratch.
  // Steps shared by prefill and decode: the embedding rows of ids into x [n, C]; for token t
  // of layer l and KV head kh, q/k RMSNorm (qwen3) and RoPE of its query heads and its key,
  // then its K and V into the KV8 cache.
  void embed_rows(const int32_t* ids, int64_t n, float* x) const;
  void rope_and_cache(const PackedLayer& ly, int l, int64_t t, int64_t kh, int64_t p0);
  void attend(int layer, int64_t t, int64_t kh, int64_t p0, float* sc);
  void grow_thread_scratch();
  void linear(const PackedMatrix& W, const float* x, int64_t n, float* y);  // y [n, d_out]
  void attention(int layer, int64_t n, int64_t p0);

  const PackedModel& m_;
  int64_t max_ctx_, chunk_, pos_ = 0;
  int64_t C_, H_, K_, D_, F_, V_;
  int G_;
  std::vector<float> rope_cos_, rope_sin_;  // [max_ctx, D/2]
  // Scratch for one chunk.
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, logits_;
  std::vector<int8_t> qx_;
  std::vector<float> sx_;
  std::vector<float> scores_;  // [threads, score_stride_]: H/K score rows [max_ctx] + one row [D]
  int64_t score_stride_ = 0;
  int score_threads_ = 0;
  bool one_region_ = true;
  int64_t layer_macs_ = 0;  // multiply-adds of one layer's matrices per token
  int64_t decode_min_macs_ = kDecodeMacsPerThread;
  // Load adaptation: per choice (0: decode_threads(), 1: one thread) the steps timed and a moving
  // average of seconds per token.
  bool tune_on_ = true, tune_warm_ = false;
  int64_t tune_n_[2] = {0, 0}, tune_wait_ = 0, tune_interval_ = kProbeFirst;
  int tune_best_ = 0;
  double tune_sec_[2] = {0.0, 0.0};
  // Decode: each thread's private copy of the residual stream [kMultiMaxTokens, C] (every thread
  // computes it identically, so no barrier is needed around it), a normed-activation buffer
  // written in disjoint group ranges, and the activations' per-group code sums.
  std::vector<float> xp_, nrm_;
  std::vector<int32_t> sumx_;
  std::vector<float> all_logits_;
  // KV cache: codes [L, K, max_ctx, D], scales [L, K, max_ctx] (one head's positions contiguous).
  std::vector<int8_t> kq_, vq_;
  std::vector<float> ks_, vs_;
};

// Logits of every position of ids in one prefill from an empty context ([n, V], row-major).
std::vector<float> packed_logits(const PackedModel& m, const std::vector<int32_t>& ids);

}  // namespace razor
