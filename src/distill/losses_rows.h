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

}  // namespace distill_detail
}  // namespace razor
