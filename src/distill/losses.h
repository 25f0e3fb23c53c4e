// Distillation losses (NUMERICS §5-§7) as fused autograd ops: the student side is a Var,
// the teacher side plain data from the teacher store (SequenceView). Each op computes its
// forward eagerly and records one backward closure that recomputes what it needs from the
// student values and the teacher views (nothing big is saved), adding into the student's
// gradient. The teacher views must stay valid (store open) until backward has run.
// Student logits row b*T + t predicts token t+1 of sequence b.
// Deliberately not here: CE (autograd cross_entropy; ce_targets builds its targets) and the
// weighting a_task / a_feature / a_logit (the training loop).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "distill/store.h"

namespace razor {

enum class MaskAlign { Razor, Reference };         // --mask-align razor|reference
enum class LogitLoss { Eakld, Cakld, Forward, Reverse };  // --loss-logit eakld|cakld|fkl|rkl
enum class EakldClip { Token, Batch };             // --eakld-clip token|batch
enum class AfdMode { Adaptive, Fixed, List };      // --feature adaptive|fixed|fixed:<l1,l2,...>

MaskAlign parse_mask_align(const std::string& s);
LogitLoss parse_logit_loss(const std::string& s);
EakldClip parse_eakld_clip(const std::string& s);

struct DistillConfig {
  MaskAlign mask_align = MaskAlign::Razor;
  LogitLoss logit_loss = LogitLoss::Eakld;
  EakldClip eakld_clip = EakldClip::Token;
  int entropy_k = 16;            // lambda = mean min(H, ln k) / ln k
  AfdMode afd_mode = AfdMode::Adaptive;
  int afd_k = 3;                 // adaptive: the k layers with the lowest c_l (at most L)
  std::vector<int> afd_layers;   // List mode: feature taps in [0, L]
  void validate() const;
};
// "adaptive" | "fixed" | a comma list "1,4,8" (sets afd_layers).
void parse_afd(const std::string& s, DistillConfig& cfg);

// Every component, measured in the forward (before the update), for logging.
struct DistillStats {
  double fkl = 0, rkl = 0;   // batch means (NUMERICS §7), whatever the variant
  double lambda = 0;         // EAKLD: entropy lambda; CAKLD: confidence lambda; FKL: 1; RKL: 0
  double logit = 0;          // the logit loss value
  double feature = 0;        // L_feature
  std::vector<int> layers;   // AFD layers used, ascending
  std::vector<double> layer_mse;  // mse_l for each of `layers`
  std::vector<double> layer_cos;  // c_l for l = 1..L (index l-1)
  int64_t valid = 0;         // valid positions in the micro-batch
};

// valid[b*T + t] = 1 when position t of sequence b takes part in the losses:
// razor: token t+1 is a target (mask[t+1]); reference: mask[t] (one position off).
std::vector<uint8_t> valid_positions(const uint8_t* mask /*[B, T+1]*/, int64_t B, int64_t T, MaskAlign align);
std::vector<uint8_t> valid_positions(const std::vector<SequenceView>& batch, MaskAlign align);
// CE targets [B*T]: ids[t+1] where mask[t+1], else -1 (always razor's alignment).
std::vector<int32_t> ce_targets(const std::vector<SequenceView>& batch);

// Logit distillation. student_logits [B*T, V] -> [1]. Top-K stores use the (K+1)-bin
// distributions {top-K tokens, tail}; full stores the V-bin ones. The teacher's stored
// log-probs are renormalised over their bins (f16 / f32 rounding) so both KLs are >= 0.
Var logit_distill_loss(const Var& student_logits, const std::vector<SequenceView>& teacher, const DistillConfig& cfg,
                       DistillStats* stats = nullptr);

// The lm_head product and its losses a chunk of rows at a time, never holding all [N, V]
// logits and their gradient (N = B*T; at Qwen3's V = 151,936 that is 1.2 MB per row):
// x [N, C] the head input (after A8 when quantized), w [V, C] the head weight (after fake
// quantization). ce: cross_entropy over targets (-1 = ignored); logit (with a teacher batch of
// B sequences, B*T = N): logit_distill_loss with cfg; stats as logit_distill_loss fills them.
// Each chunk's logits are computed in the forward and again in the backward. With one chunk
// (rows_per_chunk >= N) every value and gradient has the same bits as cross_entropy and
// logit_distill_loss on linear(x, w); with several, the weight gradient is summed over the
// chunks' products (fp32 summation order).
struct HeadLosses {
  Var ce;     // [1]
  Var logit;  // [1], undefined without a teacher
};
HeadLosses head_losses(const Var& x, const Var& w, const std::vector<int32_t>& targets,
                       const std::vector<SequenceView>* teacher, const DistillConfig& cfg, DistillStats* stats,
                       int64_t rows_per_chunk);
// Rows per chunk whose logits and logit gradient fit in `bytes` (at least 1).
int64_t head_chunk_rows(int64_t V, int64_t bytes = int64_t(256) << 20);

// c_l for l = 1..L (index l-1): mean over the batch's valid positions of the teacher's
// adjacent-layer cosine; 0 when the batch has no valid position.
std::vector<double> afd_layer_cosines(const std::vector<SequenceView>& teacher, MaskAlign align);
// The layers AFD uses, ascending, without duplicates.
std::vector<int> afd_select_layers(const std::vector<SequenceView>& teacher, const DistillConfig& cfg);
// The layers AFD selects for each sequence alone (adaptive: its own c_l), one list per sequence.
std::vector<std::vector<int>> afd_sequence_layers(const std::vector<SequenceView>& teacher, const DistillConfig& cfg);
// Refuses (razor::Error naming `store` and the option) a feature loss that a selected-tap
// store (info.selected_taps > 0) cannot serve: --feature fixed or a list, --mask-align
// reference, or an --afd-k that selects more taps than it keeps. A store of every tap serves all.
void check_store_serves_afd(const StoreInfo& info, const DistillConfig& cfg, const std::string& store);
// AFD. student_features: the L+1 taps, each [B, T, C] (only the selected ones are read and
// must be defined) -> [1]. On a store of every tap: NUMERICS §6, one selection per
// micro-batch. On a selected-tap store (views with tap_ids): adaptive only, each sequence
// with its own selection, L_feature = mean over sequences of the mean over its k' layers of
// its mse term (docs/distill.md; equal to NUMERICS §6 at B = 1). Logged there: the k' layers
// selected by the most sequences and, for each, its mse terms summed over those sequences.
Var afd_loss(const std::vector<Var>& student_features, const std::vector<SequenceView>& teacher,
             const DistillConfig& cfg, DistillStats* stats = nullptr);

struct DistillOutput {
  Var feature;  // [1]
  Var logit;    // [1]
  DistillStats stats;
};
DistillOutput distill_losses(const std::vector<Var>& student_features, const Var& student_logits,
                             const std::vector<SequenceView>& teacher, const DistillConfig& cfg);

}  // namespace razor
