// Dispatch and threading for the packed-weight kernels: picks the tier from active_isa()
// (and the CPU's VNNI / dotprod features), precomputes per-group activation sums, and
// splits output rows into one contiguous range per thread so each thread streams its
// part of the weights once.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threads.h"
#include "kernels/qgemm.h"
#include "kernels/qgemm_gemm.h"
#include "kernels/qgemm_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace razor {

namespace {

struct TierFns {
  QgemmRowsFn rows = nullptr;
  QuantA8Fn quant = nullptr;
};

TierFns tier_fns(QTier t) {
  switch (t) {
    case QTier::Ref: return {qgemm_rows_ref, quantize_a8_ref};
#if defined(__x86_64__)
    case QTier::Avx2: return {qgemm_rows_avx2, quantize_a8_avx2};
    case QTier::Avx512: return {qgemm_rows_avx512, quantize_a8_avx512};
#endif
#if defined(__aarch64__)
    case QTier::Neon: return {qgemm_rows_neon, quantize_a8_neon};
    case QTier::Dotprod: return {qgemm_rows_dotprod, quantize_a8_neon};
#endif
    default: break;
  }
  return {};
}

// Below this many multiply-adds a call runs on one thread (fork/join costs more).
constexpr int64_t kMinParallelWork = int64_t(1) << 18;

// Per-(token, group) sums of the int8 activations [N, d_in / G], in a buffer reused across
// calls (no allocation per decoded token).
const int32_t* group_sums(const int8_t* qx, int64_t N, int64_t d_in, int G) {
  static thread_local std::vector<int32_t> buf;
  const int64_t ng = d_in / G;
  if (buf.size() < size_t(N * ng)) buf.resize(size_t(N * ng));
  qgemm_group_sums(qx, N, d_in, G, buf.data());
  return buf.data();
}

// Rows of several matrices on one input, units [ub, ue) of 8 rows counted over the matrices'
// rows in order.
void multi_rows(QgemmRowsFn rows, const PackedMatrix* const* Ws, float* const* ys, int count, const int8_t* qx,
                const float* sx, const int32_t* sumx, int64_t N, int64_t ub, int64_t ue) {
  int64_t u0 = 0;
  for (int m = 0; m < count && u0 < ue; ++m) {
    const int64_t d_out = Ws[m]->desc.d_out, mu = (d_out + 7) / 8;
    const int64_t b = std::max(ub, u0) - u0, e = std::min(ue, u0 + mu) - u0;
    if (b < e) rows(QgemmArgs{Ws[m], qx, sx, sumx, N, ys[m]}, b * 8, std::min(d_out, e * 8));
    u0 += mu;
  }
}

int64_t multi_units(const PackedMatrix* const* Ws, int count) {
  int64_t units = 0;
  for (int m = 0; m < count; ++m) units += (Ws[m]->desc.d_out + 7) / 8;
  return units;
}

// Runs run(ub, ue) over [0, units) split into one contiguous range per thread (one call when the
// work, in multiply-adds, is too small to pay for a parallel region).
template <class F>
void split_units(int64_t units, int64_t work, F&& run) {
  int nth = work < kMinParallelWork ? 1 : num_threads();
  if (nth > units) nth = int(units);
  if (nth <= 1) return run(int64_t(0), units);
#pragma omp parallel num_threads(nth)
  {
#ifdef _OPENMP
    const int th = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int th = 0, nt = 1;
#endif
    run(units * th / nt, units * (th + 1) / nt);
  }
}

}  // namespace

void qgemm_group_sums(const int8_t* qx, int64_t N, int64_t d_in, int G, int32_t* sums) {
  const int64_t ng = d_in / G;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < ng; ++g) {
      const int8_t* x = qx + n * d_in + g * G;
      int32_t s = 0;
#pragma omp simd reduction(+ : s)
      for (int k = 0; k < G; ++k) s += x[k];
      sums[n * ng + g] = s;
    }
}

namespace {
// GF2P8AFFINEQB field extraction: on by default where the CPU has GFNI.
std::atomic<bool> g_gfni{cpu_features().gfni};
}  // namespace

bool qgemm_avx512_gfni() { return g_gfni.load(std::memory_order_relaxed); }

namespace {
// RAZOR_DECODE_TILES=0 turns the AVX2 decode copies off (half the weight memory, slower decode).
bool tiles_default() {
  const char* e = std::getenv("RAZOR_DECODE_TILES");
  return !(e && std::string(e) == "0");
}
std::atomic<bool> g_avx2_tiles{tiles_default()};
}  // namespace

bool qgemm_avx2_tiles() { return g_avx2_tiles.load(std::memory_order_relaxed); }
bool qgemm_avx2_set_tiles(bool on) { return g_avx2_tiles.exchange(on); }

void qgemm_prepare(const PackedMatrix& W) {
  if (qtier_active() == QTier::Avx2 && qgemm_avx2_tiles() && !W.tiles) W.tiles = build_decode_tiles(W);
}

void qgemm_release_rows(PackedMatrix& W) {
  if (!W.tiles) return;
  W.codes = AlignedBytes();
  W.scales = AlignedBytes();
}

bool qgemm_avx512_set_gfni(bool on) {
  RZ_ASSERT_MSG(!on || cpu_features().gfni, "qgemm: GFNI requested on a CPU without it");
  return g_gfni.exchange(on);
}

const char* qtier_name(QTier t) {
  switch (t) {
    case QTier::Ref: return "ref";
    case QTier::Avx2: return "avx2";
    case QTier::Avx512: return "avx512-vnni";
    case QTier::Neon: return "neon";
    case QTier::Dotprod: return "neon-dotprod";
  }
  return "?";
}

bool qtier_supported(QTier t) {
  if (!tier_fns(t).rows) return false;
  const CpuFeatures& f = cpu_features();
  switch (t) {
    case QTier::Ref: return true;
    case QTier::Avx2: return isa_supported(Isa::Avx2);
    case QTier::Avx512: return isa_supported(Isa::Avx512) && f.avx512vnni;
    case QTier::Neon: return isa_supported(Isa::Neon);
    case QTier::Dotprod: return isa_supported(Isa::Neon) && f.dotprod;
  }
  return false;
}

QTier qtier_active() {
  switch (active_isa()) {
    case Isa::Avx512:
      if (qtier_supported(QTier::Avx512)) return QTier::Avx512;
      return qtier_supported(QTier::Avx2) ? QTier::Avx2 : QTier::Ref;
    case Isa::Avx2: return qtier_supported(QTier::Avx2) ? QTier::Avx2 : QTier::Ref;
    case Isa::Neon:
      if (qtier_supported(QTier::Dotprod)) return QTier::Dotprod;
      return qtier_supported(QTier::Neon) ? QTier::Neon : QTier::Ref;
    case Isa::Ref: break;
  }
  return QTier::Ref;
}

void qgemm_tier(QTier t, const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  const TierFns fns = tier_fns(t);
  RZ_ASSERT_MSG(fns.rows && qtier_supported(t), "qgemm: tier not available on this CPU / build");
  RZ_ASSERT(N >= 1);
  RZ_ASSERT_MSG(W.codes.size() > 0 || (t == QTier::Avx2 && W.tiles && qgemm_avx2_tiles()),
                "qgemm: the matrix's packed rows were released (qgemm_release_rows); only the AVX2 tier's decode copy runs it");
  // Prefill: unpacked row tiles reused across all tokens (qgemm_gemm.h).
  if (N >= kQgemmGemmMinTokens && qgemm_gemm_supported(t)) return qgemm_gemm_tier(t, W, qx, sx, N, y);
  const int G = W.desc.G;
  const int64_t d_in = W.desc.d_in, d_out = W.desc.d_out;
  const int32_t* sumx = group_sums(qx, N, d_in, G);
  const QgemmArgs a{&W, qx, sx, sumx, N, y};
  // Contiguous ranges, boundaries on multiples of 8 rows (whole mixed super-groups for P | 8).
  split_units((d_out + 7) / 8, d_out * d_in * N, [&](int64_t ub, int64_t ue) {
    const int64_t b = std::min(d_out, ub * 8), e = std::min(d_out, ue * 8);
    if (b < e) fns.rows(a, b, e);
  });
}

void qgemm(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  qgemm_tier(qtier_active(), W, qx, sx, N, y);
}

// ---- Several matrices on one input (decode: q/k/v, gate/up) in one parallel region ----

void qgemm_multi(const PackedMatrix* const* Ws, float* const* ys, int count, const int8_t* qx, const float* sx,
                 int64_t N) {
  RZ_ASSERT(count >= 1 && N >= 1);
  if (N > kMultiMaxTokens || count == 1) {  // prefill: each matrix on its own (the GEMM paths)
    for (int m = 0; m < count; ++m) qgemm(*Ws[m], qx, sx, N, ys[m]);
    return;
  }
  const QTier t = qtier_active();
  const TierFns fns = tier_fns(t);
  const int G = Ws[0]->desc.G;
  const int64_t d_in = Ws[0]->desc.d_in;
  const int64_t units = multi_units(Ws, count);  // units: blocks of 8 rows
  int64_t work = 0;
  for (int m = 0; m < count; ++m) {
    RZ_ASSERT_MSG(Ws[m]->desc.d_in == d_in && Ws[m]->desc.G == G, "qgemm_multi: matrices must share d_in and G");
    work += Ws[m]->desc.d_out * d_in * N;
  }
  const int32_t* sumx = group_sums(qx, N, d_in, G);
  // Thread t takes units [units * t / nt, units * (t + 1) / nt) of the matrices' rows in order.
  split_units(units, work, [&](int64_t ub, int64_t ue) { multi_rows(fns.rows, Ws, ys, count, qx, sx, sumx, N, ub, ue); });
}

void qgemm_multi_part(const PackedMatrix* const* Ws, float* const* ys, int count, const int8_t* qx,
                      const float* sx, const int32_t* sumx, int64_t N, int th, int nt) {
  const int64_t units = multi_units(Ws, count);
  multi_rows(tier_fns(qtier_active()).rows, Ws, ys, count, qx, sx, sumx, N, units * th / nt, units * (th + 1) / nt);
}

void quantize_a8_tier(QTier t, const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  const TierFns fns = tier_fns(t);
  RZ_ASSERT_MSG(fns.quant && qtier_supported(t), "quantize_a8: tier not available on this CPU / build");
  RZ_ASSERT(G >= 1 && C % G == 0);
  if (N * C < (int64_t(1) << 16) || num_threads() == 1) {
    fns.quant(x, N, C, G, q, scales);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) fns.quant(x + n * C, 1, C, G, q + n * C, scales + n * (C / G));
}

void quantize_a8(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  quantize_a8_tier(qtier_active(), x, N, C, G, q, scales);
}

void quantize_a8_serial(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  RZ_ASSERT(G >= 1 && C % G == 0);
  tier_fns(qtier_active()).quant(x, N, C, G, q, scales);
}

}  // namespace razor
