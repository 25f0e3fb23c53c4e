// Distillation losses: forward and backward side by side (see losses.h, NUMERICS §5-§7).
#include "distill/losses.h"
#include "distill/losses_rows.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "core/vmath.h"

namespace razor {

namespace distill_detail {

void check_batch(const std::vector<SequenceView>& teacher, const char* op) {
  RZ_CHECK(!teacher.empty(), "%s: empty teacher batch", op);
  const SequenceView& a = teacher[0];
  for (const SequenceView& s : teacher)
    RZ_CHECK(s.T == a.T && s.V == a.V && s.L == a.L && s.C == a.C && s.K == a.K && s.logits == a.logits &&
                 s.taps == a.taps && (s.tap_ids != nullptr) == (a.tap_ids != nullptr),
             "%s: teacher sequences of one batch have different shapes", op);
}

// Per-sequence weights 1 / (B * max(|V_b|, 1)) and the valid count.
std::vector<double> sequence_weights(const std::vector<uint8_t>& valid, int64_t B, int64_t T, int64_t* total) {
  std::vector<double> w(static_cast<size_t>(B));
  *total = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    for (int64_t t = 0; t < T; ++t) n += valid[size_t(b * T + t)];
    *total += n;
    w[size_t(b)] = 1.0 / (double(B) * double(std::max<int64_t>(n, 1)));
  }
  return w;
}

// The FKL / RKL weights of each variant given lambda.
void mix_weights(LogitLoss kind, double lambda, double* cf, double* cr) {
  switch (kind) {
    case LogitLoss::Eakld: *cf = lambda, *cr = 1 - lambda; break;
    case LogitLoss::Cakld: *cf = 1 - lambda, *cr = lambda; break;
    case LogitLoss::Forward: *cf = 1, *cr = 0; break;
    case LogitLoss::Reverse: *cf = 0, *cr = 1; break;
  }
}

// Lambda from teacher data only (so it carries no gradient).
double logit_lambda(const std::vector<SequenceView>& teacher, const std::vector<uint8_t>& valid,
                    const DistillConfig& cfg) {
  const int64_t B = int64_t(teacher.size()), T = teacher[0].T;
  if (cfg.logit_loss == LogitLoss::Forward) return 1;
  if (cfg.logit_loss == LogitLoss::Reverse) return 0;
  const double lnk = std::log(double(cfg.entropy_k));
  double sum = 0, batch_sum = 0;
  int64_t n = 0;
  for (int64_t b = 0; b < B; ++b) {
    double hs = 0;
    int64_t nb = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (!valid[size_t(b * T + t)]) continue;
      ++nb;
      if (cfg.logit_loss == LogitLoss::Cakld) {
        sum += std::exp(double(teacher[size_t(b)].target_logp[t]));
      } else {
        const double h = teacher[size_t(b)].entropy[t];
        sum += std::min(h, lnk) / lnk;
        hs += h;
      }
    }
    n += nb;
    batch_sum += hs / double(std::max<int64_t>(nb, 1));
  }
  if (cfg.logit_loss == LogitLoss::Eakld && cfg.eakld_clip == EakldClip::Batch)
    return std::min(1.0, std::max(0.0, batch_sum / double(B) / lnk));  // the reference code's clip
  return n > 0 ? sum / double(n) : 0.0;
}


// Student row z [V] against teacher position t of s: fills `sv` and returns FKL and RKL.
// e [V] is scratch for exp(z - max) (float exponentials, vmath.h; sums in double).
void row_forward(const float* z, const SequenceView& s, int64_t t, std::vector<uint8_t>& in_top, float* e,
                 RowSaved* sv, double* fkl, double* rkl) {
  const int64_t V = s.V, K = s.K, nb = s.bins();
  const float mx = row_max(z, V);
  sv->mx = mx;
  const double sum = exp_shifted_sum(z, mx, e, V);
  sv->lse = double(mx) + std::log(sum);
  double tail_logq = kNegInf;
  sv->lse_tail = kNegInf;
  if (s.logits == LogitStorage::TopK) {
    const int32_t* top = s.topk_ids + t * K;
    for (int64_t j = 0; j < K; ++j) in_top[size_t(top[j])] = 1;
    double tail = 0;
    for (int64_t v = 0; v < V; ++v)
      if (!in_top[size_t(v)]) tail += double(e[v]);
    for (int64_t j = 0; j < K; ++j) in_top[size_t(top[j])] = 0;
    if (tail > 0) sv->lse_tail = double(mx) + std::log(tail);
    tail_logq = s.tail_logp[t];
  }
  // Renormalise the teacher bins.
  double tmax = tail_logq;
  for (int64_t j = 0; j < nb; ++j) tmax = std::max(tmax, double(s.logp_at(t, j)));
  double tsum = std::exp(tail_logq - tmax);
  for (int64_t j = 0; j < nb; ++j) tsum += std::exp(double(s.logp_at(t, j)) - tmax);
  sv->tnorm = tmax + std::log(tsum);
  double f = 0, r = 0;
  auto bin = [&](double a, double l) {  // teacher and student log-probs of one bin
    if (a > kNegInf) f += std::exp(a) * (a - l);
    if (l > kNegInf) r += std::exp(l) * (l - a);
  };
  for (int64_t j = 0; j < nb; ++j) {
    const int64_t v = s.logits == LogitStorage::TopK ? s.topk_ids[t * K + j] : j;
    bin(double(s.logp_at(t, j)) - sv->tnorm, double(z[v]) - sv->lse);
  }
  if (s.logits == LogitStorage::TopK) bin(tail_logq - sv->tnorm, sv->lse_tail - sv->lse);
  sv->rkl = r;
  *fkl = f;
  *rkl = r;
}

// dz += g * (cf * dFKL/dz + cr * dRKL/dz) for one row. With l_b the student's bin log-prob,
// q_b the teacher's, pS(v) the student token prob and r_v = pS(v)/p_b within its bin:
//   dFKL/dz_v = pS(v) - q_b r_v,    dRKL/dz_v = pS(v) (l_b - log q_b - RKL_row).
// With e_v = exp(z_v - max) (float, vmath.h): pS(v) = e_v exp(max - lse) and, for a tail token,
// q_b r_v = e_v exp(log q_tail + max - lse_tail): one exponential per element, not two in double.
void row_backward(const float* z, const SequenceView& s, int64_t t, const RowSaved& sv, double g, double cf,
                  double cr, float* e, float* dz) {
  const int64_t V = s.V, K = s.K;
  exp_shifted_sum(z, sv.mx, e, V);
  const double to_p = std::exp(double(sv.mx) - sv.lse);
  if (s.logits == LogitStorage::Full) {
    for (int64_t v = 0; v < V; ++v) {
      const double a = double(s.logp_at(t, v)) - sv.tnorm;
      const double p = double(e[v]) * to_p;
      double d = 0;
      if (cf != 0) d += cf * (p - (a > kNegInf ? std::exp(a) : 0.0));
      if (cr != 0 && p > 0) d += cr * p * (double(z[v]) - sv.lse - a - sv.rkl);
      dz[v] += float(g * d);
    }
    return;
  }
  // Tail tokens first (everything), then the top-K tokens overwrite their entries.
  const double a_tail = double(s.tail_logp[t]) - sv.tnorm;
  const double l_tail = sv.lse_tail - sv.lse;
  const bool tail = sv.lse_tail > kNegInf;
  const int32_t* top = s.topk_ids + t * K;
  // Per-element factors of the tail gradient: d_v = e_v * (cf * (to_p - to_q) + cr * to_p * (l - a - rkl)).
  const double to_q = tail && a_tail > kNegInf ? std::exp(a_tail + double(sv.mx) - sv.lse_tail) : 0.0;
  const double k_tail = tail ? g * (cf * (to_p - to_q) + cr * to_p * (l_tail - a_tail - sv.rkl)) : 0.0;
  // The top-K entries replace the tail formula: computed first, then written over the tail pass.
  std::vector<float> top_d(static_cast<size_t>(K)), dz_old(static_cast<size_t>(K));
  for (int64_t j = 0; j < K; ++j) {
    const int32_t v = top[j];
    const double a = double(s.logp_at(t, j)) - sv.tnorm;
    const double p = double(e[v]) * to_p;
    double d = 0;
    if (cf != 0) d += cf * (p - (a > kNegInf ? std::exp(a) : 0.0));
    if (cr != 0 && p > 0) d += cr * p * (double(z[v]) - sv.lse - a - sv.rkl);
    top_d[size_t(j)] = float(g * d);
    dz_old[size_t(j)] = dz[top[j]];
  }
  const float kt = float(k_tail);
#pragma omp simd
  for (int64_t v = 0; v < V; ++v) dz[v] += kt * e[v];
  for (int64_t j = 0; j < K; ++j) dz[top[j]] = dz_old[size_t(j)] + top_d[size_t(j)];
}

void rows_forward(const float* Z, int64_t r0, int64_t n, const std::vector<SequenceView>& teacher,
                  const std::vector<uint8_t>& valid, RowSaved* saved, double* row_f, double* row_r) {
  const int64_t V = teacher[0].V, T = teacher[0].T;
  // Small problems (tests, tiny models) run serially: a parallel region costs more than them.
#pragma omp parallel if (n * V >= kParallelMin)
  {
    std::vector<uint8_t> in_top(teacher[0].logits == LogitStorage::TopK ? size_t(V) : 0, 0);
    std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(dynamic, 4)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = r0 + i;
      if (!valid[size_t(r)]) continue;
      row_forward(Z + i * V, teacher[size_t(r / T)], r % T, in_top, e.data(), &saved[r], &row_f[r], &row_r[r]);
    }
  }
}

void rows_backward(const float* Z, float* dZ, int64_t r0, int64_t n, const std::vector<SequenceView>& teacher,
                   const std::vector<uint8_t>& valid, const RowSaved* saved, const std::vector<double>& w, double gout,
                   double cf, double cr) {
  const int64_t V = teacher[0].V, T = teacher[0].T;
#pragma omp parallel if (n * V >= kParallelMin)
  {
    std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(dynamic, 4)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = r0 + i;
      if (!valid[size_t(r)]) continue;
      row_backward(Z + i * V, teacher[size_t(r / T)], r % T, saved[r], gout * w[size_t(r / T)], cf, cr, e.data(),
                   dZ + i * V);
    }
  }
}

void weighted_kl_sums(const std::vector<double>& row_f, const std::vector<double>& row_r, const std::vector<double>& w,
                      int64_t T, double* fkl, double* rkl) {
  *fkl = 0, *rkl = 0;
  for (size_t r = 0; r < row_f.size(); ++r) {
    *fkl += w[r / size_t(T)] * row_f[r];
    *rkl += w[r / size_t(T)] * row_r[r];
  }
}

// The student feature tap `l` of row (b, t) against the teacher's: ||s - t||^2 (double).
double feature_row_sq(const float* fs, const SequenceView& s, int64_t l, int64_t t, std::vector<float>& buf) {
  s.hidden_row(l, t, buf.data());
  double acc = 0;
  for (int64_t c = 0; c < s.C; ++c) {
    const double d = double(fs[c]) - double(buf[size_t(c)]);
    acc += d * d;
  }
  return acc;
}

}  // namespace distill_detail

using namespace distill_detail;

// ---- options

MaskAlign parse_mask_align(const std::string& s) {
  if (s == "razor") return MaskAlign::Razor;
  if (s == "reference") return MaskAlign::Reference;
  fail("--mask-align: '%s' is not one of razor, reference", s.c_str());
}
LogitLoss parse_logit_loss(const std::string& s) {
  if (s == "eakld") return LogitLoss::Eakld;
  if (s == "cakld") return LogitLoss::Cakld;
  if (s == "fkl") return LogitLoss::Forward;
  if (s == "rkl") return LogitLoss::Reverse;
  fail("--loss-logit: '%s' is not one of eakld, cakld, fkl, rkl, none", s.c_str());
}
EakldClip parse_eakld_clip(const std::string& s) {
  if (s == "token") return EakldClip::Token;
  if (s == "batch") return EakldClip::Batch;
  fail("--eakld-clip: '%s' is not one of token, batch", s.c_str());
}
void parse_afd(const std::string& s, DistillConfig& cfg) {
  if (s == "adaptive") {
    cfg.afd_mode = AfdMode::Adaptive;
    return;
  }
  if (s == "fixed") {
    cfg.afd_mode = AfdMode::Fixed;
    return;
  }
  cfg.afd_mode = AfdMode::List;
  cfg.afd_layers.clear();
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string tok = s.substr(i, j - i);
    char* end = nullptr;
    long v = tok.empty() ? -1 : std::strtol(tok.c_str(), &end, 10);
    if (tok.empty() || *end != '\0' || v < 0 || v > 4096)
      fail("--feature: '%s' is not adaptive, fixed or a comma list of layer indices (fixed:L1,L2,..)", s.c_str());
    cfg.afd_layers.push_back(int(v));
    i = j + 1;
  }
}
void DistillConfig::validate() const {
  RZ_CHECK(entropy_k >= 2, "EAKLD: entropy k = %d must be >= 2", entropy_k);
  RZ_CHECK(afd_k >= 1, "AFD: k = %d must be >= 1", afd_k);
  if (afd_mode == AfdMode::List) RZ_CHECK(!afd_layers.empty(), "--feature: empty layer list");
}

// ---- positions

std::vector<uint8_t> valid_positions(const uint8_t* mask, int64_t B, int64_t T, MaskAlign align) {
  std::vector<uint8_t> v(size_t(B * T));
  const int64_t shift = align == MaskAlign::Razor ? 1 : 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) v[size_t(b * T + t)] = mask[b * (T + 1) + t + shift] != 0;
  return v;
}

std::vector<uint8_t> valid_positions(const std::vector<SequenceView>& batch, MaskAlign align) {
  check_batch(batch, "valid_positions");
  const int64_t B = int64_t(batch.size()), T = batch[0].T;
  std::vector<uint8_t> v(size_t(B * T));
  for (int64_t b = 0; b < B; ++b) {
    std::vector<uint8_t> one = valid_positions(batch[size_t(b)].mask, 1, T, align);
    std::copy(one.begin(), one.end(), v.begin() + b * T);
  }
  return v;
}

std::vector<int32_t> ce_targets(const std::vector<SequenceView>& batch) {
  check_batch(batch, "ce_targets");
  const int64_t B = int64_t(batch.size()), T = batch[0].T;
  std::vector<int32_t> y(size_t(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      y[size_t(b * T + t)] = batch[size_t(b)].mask[t + 1] ? batch[size_t(b)].ids[t + 1] : -1;
  return y;
}

// ---- logit distillation

Var logit_distill_loss(const Var& student_logits, const std::vector<SequenceView>& teacher, const DistillConfig& cfg,
                       DistillStats* stats) {
  cfg.validate();
  check_batch(teacher, "logit_distill_loss");
  const int64_t B = int64_t(teacher.size()), T = teacher[0].T, V = teacher[0].V;
  RZ_CHECK(student_logits.value().dim() == 2 && student_logits.size(0) == B * T && student_logits.size(1) == V,
           "logit_distill_loss: student logits %s, expected [B*T=%lld, V=%lld]", student_logits.shape().str().c_str(),
           (long long)(B * T), (long long)V);
  const std::vector<uint8_t> valid = valid_positions(teacher, cfg.mask_align);
  int64_t total = 0;
  const std::vector<double> w = sequence_weights(valid, B, T, &total);
  const double lambda = logit_lambda(teacher, valid, cfg);
  double cf = 1, cr = 0;
  mix_weights(cfg.logit_loss, lambda, &cf, &cr);

  const float* Z = student_logits.value().data();
  std::vector<RowSaved> saved(size_t(B * T));
  std::vector<double> row_f(size_t(B * T), 0.0), row_r(size_t(B * T), 0.0);
  rows_forward(Z, 0, B * T, teacher, valid, saved.data(), row_f.data(), row_r.data());
  double fkl, rkl;
  weighted_kl_sums(row_f, row_r, w, T, &fkl, &rkl);  // deterministic: row order
  const double loss = cf * fkl + cr * rkl;
  if (stats) {
    stats->fkl = fkl, stats->rkl = rkl, stats->lambda = lambda, stats->logit = loss;
    stats->valid = total;
  }
  Var out = make_output(Tensor::full({1}, float(loss)), {&student_logits});
  if (out.requires_grad()) {
    tape().record([out, x = student_logits, teacher, valid, w, saved = std::move(saved), cf, cr, B, T, V]() mutable {
      // Reads: the student logits' values, the teacher views, the per-row saved sums.
      const double gout = out.grad()[0];
      rows_backward(x.value().data(), x.grad().data(), 0, B * T, teacher, valid, saved.data(), w, gout, cf, cr);
    });
  }
  return out;
}

// ---- AFD

std::vector<double> afd_layer_cosines(const std::vector<SequenceView>& teacher, MaskAlign align) {
  check_batch(teacher, "afd_layer_cosines");
  const int64_t L = teacher[0].L;
  const int a = align == MaskAlign::Razor ? 0 : 1;
  std::vector<double> c(size_t(L), 0.0);
  int64_t n = 0;
  for (const SequenceView& s : teacher) {
    n += s.cos_count[a];
    for (int64_t l = 0; l < L; ++l) c[size_t(l)] += s.cos_sum[a * L + l];
  }
  for (double& x : c) x = n > 0 ? x / double(n) : 0.0;
  return c;
}

std::vector<int> afd_select_layers(const std::vector<SequenceView>& teacher, const DistillConfig& cfg) {
  cfg.validate();
  check_batch(teacher, "afd_select_layers");
  const int L = int(teacher[0].L);
  std::vector<int> layers;
  if (cfg.afd_mode == AfdMode::Adaptive) {
    // The k lowest c_l, ties to the lower index (store.h: the dump of a selected-tap store
    // applies the same rule to one sequence).
    layers = lowest_cosine_layers(afd_layer_cosines(teacher, cfg.mask_align), cfg.afd_k);
  } else if (cfg.afd_mode == AfdMode::Fixed) {
    layers = {1, (L + 1) / 2, L};
  } else {
    for (int l : cfg.afd_layers) {
      RZ_CHECK(l >= 0 && l <= L, "--feature: layer %d outside the feature taps [0, %d]", l, L);
      layers.push_back(l);
    }
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

void check_store_serves_afd(const StoreInfo& info, const DistillConfig& cfg, const std::string& store) {
  if (info.selected_taps == 0) return;
  const char* how = "; write a store of every tap (razor teacher --taps all) or train with --feature adaptive";
  if (cfg.afd_mode == AfdMode::Fixed)
    fail("%s: the store keeps only the %lld feature taps AFD selects per sequence (--taps selected); --feature fixed "
         "needs taps it does not hold%s",
         store.c_str(), (long long)info.selected_taps, how);
  if (cfg.afd_mode == AfdMode::List)
    fail("%s: the store keeps only the %lld feature taps AFD selects per sequence (--taps selected); --feature "
         "fixed:<list> needs taps it does not hold%s",
         store.c_str(), (long long)info.selected_taps, how);
  if (cfg.mask_align != MaskAlign::Razor)
    fail("%s: the store selected its feature taps under razor's mask alignment (--taps selected); --mask-align "
         "reference selects others; write a store of every tap (razor teacher --taps all)",
         store.c_str());
  if (std::min<int64_t>(cfg.afd_k, info.num_layers) > info.selected_taps)
    fail("%s: the store keeps the %lld feature taps AFD selects per sequence (--taps selected); --afd-k %d needs "
         "more; give --afd-k <= %lld or write the store with --afd-k %d (or --taps all)",
         store.c_str(), (long long)info.selected_taps, cfg.afd_k, (long long)info.selected_taps, cfg.afd_k);
}

std::vector<std::vector<int>> afd_sequence_layers(const std::vector<SequenceView>& teacher, const DistillConfig& cfg) {
  check_batch(teacher, "afd_sequence_layers");
  std::vector<std::vector<int>> sel;
  for (const SequenceView& s : teacher) sel.push_back(afd_select_layers({s}, cfg));
  return sel;
}

namespace {

// Checks the student's feature taps `taps` ([B, T, C] each); returns whether any needs a gradient.
template <class Taps>
bool check_student_taps(const std::vector<Var>& student_features, const Taps& taps, int64_t B, int64_t T,
                        int64_t C) {
  bool rg = false;
  for (int64_t l : taps) {
    const Var& f = student_features[size_t(l)];
    RZ_CHECK(f.defined() && f.value().dim() == 3 && f.size(0) == B && f.size(1) == T && f.size(2) == C,
             "afd_loss: student feature tap %lld is %s, expected [B=%lld, T=%lld, C=%lld]", (long long)l,
             f.defined() ? f.shape().str().c_str() : "undefined", (long long)B, (long long)T, (long long)C);
    rg = rg || any_requires_grad({&f});
  }
  return rg;
}

// Per-sequence MSE weights 1 / (B * max(|V_b|,1) * C) over the valid positions (NUMERICS.md §6).
std::vector<double> afd_sequence_weights(const std::vector<SequenceView>& teacher, MaskAlign align, int64_t B,
                                         int64_t T, int64_t C, std::vector<uint8_t>* valid, int64_t* total) {
  *valid = valid_positions(teacher, align);
  std::vector<double> w = sequence_weights(*valid, B, T, total);
  for (double& x : w) x /= double(C);
  return w;
}

// AFD on a selected-tap store: per-sequence selection (docs/distill.md, "AFD on a
// selected-tap store"). With S_b the layers of sequence b alone (k' = min(afd_k, L) of them)
// L_feature = (1/B) sum_b (1/k') sum_{l in S_b} sum_{t in V_b} ||F_S - F_T||^2 / (max(|V_b|,1) d).
// At B = 1 the operations are afd_loss's on a store of every tap, in the same order (the
// same bits, value and gradient).
Var afd_loss_per_sequence(const std::vector<Var>& student_features, const std::vector<SequenceView>& teacher,
                          const DistillConfig& cfg, DistillStats* stats) {
  const int64_t B = int64_t(teacher.size()), T = teacher[0].T, C = teacher[0].C, L = teacher[0].L;
  if (cfg.afd_mode != AfdMode::Adaptive || cfg.mask_align != MaskAlign::Razor)
    fail("afd_loss: a selected-tap teacher store serves only --feature adaptive under --mask-align razor");
  const std::vector<std::vector<int>> sel = afd_sequence_layers(teacher, cfg);
  const int64_t nl = int64_t(sel[0].size());  // k' = min(afd_k, L), the same for every sequence
  std::vector<int> uses(size_t(L + 1), 0);      // sequences selecting each tap
  for (int64_t b = 0; b < B; ++b) {
    RZ_ASSERT(int64_t(sel[size_t(b)].size()) == nl);
    for (int l : sel[size_t(b)]) {
      if (!teacher[size_t(b)].has_tap(l))
        fail("afd_loss: teacher sequence %lld of the batch does not keep feature tap %d, which AFD selects for it "
             "(a selected-tap store written with a smaller --afd-k, or a damaged store)",
             (long long)b, l);
      ++uses[size_t(l)];
    }
  }
  std::vector<int64_t> used;
  for (int64_t l = 0; l <= L; ++l)
    if (uses[size_t(l)]) used.push_back(l);
  const bool rg = check_student_taps(student_features, used, B, T, C);
  std::vector<uint8_t> valid;
  int64_t total = 0;
  const std::vector<double> w = afd_sequence_weights(teacher, cfg.mask_align, B, T, C, &valid, &total);

  // row[(b*nl + j)*T + t]: sequence b's j-th layer at position t.
  std::vector<double> row(size_t(B * nl * T), 0.0);
#pragma omp parallel if (nl * B * T * C >= kParallelMin)
  {
    std::vector<float> buf(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < B * nl * T; ++i) {
      const int64_t b = i / (nl * T), j = (i / T) % nl, t = i % T;
      if (!valid[size_t(b * T + t)]) continue;
      const int l = sel[size_t(b)][size_t(j)];
      const float* fs = student_features[size_t(l)].value().data() + (b * T + t) * C;
      row[size_t(i)] = feature_row_sq(fs, teacher[size_t(b)], l, t, buf);
    }
  }
  std::vector<double> mse(size_t(B * nl), 0.0);  // [b, j]
  for (int64_t i = 0; i < B * nl * T; ++i) mse[size_t(i / T)] += w[size_t(i / (nl * T))] * row[size_t(i)];
  double loss = 0;
  for (int64_t b = 0; b < B; ++b) {
    double sb = 0;
    for (int64_t j = 0; j < nl; ++j) sb += mse[size_t(b * nl + j)];
    loss += sb / double(nl);
  }
  if (stats) {
    // Logged: the k' taps selected by the most sequences (ties to the lower index), and for
    // each the sum of its mse terms over the sequences that selected it (at B = 1: afd_loss's).
    std::vector<int> order;
    for (int l = 1; l <= int(L); ++l) order.push_back(l);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return uses[size_t(a)] > uses[size_t(b)]; });
    order.resize(size_t(nl));
    std::sort(order.begin(), order.end());
    stats->feature = loss;
    stats->layers = order;
    stats->layer_mse.assign(size_t(nl), 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < nl; ++j) {
        auto it = std::find(order.begin(), order.end(), sel[size_t(b)][size_t(j)]);
        if (it != order.end()) stats->layer_mse[size_t(it - order.begin())] += mse[size_t(b * nl + j)];
      }
    stats->layer_cos = afd_layer_cosines(teacher, cfg.mask_align);
    stats->valid = total;
  }
  Var out(Tensor::full({1}, float(loss)), rg);
  if (rg) {
    std::vector<int> taps;
    std::vector<Var> xs;
    for (int64_t l = 0; l <= L; ++l)
      if (uses[size_t(l)]) taps.push_back(int(l)), xs.push_back(student_features[size_t(l)]);
    tape().record([out, xs, taps, sel, teacher, valid, w, nl, B, T, C]() mutable {
      // Reads: the student taps' values and the teacher views.
      // d/dF_S[b,t] of tap l (l in S_b) = 2 w_b (F_S - F_T) / k'.
      const double gout = out.grad()[0] / double(nl);
      for (size_t k = 0; k < xs.size(); ++k) {
        if (!xs[k].requires_grad()) continue;
        const float* X = xs[k].value().data();
        float* dX = xs[k].grad().data();
        const int l = taps[k];
        std::vector<uint8_t> takes(size_t(B), 0);
        for (int64_t b = 0; b < B; ++b)
          takes[size_t(b)] = std::find(sel[size_t(b)].begin(), sel[size_t(b)].end(), l) != sel[size_t(b)].end();
#pragma omp parallel if (B * T * C >= kParallelMin)
        {
          std::vector<float> buf(static_cast<size_t>(C));
#pragma omp for schedule(static)
          for (int64_t r = 0; r < B * T; ++r) {
            if (!valid[size_t(r)] || !takes[size_t(r / T)]) continue;
            teacher[size_t(r / T)].hidden_row(l, r % T, buf.data());
            const double g = 2.0 * gout * w[size_t(r / T)];
            for (int64_t c = 0; c < C; ++c)
              dX[r * C + c] += float(g * (double(X[r * C + c]) - double(buf[size_t(c)])));
          }
        }
      }
    });
  }
  return out;
}

}  // namespace

Var afd_loss(const std::vector<Var>& student_features, const std::vector<SequenceView>& teacher,
             const DistillConfig& cfg, DistillStats* stats) {
  check_batch(teacher, "afd_loss");
  const int64_t B = int64_t(teacher.size()), T = teacher[0].T, C = teacher[0].C, L = teacher[0].L;
  RZ_CHECK(int64_t(student_features.size()) == L + 1, "afd_loss: %zu student feature taps, expected L+1 = %lld",
           student_features.size(), (long long)(L + 1));
  if (teacher[0].tap_ids) {
    cfg.validate();
    return afd_loss_per_sequence(student_features, teacher, cfg, stats);
  }
  const std::vector<int> layers = afd_select_layers(teacher, cfg);
  const bool rg = check_student_taps(student_features, layers, B, T, C);
  std::vector<uint8_t> valid;
  int64_t total = 0;
  const std::vector<double> w = afd_sequence_weights(teacher, cfg.mask_align, B, T, C, &valid, &total);

  const int64_t nl = int64_t(layers.size());
  std::vector<double> row(size_t(nl * B * T), 0.0);
#pragma omp parallel if (nl * B * T * C >= kParallelMin)
  {
    std::vector<float> buf(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < nl * B * T; ++i) {
      const int64_t r = i % (B * T);
      if (!valid[size_t(r)]) continue;
      const int l = layers[size_t(i / (B * T))];
      const float* fs = student_features[size_t(l)].value().data() + r * C;
      row[size_t(i)] = feature_row_sq(fs, teacher[size_t(r / T)], l, r % T, buf);
    }
  }
  std::vector<double> mse(size_t(nl), 0.0);
  for (int64_t i = 0; i < nl * B * T; ++i) mse[size_t(i / (B * T))] += w[size_t((i % (B * T)) / T)] * row[size_t(i)];
  double loss = 0;
  for (double m : mse) loss += m;
  loss /= double(nl);
  if (stats) {
    stats->feature = loss;
    stats->layers = layers;
    stats->layer_mse = mse;
    stats->layer_cos = afd_layer_cosines(teacher, cfg.mask_align);
    stats->valid = total;
  }
  Var out(Tensor::full({1}, float(loss)), rg);
  if (rg) {
    std::vector<Var> xs;
    for (int l : layers) xs.push_back(student_features[size_t(l)]);
    tape().record([out, xs, layers, teacher, valid, w, nl, B, T, C]() mutable {
      // Reads: the student taps' values and the teacher views.
      // d mse_l / dF_S[b,t] = 2 w_b (F_S - F_T); L_feature averages over the nl layers.
      const double gout = out.grad()[0] / double(nl);
      for (int64_t k = 0; k < nl; ++k) {
        if (!xs[size_t(k)].requires_grad()) continue;
        const float* X = xs[size_t(k)].value().data();
        float* dX = xs[size_t(k)].grad().data();
        const int l = layers[size_t(k)];
#pragma omp parallel if (B * T * C >= kParallelMin)
        {
          std::vector<float> buf(static_cast<size_t>(C));
#pragma omp for schedule(static)
          for (int64_t r = 0; r < B * T; ++r) {
            if (!valid[size_t(r)]) continue;
            teacher[size_t(r / T)].hidden_row(l, r % T, buf.data());
            const double g = 2.0 * gout * w[size_t(r / T)];
            for (int64_t c = 0; c < C; ++c)
              dX[r * C + c] += float(g * (double(X[r * C + c]) - double(buf[size_t(c)])));
          }
        }
      }
    });
  }
  return out;
}

DistillOutput distill_losses(const std::vector<Var>& student_features, const Var& student_logits,
                             const std::vector<SequenceView>& teacher, const DistillConfig& cfg) {
  DistillOutput o;
  o.feature = afd_loss(student_features, teacher, cfg, &o.stats);
  o.logit = logit_distill_loss(student_logits, teacher, cfg, &o.stats);
  return o;
}

}  // namespace razor
