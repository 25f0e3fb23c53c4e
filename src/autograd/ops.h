// Differentiable ops. Every op: forward computed eagerly; when an input requires grad,
// a backward closure is recorded on the tape (see tape.h). Shapes use the letters of
// core/tensor.h. Scalars (losses) have shape [1]. Errors name the op and the shapes.
// Implementations live in ops_*.cpp, one file per op family, forward and backward side by side.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "autograd/tape.h"
#include "core/rope.h"

namespace razor {

// ---- linear algebra (ops_matmul.cpp)
// a [.., M, K] (stored [.., K, M] when trans_a); b [K, N] (stored [N, K] when trans_b), or
// batched with the same leading dims as a. -> [.., M, N]
Var matmul(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);
// x [.., in] times w [out, in] transposed -> [.., out] (the Hugging Face Linear layout).
Var linear(const Var& x, const Var& w);
// linear(x, w) whose value y [.., out] the caller computed another way (the quantized linears'
// forward on the packed integer kernels): records linear's backward on x and w. y must
// approximate x w^T; nothing checks the values. x needs 2+ dims.
Var linear_given(const Var& x, const Var& w, Tensor y);

// ---- elementwise and reductions (ops_elementwise.cpp)
// b has a's shape, or a's trailing dims (broadcast over the leading ones).
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var scale(const Var& a, float s);
Var sum(const Var& a);   // -> [1]
Var mean(const Var& a);  // -> [1]

// ---- shape (ops_shape.cpp); results are materialised copies except reshape
Var reshape(const Var& a, const Shape& s);
Var transpose(const Var& a, int d0, int d1);
Var slice(const Var& a, int dim, int64_t start, int64_t len);
Var concat(const std::vector<Var>& xs, int dim);

// ---- embedding (ops_embedding.cpp)
// table [V, C], ids (any count n, each in [0, V)) -> out_shape with last dim C
// (out_shape.numel() == n * C). Backward scatter-adds rows into the table's gradient.
Var embedding(const Var& table, const std::vector<int32_t>& ids, const Shape& out_shape);

// ---- normalisation and activations (ops_norm.cpp, ops_activation.cpp)
// x [.., C], w [C]: x / sqrt(mean(x^2) + eps) * w
Var rmsnorm(const Var& x, const Var& w, float eps);
Var silu(const Var& x);
Var swiglu(const Var& gate, const Var& up);  // silu(gate) * up, fused
// x [.., C] -> softmax over the last dim (stable; -inf entries get probability 0).
Var softmax_lastdim(const Var& x);

// ---- rotary position embedding (ops_rope.cpp), rotate-half convention (HF Llama/Qwen);
// the table and the row rotation are core/rope.h's (shared with the engine)
// x [B, T, H, D]; position of token t is pos0 + t.
Var rope(const Var& x, const RopeTable& table, int64_t pos0 = 0);

// ---- attention (ops_attention.cpp)
// Causal grouped-query attention, softmax scale 1/sqrt(D). q [B, T, H, D], k and v
// [B, T, K, D] with H % K == 0 (query head h reads kv head h / (H/K)). -> [B, T, H, D].
// Fused, numerically stable (online softmax); attention_composed builds the same function
// from basic ops and is used by tests to hold the fused op equal.
Var attention(const Var& q, const Var& k, const Var& v);
Var attention_composed(const Var& q, const Var& k, const Var& v);
// Incremental decoding: the queries q [B, Tq, H, D] are the last Tq of the Tk positions of k, v
// [B, Tk, K, D] (a KV cache plus the new rows). Each output row equals attention()'s row of the
// same position over the whole sequence, bit for bit. No gradient.
Var attention_cached(const Var& q, const Var& k, const Var& v);

// ---- losses (ops_loss.cpp)
// logits [N, V], targets [N] with -1 = ignore -> mean over non-ignored positions, [1].
// Fused log-softmax + NLL in fp32.
Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets);
// One row of cross_entropy, for ops that hold logits a chunk of rows at a time
// (distill/losses.h head_losses): the row's log-sum-exp (fp32, as cross_entropy's forward),
// and its backward dx[c] += g * exp(x[c] - lse), dx[target] -= g (as its backward).
float cross_entropy_row_lse(const float* x /*[V]*/, int64_t V);
void cross_entropy_row_backward(const float* x /*[V]*/, int64_t V, float lse, int32_t target, float g, float* dx);
// mean over all elements of (a - b)^2 -> [1]
Var mse(const Var& a, const Var& b);
// cosine similarity along the last dim: [.., C] x [.., C] -> [..] (eps 1e-8 on the norms)
Var cosine_similarity(const Var& a, const Var& b);

// ---- straight-through estimator (ops_ste.cpp)
// Forward: out = f(x) (f writes out, same shape as x). Backward: dx += dout unchanged.
Var ste(const Var& x, const std::function<void(const Tensor& in, Tensor& out)>& f);

}  // namespace razor
