// Row-level pieces of the logit losses (NUMERICS §5-§7), shared by logit_distill_loss
// (losses.cpp, on materialised [B*T, V] logits) and head_losses (head_losses.cpp, a chunk of
// rows at a time). Internal to src/distill: the public interface is losses.h.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "distill/losses.h"

namespace razor {
namespace distill_detail {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr int64_t kParallelMin = 1 << 15;  // elements below which a loop runs serially

// What one valid row's forward leaves for its backward.
struct RowSaved {
  float mx = 0;         // max of the student row (the shift of the exponentials)
  double lse = 0;       // log-sum-exp of the student row
  double lse_tail = 0;  // of the student row outside the teacher's top K (-inf if none)
  double tnorm = 0;     // log-sum-exp of the teacher's stored bin log-probs (renormaliser)
  double rkl = 0;       // the row's RKL
};

void check_batch(const std::vector<SequenceView>& teacher, const char* op);
// Per-sequence weights 1 / (B * max(|V_b|, 1)) and the valid count.
std::vector<double> sequence_weights(const std::vector<uint8_t>& valid, int64_t B, int64_t T, int64_t* total);
// The FKL / RKL weights of each variant given lambda.
void mix_weights(LogitLoss kind, double lambda, double* cf, double* cr);
// Lambda from teacher data only (so it carries no gradient).
double logit_lambda(const std::vector<SequenceView>& teacher, const std::vector<uint8_t>& valid,
                    const DistillConfig& cfg);
// Student row z [V] against teacher position t of s: fills `sv`, returns FKL and RKL.
// in_top [V] zeros (top-K stores) and e [V] are scratch.
void row_forward(const float* z, const SequenceView& s, int64_t t, std::vector<uint8_t>& in_top, float* e,
                 RowSaved* sv, double* fkl, double* rkl);
// dz += g * (cf * dFKL/dz + cr * dRKL/dz) for one row; e [V] scratch.
void row_backward(const float* z, const SequenceView& s, int64_t t, const RowSaved& sv, double g, double cf,
                  double cr, float* e, float* dz);


// Rows r0 .. r0+n-1 of a [B*T]-row batch whose logits are Z [n, V] (row r at Z + (r-r0)*V):
// row_forward of every valid row, in parallel (each row's values do not depend on the split).
void rows_forward(const float* Z, int64_t r0, int64_t n, const std::vector<SequenceView>& teacher,
                  const std::vector<uint8_t>& valid, RowSaved* saved, double* row_f, double* row_r);
// The same rows' row_backward into dZ [n, V], each row's g = gout * w[sequence].
void rows_backward(const float* Z, float* dZ, int64_t r0, int64_t n, const std::vector<SequenceView>& teacher,
                   const std::vector<uint8_t>& valid, const RowSaved* saved, const std::vector<double>& w, double gout,
                   double cf, double cr);
// FKL and RKL of the batch: the per-row values weighted by their sequence, summed in row order.
void weighted_kl_sums(const std::vector<double>& row_f, const std::vector<double>& row_r, const std::vector<double>& w,
                      int64_t T, double* fkl, double* rkl);

}  // namespace distill_detail
}  // namespace razor
