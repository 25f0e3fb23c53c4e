// matmul and linear: forward and backward through kernels/gemm.h sgemm (no transposed copies:
// the backward GEMMs pick their trans flags instead). Batched matmul loops over the batch;
// a 2-D right operand with a non-transposed left operand folds the batch into M (one GEMM).
#include <string>

#include "autograd/ops.h"
#include "autograd/ops_util.h"
#include "kernels/gemm.h"

namespace razor {

namespace {

struct MatmulDims {
  int64_t nb = 1;        // batch count (product of a's leading dims)
  int64_t M = 0, K = 0, N = 0;
  bool b_batched = false;
  bool fold = false;     // one GEMM over nb*M rows
  Shape out;
};

MatmulDims matmul_dims(const Var& a, const Var& b, bool ta, bool tb) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  auto bad = [&](const char* why) {
    fail("matmul: %s: a %s%s, b %s%s", why, sa.str().c_str(), ta ? " (transposed)" : "", sb.str().c_str(),
         tb ? " (transposed)" : "");
  };
  if (sa.nd < 2 || sb.nd < 2) bad("both operands need at least 2 dims");
  MatmulDims d;
  d.M = ta ? sa[-1] : sa[-2];
  d.K = ta ? sa[-2] : sa[-1];
  int64_t kb = tb ? sb[-1] : sb[-2];
  d.N = tb ? sb[-2] : sb[-1];
  if (kb != d.K) bad("inner dimensions differ");
  for (int i = 0; i < sa.nd - 2; ++i) d.nb *= sa.d[i];
  if (sb.nd > 2) {
    if (sb.nd != sa.nd) bad("batched b must have a's leading dims");
    for (int i = 0; i < sa.nd - 2; ++i)
      if (sa.d[i] != sb.d[i]) bad("batched b must have a's leading dims");
    d.b_batched = true;
  }
  d.fold = !d.b_batched && !ta;
  d.out = sa;
  d.out.d[sa.nd - 2] = d.M;
  d.out.d[sa.nd - 1] = d.N;
  return d;
}

}  // namespace

static Var matmul_record(const Var& a, const Var& b, const MatmulDims& d, bool ta, bool tb, Tensor c);

// a [.., M, K] (or [.., K, M] when ta), b [K, N] (or [N, K] when tb), optionally batched.
Var matmul(const Var& a, const Var& b, bool ta, bool tb) {
  const MatmulDims d = matmul_dims(a, b, ta, tb);
  const int64_t M = d.M, N = d.N, K = d.K;
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  const int64_t sa_step = M * K, sb_step = d.b_batched ? K * N : 0, sc_step = M * N;
  Tensor c = Tensor::empty(d.out);
  // matmul_forward: C = op(A) op(B)
  if (d.fold) {
    sgemm(false, tb, d.nb * M, N, K, 1.0f, a.value().data(), lda, b.value().data(), ldb, 0.0f, c.data(), N);
  } else {
    for (int64_t i = 0; i < d.nb; ++i)
      sgemm(ta, tb, M, N, K, 1.0f, a.value().data() + i * sa_step, lda, b.value().data() + i * sb_step, ldb,
            0.0f, c.data() + i * sc_step, N);
  }
  return matmul_record(a, b, d, ta, tb, std::move(c));
}

// The output Var of op(a) op(b) with value c, and its backward.
static Var matmul_record(const Var& a, const Var& b, const MatmulDims& d, bool ta, bool tb, Tensor c) {
  Var out = make_output(c, {&a, &b});
  if (out.requires_grad()) {
    // matmul_backward reads the saved inputs a, b (values) and dC.
    tape().record([a = a, b = b, out, d, ta, tb]() mutable {
      const float* dC = detail::grad_or_null(out);
      if (!dC) return;
      const int64_t M = d.M, N = d.N, K = d.K;
      const int64_t lda = ta ? M : K, ldb = tb ? K : N;
      const int64_t sa_step = M * K, sb_step = d.b_batched ? K * N : 0, sc_step = M * N;
      const float* A = a.value().data();
      const float* B = b.value().data();
      // A gradient not allocated yet is written (beta 0) instead of zeroed and added to: the
      // same values (0 + x = x) without a pass over it.
      bool fresh = false;
      if (a.requires_grad()) {
        float* dA = a.grad_for_write(&fresh).data();
        const float beta = fresh ? 0.0f : 1.0f;
        // d op(A) = dC op(B)^T; stored transposed when ta: dA^T = op(B) dC^T.
        if (d.fold) {
          sgemm(false, !tb, d.nb * M, K, N, 1.0f, dC, N, B, ldb, beta, dA, K);
        } else {
          for (int64_t i = 0; i < d.nb; ++i) {
            if (!ta)
              sgemm(false, !tb, M, K, N, 1.0f, dC + i * sc_step, N, B + i * sb_step, ldb, beta, dA + i * sa_step, K);
            else
              sgemm(tb, true, K, M, N, 1.0f, B + i * sb_step, ldb, dC + i * sc_step, N, beta, dA + i * sa_step, M);
          }
        }
      }
      if (b.requires_grad()) {
        float* dB = b.grad_for_write(&fresh).data();
        // Batches of an unbatched b sum into one dB: only the first may write.
        float beta = fresh ? 0.0f : 1.0f;
        // d op(B) = op(A)^T dC; stored transposed when tb: dB^T = dC^T op(A).
        if (d.fold) {
          if (!tb)
            sgemm(true, false, K, N, d.nb * M, 1.0f, A, lda, dC, N, beta, dB, N);
          else
            sgemm(true, false, N, K, d.nb * M, 1.0f, dC, N, A, lda, beta, dB, K);
        } else {
          for (int64_t i = 0; i < d.nb; ++i) {
            if (!tb)
              sgemm(!ta, false, K, N, M, 1.0f, A + i * sa_step, lda, dC + i * sc_step, N, beta, dB + i * sb_step, N);
            else
              sgemm(true, ta, N, K, M, 1.0f, dC + i * sc_step, N, A + i * sa_step, lda, beta, dB + i * sb_step, K);
            if (!d.b_batched) beta = 1.0f;
          }
        }
      }
    });
  }
  return out;
}

// x [.., in], w [out, in] -> [.., out]
Var linear(const Var& x, const Var& w) {
  if (w.shape().nd != 2 || x.shape().nd < 1 || x.shape()[-1] != w.shape()[1])
    fail("linear: x %s does not match weight %s (expected x [.., %lld], weight [out, in])", x.shape().str().c_str(),
         w.shape().str().c_str(), (long long)(w.shape().nd == 2 ? w.shape()[1] : -1));
  if (x.shape().nd >= 2) return matmul(x, w, false, true);
  // 1-D x: treat as one row.
  Var x2 = reshape(x, Shape{1, x.shape()[0]});
  Var y = matmul(x2, w, false, true);
  return reshape(y, Shape{w.shape()[0]});
}

Var linear_given(const Var& x, const Var& w, Tensor y) {
  if (w.shape().nd != 2 || x.shape().nd < 2 || x.shape()[-1] != w.shape()[1])
    fail("linear_given: x %s does not match weight %s (expected x [.., in] with 2+ dims, weight [out, in])",
         x.shape().str().c_str(), w.shape().str().c_str());
  const MatmulDims d = matmul_dims(x, w, false, true);
  if (!y.defined() || y.shape() != d.out)
    fail("linear_given: the given value is %s, the product is %s", y.defined() ? y.shape().str().c_str() : "undefined",
         d.out.str().c_str());
  return matmul_record(x, w, d, false, true, std::move(y));
}

}  // namespace razor
