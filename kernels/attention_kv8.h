// Causal grouped-query attention of a block of query tokens over an int8 KV cache (KV8,
// NUMERICS.md §4: int8 codes + one fp32 scale per (position, kv head)), the inference
// engine's attention written as a kernel: a scalar reference (the definition, the same
// operations as the engine's loop) and AVX-512 and AVX2 tiers for prefill (many query tokens).
//   s_j = (q . k_j) * ks_j * scale  for j <= p (p = p0 + t),  a = softmax(s),
//   o   = (sum_j (a'_j * vs_j) * v_j) / sum_j a'_j,   a'_j = exp(s_j - max s)
// Deliberately not here: RoPE, q/k norms, writing the cache (src/infer/engine.cpp).
#pragma once
#include <cstdint>

namespace razor {

struct AttnKv8 {
  const float* q;   // [n, H, D] queries of tokens at positions p0 .. p0 + n - 1
  // Cache row (position j, kv head h) is row r = j * pos_stride + h * head_stride: codes at
  // k + r * D (positions 0 .. p0 + n - 1 filled), scale at ks[r]. [ctx, Kh, D]: pos_stride Kh,
  // head_stride 1; [Kh, max_ctx, D]: pos_stride 1, head_stride max_ctx.
  const int8_t* k;
  const int8_t* v;
  const float* ks;
  const float* vs;
  int64_t pos_stride, head_stride;
  int64_t n, p0, H, Kh, D;
  float scale;  // 1 / sqrt(D)
  float* out;   // [n, H, D]
};

// Best tier for the active ISA (core/cpu.h): AVX-512, else AVX2 + FMA, when D is 64, 128 or 256;
// else the reference. Threads with OpenMP over kv heads (and query blocks where the tier splits
// them); call from outside a parallel region.
void attention_kv8(const AttnKv8& a);
// The definition, scalar; OpenMP over kv heads (each output is computed by one thread in the
// same order whatever the thread count: bitwise the same at any count).
void attention_kv8_ref(const AttnKv8& a);
// ---- Decode: one query token and one kv head (the engine's per-(token, kv head) work item) ----
struct AttnKv8Decode {
  const float* q;        // [HpK, D]: the query heads of the kv head, one token
  const int8_t* k;       // codes of positions 0 .. npos - 1 of the kv head, row j at k + j * D
  const int8_t* v;
  const float* ks;       // [npos] scales
  const float* vs;
  int64_t HpK, D, npos;
  float scale;           // 1 / sqrt(D)
  float* scores;         // scratch: HpK rows of score_stride (>= npos) floats, then D floats
  int64_t score_stride;
  float* out;            // [HpK, D]
};
// Best tier (AVX-512, else AVX2 + FMA, else NEON, when active and D is 64, 128 or 256; else the
// reference).
// One thread, no allocation: callers split (token, kv head) items across their own threads.
void attention_kv8_decode(const AttnKv8Decode& a);
// The definition: per position the key row converted to fp32 once, each head's dot product in
// 16 lane partial sums (lane l takes i = l mod 16) added pairwise (8, 4, 2, 1); softmax with
// std::exp summed in position order; values accumulated in position order.
void attention_kv8_decode_ref(const AttnKv8Decode& a);
#if defined(__x86_64__)
// AVX-512 decode tier: scores and weighted values bit for bit as the reference's operations;
// the softmax's exp (within 2 ulp) and its sum (16 lanes) differ by fp32 rounding.
void attention_kv8_decode_avx512(const AttnKv8Decode& a);
// AVX2 + FMA decode tier, the same contract on 8-wide vectors (its exp within 2e-7 relative, its
// sum over 8 lanes). Both decode tiers: D must be 64, 128 or 256, HpK <= 64.
void attention_kv8_decode_avx2(const AttnKv8Decode& a);
// The AVX-512 tier (kernels/attention_kv8_avx512.cpp, x86-64 builds only); D must be 64, 128 or 256.
bool attention_kv8_avx512_supported();
void attention_kv8_avx512(const AttnKv8& a);
// The AVX2 + FMA tier (kernels/attention_kv8_avx2.cpp, x86-64 builds only); D must be 64, 128 or 256.
bool attention_kv8_avx2_supported();
void attention_kv8_avx2(const AttnKv8& a);
// The AVX2 tier's exp for x <= 0 (y[i] = exp(x[i]); inputs below -87.3 give ~1e-38), for tests.
void attention_kv8_avx2_exp(const float* x, float* y, int64_t n);
#endif
#if defined(__aarch64__)
// NEON decode tier (kernels/attention_kv8_neon.cpp, aarch64 builds only), the AVX2 decode tier's
// contract on 4-wide vectors: scores and weighted values bit for bit the reference's operations,
// the exp within 2e-7 relative, its sum over 4 lanes. D must be 64, 128 or 256, HpK <= 64.
void attention_kv8_decode_neon(const AttnKv8Decode& a);
// Its exp for x <= 0 (as attention_kv8_avx2_exp), for tests.
void attention_kv8_neon_exp(const float* x, float* y, int64_t n);
#endif

}  // namespace razor
