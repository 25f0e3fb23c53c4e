// Tests for kernels/qformat (packed block formats) and kernels/qgemm (A8 quantizer, packed
// GEMV/GEMM): exact pack/unpack round trips, the byte layouts pinned on small examples, and
// every tier this CPU can run held exactly equal to the scalar reference on the integer
// sums (all scales 1, so outputs are exact integers) and within a tight tolerance with
// random fp16 scales. Tiers the CPU cannot run are skipped with a visible message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "kernels/qformat.h"
#include "kernels/qgemm.h"
#include "kernels/qgemm_gemm.h"

using namespace razor;

namespace {

struct Case {
  const char* layout;
  int G;
  int64_t d_out, d_in;
};

PackedDesc make_desc(const char* layout, int G, int64_t d_out, int64_t d_in) {
  PackedDesc d = parse_layout(layout);
  d.G = G;
  d.d_out = d_out;
  d.d_in = d_in;
  return d;
}

// Random codes valid for each row's kind; extreme = all codes at +-max magnitude.
std::vector<int8_t> random_codes(const PackedDesc& d, uint64_t seed, bool extreme = false) {
  PackedMatrix probe;
  probe.desc = d;
  Rng rng(seed);
  std::vector<int8_t> c(size_t(d.d_out * d.d_in));
  for (int64_t i = 0; i < d.d_out; ++i) {
    const int lim = probe.row_kind(i) == RowKind::Int4 ? 7 : 1;
    for (int64_t k = 0; k < d.d_in; ++k)
      c[size_t(i * d.d_in + k)] = extreme ? int8_t(lim) : int8_t(int(rng.below(2 * lim + 1)) - lim);
  }
  return c;
}

std::vector<float> random_scales(const PackedDesc& d, uint64_t seed, bool ones) {
  Rng rng(seed);
  std::vector<float> s(size_t(d.d_out * (d.d_in / d.G)));
  for (float& v : s) v = ones ? 1.0f : round_to_f16(0.001f + 0.05f * rng.uniform());
  return s;
}

std::vector<QTier> all_tiers() { return {QTier::Ref, QTier::Avx2, QTier::Avx512, QTier::Neon, QTier::Dotprod}; }

// Each tier this CPU runs; the AVX-512 tier twice where the CPU has GFNI (ternary fields by
// shifts and masks, then by GF2P8AFFINEQB, the default, so the last one run leaves it set).
// The AVX2 tier twice: its row kernels, then (the default, left set) the decode copy's 8-row
// tiles where a one-token product's matrix has one (with_tiles).
struct Variant {
  QTier t;
  bool gfni;
  std::string name;
  bool tiles = true;
  void use() const {
    if (t == QTier::Avx512) qgemm_avx512_set_gfni(gfni);
    if (t == QTier::Avx2) qgemm_avx2_set_tiles(tiles);
  }
};

// m with its AVX2 decode copy (DecodeTiles) built, on any x86 CPU (qgemm_prepare builds it only
// where AVX2 is the active tier), so the AVX2 tier's tile kernels are held to the reference too.
PackedMatrix with_tiles(PackedMatrix m) {
  m.tiles = build_decode_tiles(m);
  return m;
}

std::vector<Variant> tier_variants() {
  std::vector<Variant> v;
  for (QTier t : all_tiers()) {
    if (!qtier_supported(t)) continue;
    if (t == QTier::Avx2) {
      v.push_back({t, false, "avx2 (row kernels)", false});
      v.push_back({t, false, "avx2 (decode tiles)", true});
      continue;
    }
    if (t != QTier::Avx512) {
      v.push_back({t, false, qtier_name(t)});
      continue;
    }
    v.push_back({t, false, "avx512-vnni (shift and mask fields)"});
    if (cpu_features().gfni)
      v.push_back({t, true, "avx512-vnni (GFNI fields)"});
    else
      MESSAGE("skipping the AVX-512 GFNI variant: this CPU has no GFNI");
  }
  return v;
}

// Runs f(tier) for each variant, the variant's name captured for failure messages.
template <class F>
void for_each_variant(F&& f) {
  for (const Variant& v : tier_variants()) {
    const std::string tier = v.name;
    CAPTURE(tier);
    v.use();
    f(v.t);
  }
}

bool tier_runs(QTier t) {
  if (qtier_supported(t)) return true;
  MESSAGE("skipping tier " << std::string(qtier_name(t)) << ": not in this build or not supported by this CPU");
  return false;
}

const char* kLayouts[] = {"ternary2", "ternary5", "int4", "mixed2", "mixed8"};

// f(tier) for every tier with a prefill GEMM path on this CPU / build (the tier's name captured);
// a message when there is none.
// The AVX2 tier twice: unpacking its tiles from the packed rows, then (left set) from the decode
// copy of a matrix that has one (with_tiles).
template <class F>
void for_each_gemm_tier(F&& f) {
  bool ran = false;
  for (QTier t : all_tiers()) {
    if (!qgemm_gemm_supported(t)) continue;
    ran = true;
    for (bool tiles : {false, true}) {
      if (t != QTier::Avx2 && !tiles) continue;
      if (t == QTier::Avx2) qgemm_avx2_set_tiles(tiles);
      const std::string tier = std::string(qtier_name(t)) + (t == QTier::Avx2 && tiles ? " (decode tiles)" : "");
      CAPTURE(tier);
      f(t);
    }
  }
  if (!ran) MESSAGE("skipping the GEMM path: no tier with one runs on this CPU / build");
}


// Every variant of every tier exactly equals the integer sums of the plain codes (all scales 1):
// random codes (code_seed) times random int8 activations of N tokens (x_seed).
void check_tiers_integer_sums(const PackedDesc& d, int64_t N, uint64_t code_seed, uint64_t x_seed) {
  const int64_t d_in = d.d_in, d_out = d.d_out;
  const std::vector<int8_t> codes = random_codes(d, code_seed);
  const PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
  Rng rng(x_seed);
  std::vector<int8_t> qx(size_t(N * d_in));
  for (int8_t& v : qx) v = int8_t(int(rng.below(255)) - 127);
  std::vector<float> sx(size_t(N * d_in / d.G), 1.0f);
  // Independent integer definition from the plain codes.
  std::vector<float> want(size_t(N * d_out));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < d_out; ++i) {
      int64_t acc = 0;
      for (int64_t k = 0; k < d_in; ++k) acc += int64_t(codes[size_t(i * d_in + k)]) * qx[size_t(n * d_in + k)];
      want[size_t(n * d_out + i)] = float(acc);
    }
  for_each_variant([&](QTier t) {
    std::vector<float> y(want.size(), NAN);
    qgemm_tier(t, m, qx.data(), sx.data(), N, y.data());
    CHECK(y == want);
  });
}


// Every supported tier against qgemm_ref on random codes, random fp16 scales and A8 activations
// of N tokens: tiers sum per-group products in another order (SIMD lanes), so they may differ by
// fp32 rounding only, bounded by 1e-5 * sum over the dot's |terms| (s_w s_x |q_w q_x|).
void check_tiers_random_scales(const PackedDesc& d, int64_t N, uint64_t code_seed, uint64_t scale_seed,
                               uint64_t x_seed) {
  const int64_t d_in = d.d_in, d_out = d.d_out;
  const int G = d.G;
  const std::vector<int8_t> codes = random_codes(d, code_seed);
  const PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, scale_seed, false).data()));
  Rng rng(x_seed);
  std::vector<float> x(size_t(N * d_in));
  for (float& v : x) v = rng.normal();
  std::vector<int8_t> qx(x.size());
  std::vector<float> sx(size_t(N * d_in / G));
  quantize_a8_ref(x.data(), N, d_in, G, qx.data(), sx.data());
  std::vector<float> y_ref(size_t(N * d_out)), y(y_ref.size());
  qgemm_ref(m, qx.data(), sx.data(), N, y_ref.data());
  std::vector<int8_t> cw(codes.size());
  std::vector<float> sw(size_t(d_out * d_in / G));
  unpack_matrix(m, cw.data(), sw.data());
  for_each_variant([&](QTier t) {
    qgemm_tier(t, m, qx.data(), sx.data(), N, y.data());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < d_out; ++i) {
        double mag = 0.0;
        for (int64_t k = 0; k < d_in; ++k)
          mag += double(sw[size_t(i * (d_in / G) + k / G)]) * sx[size_t(n * (d_in / G) + k / G)] *
                 std::abs(int(cw[size_t(i * d_in + k)]) * int(qx[size_t(n * d_in + k)]));
        CHECK(std::fabs(double(y[size_t(n * d_out + i)]) - double(y_ref[size_t(n * d_out + i)])) <= 1e-5 * mag + 1e-30);
      }
    // The ARM tiers (rows, one-token quads, the prefill GEMM) do the reference's float operations
    // per row: multiply, then add, groups in order. Their bits are the reference's.
    if (t == QTier::Neon || t == QTier::Dotprod)
      CHECK(std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) == 0);
  });
}

}  // namespace

TEST_SUITE("qgemm") {
  TEST_CASE("AlignedBytes: aligned, zero-filled, disjoint slab buffers; slabs returned when emptied") {
    const SlabStats s0 = aligned_bytes_slabs();
    {
      // Many buffers of assorted sizes: each 64-byte aligned, zero (with its kPad tail), and
      // none overlaps another (each is filled with its own byte, then all are checked).
      std::vector<AlignedBytes> bufs;
      std::vector<size_t> sizes;
      for (int i = 0; i < 300; ++i) sizes.push_back(size_t(1 + (i * 7919) % (300 << 10)));
      for (size_t n : sizes) {
        bufs.emplace_back(n);
        const AlignedBytes& b = bufs.back();
        REQUIRE(b.size() == n);
        CHECK(reinterpret_cast<uintptr_t>(b.data()) % 64 == 0);
        bool zero = true;
        for (size_t k = 0; k < n + AlignedBytes::kPad; ++k) zero = zero && b.data()[k] == 0;
        CHECK(zero);
      }
      for (size_t i = 0; i < bufs.size(); ++i) std::memset(bufs[i].data(), int(i % 251) + 1, bufs[i].size());
      bool intact = true;
      for (size_t i = 0; i < bufs.size(); ++i)
        for (size_t k = 0; k < bufs[i].size(); k += 97) intact = intact && bufs[i].data()[k] == uint8_t(i % 251 + 1);
      CHECK(intact);
      // ~45 MiB of buffers: more than one shared slab, far fewer slabs than buffers.
      CHECK(aligned_bytes_slabs().slabs >= s0.slabs + 1);
      CHECK(aligned_bytes_slabs().slabs <= s0.slabs + 4);
      // A buffer larger than a quarter slab gets a slab of its own, 2 MiB aligned.
      AlignedBytes big(size_t(20) << 20);
      CHECK(reinterpret_cast<uintptr_t>(big.data()) % (size_t(2) << 20) == 0);
      // Moving a buffer moves its ownership (freed once, by the new owner).
      AlignedBytes moved = std::move(bufs.front());
      CHECK(moved.size() == sizes.front());
    }
    // All freed: at most the one current slab stays, ready for reuse.
    CHECK(aligned_bytes_slabs().slabs <= std::max<size_t>(s0.slabs, 1));
  }

  TEST_CASE("pack/unpack round trip is exact for every layout, odd row counts, G = 64 and 256") {
    for (const char* layout : kLayouts)
      for (int G : {64, 128, 256})
        for (int64_t d_out : {1, 3, 17, 65}) {
          const PackedDesc d = make_desc(layout, G, d_out, 2 * 256);
          CAPTURE(layout);
          CAPTURE(G);
          CAPTURE(d_out);
          const std::vector<int8_t> codes = random_codes(d, 11 + d_out);
          const std::vector<float> scales = random_scales(d, 7, false);
          const PackedMatrix m = pack_matrix(d, codes.data(), scales.data());
          std::vector<int8_t> c2(codes.size(), 99);
          std::vector<float> s2(scales.size(), -1.0f);
          unpack_matrix(m, c2.data(), s2.data());
          CHECK(c2 == codes);
          CHECK(s2 == scales);
        }
  }

  TEST_CASE("packed sizes: bits per weight of each layout") {
    auto bytes = [](const char* layout, int G) {
      PackedDesc d = make_desc(layout, G, 16, 1024);
      std::vector<int8_t> c(size_t(16 * 1024), 0);
      std::vector<float> s(size_t(16 * 1024 / G), 1.0f);
      return int64_t(pack_matrix(d, c.data(), s.data()).codes.size());
    };
    CHECK(bytes("ternary2", 64) == 16 * 1024 / 4);
    CHECK(bytes("int4", 64) == 16 * 1024 / 2);
    CHECK(bytes("ternary5", 64) == 16 * 16 * 13);   // 1.625 bits
    CHECK(bytes("ternary5", 256) == 16 * 4 * 52);   // 1.625 bits
    CHECK(bytes("mixed2", 64) == 8 * 512 + 8 * 256);
    CHECK(bytes("mixed8", 64) == 2 * 512 + 14 * 256);
  }

  TEST_CASE("byte layouts are the documented ones") {
    // ternary2: weight j + 16k in bits [2k, 2k+2) of byte j, as t + 1.
    PackedDesc d = make_desc("ternary2", 64, 1, 64);
    std::vector<int8_t> c(64, 0);
    c[0] = 1;    // byte 0 bits 0-1 = 2
    c[16] = -1;  // byte 0 bits 2-3 = 0
    c[49] = 1;   // byte 1 bits 6-7 = 2
    std::vector<float> s(1, 1.0f);
    PackedMatrix m = pack_matrix(d, c.data(), s.data());
    CHECK(m.codes.data()[0] == (2 | 0 << 2 | 1 << 4 | 1 << 6));
    CHECK(m.codes.data()[1] == (1 | 1 << 2 | 1 << 4 | 2 << 6));
    CHECK(reinterpret_cast<const uint16_t*>(m.scales.data())[0] == 0x3c00);
    // int4: byte j = (w[j] + 8) | (w[j + 32] + 8) << 4.
    d = make_desc("int4", 64, 1, 64);
    std::fill(c.begin(), c.end(), 0);
    c[0] = -7;
    c[32] = 7;
    m = pack_matrix(d, c.data(), s.data());
    CHECK(m.codes.data()[0] == (1 | 15 << 4));
    CHECK(m.codes.data()[1] == 0x88);
    // ternary5: every one of the 243 digit patterns decodes back (5 weights per byte).
    d = make_desc("ternary5", 64, 1, 64);
    for (int v = 0; v < 243; ++v) {
      std::fill(c.begin(), c.end(), 0);
      int r = v;
      for (int k = 4; k >= 0; --k) {
        c[size_t(k * 13)] = int8_t(r % 3 - 1);  // byte 0 holds weights 0, 13, 26, 39, 52
        r /= 3;
      }
      m = pack_matrix(d, c.data(), s.data());
      CHECK(m.codes.data()[0] == (v * 256 + 242) / 243);
      std::vector<int8_t> back(64);
      decode_group_ref(RowKind::Ternary5, 64, m.codes.data(), back.data());
      CHECK(back == c);
    }
  }

  TEST_CASE("pack rejects bad input with a clear error") {
    PackedDesc d = make_desc("mixed2", 64, 2, 64);
    std::vector<int8_t> c(128, 0);
    std::vector<float> s(2, 1.0f);
    c[0] = 7;  // row 0 is int4: fine
    CHECK_NOTHROW(pack_matrix(d, c.data(), s.data()));
    c[64] = 2;  // row 1 is ternary
    CHECK_THROWS_WITH_AS(pack_matrix(d, c.data(), s.data(), "layers.0.q_proj"),
                         doctest::Contains("layers.0.q_proj: row 1 column 0: code 2 out of range"), Error);
    c[64] = 0;
    c[0] = -8;  // the int4 grid is symmetric
    CHECK_THROWS_AS(pack_matrix(d, c.data(), s.data()), Error);
    c[0] = 0;
    s[1] = 0.1f;  // not an fp16 value
    CHECK_THROWS_WITH_AS(pack_matrix(d, c.data(), s.data()), doctest::Contains("not a positive finite fp16"), Error);
    s[1] = 1.0f;
    d.G = 32;
    CHECK_THROWS_AS(pack_matrix(d, c.data(), s.data()), Error);
    d = make_desc("int4", 64, 2, 96);
    CHECK_THROWS_WITH_AS(pack_matrix(d, c.data(), s.data()), doctest::Contains("not divisible"), Error);
    CHECK_THROWS_AS(parse_layout("mixed1"), Error);
    CHECK_THROWS_AS(parse_layout("int3"), Error);
    CHECK(parse_layout("mixed8").P == 8);
  }

  TEST_CASE("quantize_a8: definition on a small example and every tier bit-exact") {
    // G = 32: max|x| = 12.7 -> s = 0.1; 0.05 / 0.1 rounds half to even (0), 0.15 -> 2 (1.5 -> 2).
    std::vector<float> x(32, 0.0f);
    x[0] = 12.7f;
    x[1] = -6.35f;
    x[2] = 0.25f;
    std::vector<int8_t> q(32);
    std::vector<float> s(1);
    quantize_a8_ref(x.data(), 1, 32, 32, q.data(), s.data());
    CHECK(s[0] == 12.7f / 127.0f);
    CHECK(q[0] == 127);
    CHECK(q[1] == int8_t(std::nearbyint(-6.35f / s[0])));
    CHECK(q[2] == int8_t(std::nearbyint(0.25f / s[0])));
    // All-zero group: scale eps / 127, codes 0.
    std::vector<float> z(32, 0.0f);
    quantize_a8_ref(z.data(), 1, 32, 32, q.data(), s.data());
    CHECK(s[0] == 1e-5f / 127.0f);
    CHECK(q[5] == 0);

    const int64_t N = 5, C = 512;
    Rng rng(3);
    std::vector<float> xs(size_t(N * C));
    for (float& v : xs) v = rng.normal() * 2.0f;
    xs[7] = 0.5f * 3.0f;  // some exact ties after scaling are likely elsewhere; keep random
    for (int G : {64, 256}) {
      std::vector<int8_t> q_ref(xs.size()), q_t(xs.size());
      std::vector<float> s_ref(size_t(N * C / G)), s_t(s_ref.size());
      quantize_a8_ref(xs.data(), N, C, G, q_ref.data(), s_ref.data());
      for (QTier t : all_tiers()) {
        if (!tier_runs(t)) continue;
        const std::string tier = qtier_name(t);
              CAPTURE(tier);
        quantize_a8_tier(t, xs.data(), N, C, G, q_t.data(), s_t.data());
        CHECK(q_t == q_ref);
        CHECK(s_t == s_ref);
      }
    }
  }

  TEST_CASE("qgemm: every tier exactly equals the reference on integer sums, all layouts and shapes") {
    const int64_t d_in = 512;
    for (const char* layout : kLayouts)
      for (int G : {64, 256})
        for (int64_t d_out : {1, 3, 17, 65})
          for (int64_t N : {1, 3, 17}) {
            CAPTURE(layout);
            CAPTURE(G);
            CAPTURE(d_out);
            CAPTURE(N);
            check_tiers_integer_sums(make_desc(layout, G, d_out, d_in), N, uint64_t(d_out * 31 + N),
                                     uint64_t(N * 7 + G));
          }
    for (QTier t : all_tiers()) tier_runs(t);
  }

  TEST_CASE("qgemm: decode shapes (N = 1..5), row widths that end mid-step, every G: tiers equal the definition") {
    // The AVX-512 decode path works on steps of 4 blocks (256 weights) and lays activations out
    // per step: widths of 1..7 blocks end mid-step (masked loads, zero lanes), G = 128/256 put
    // 2 or 1 groups in a step, G = 192 takes the per-group path. d_out = 1 and 9 put the last
    // row at the very end of the code buffer.
    for (const char* layout : kLayouts)
      for (int G : {64, 128, 192, 256})
        for (int64_t blocks : {1, 2, 3, 4, 5, 6, 7, 12}) {
          const int64_t d_in = 64 * blocks;
          if (d_in % G != 0) continue;
          for (int64_t d_out : {1, 9})
            for (int64_t N : {1, 2, 3, 4, 5}) {
              CAPTURE(layout);
              CAPTURE(G);
              CAPTURE(d_in);
              CAPTURE(d_out);
              CAPTURE(N);
              check_tiers_integer_sums(make_desc(layout, G, d_out, d_in), N, uint64_t(d_in * 13 + d_out * 5 + N),
                                       uint64_t(N * 11 + d_in));
            }
        }
  }

  TEST_CASE("qgemm: decode shapes with random scales within a tight tolerance of the reference") {
    // Per-group scales differ inside a step (G = 64: 4 groups, G = 128: 2), so a wrong lane to
    // group mapping of s_w or s_x shows here even where the integer test (scales 1) cannot see it.
    for (const char* layout : kLayouts)
      for (int G : {64, 128, 256})
        for (int64_t N : {1, 2, 4}) {
          const int64_t d_in = 768, d_out = 11;
          CAPTURE(layout);
          CAPTURE(G);
          CAPTURE(N);
          check_tiers_random_scales(make_desc(layout, G, d_out, d_in), N, uint64_t(G * 7 + N), uint64_t(N + 40),
                                    uint64_t(G + N * 5));
        }
  }

  TEST_CASE("qgemm: decode on matrices too large for the quad kernels (row by row) equals the reference and the quads") {
    // The AVX-512 decode walks rows one at a time above 128 KiB of codes (kQuadMaxBytes) and in
    // quads below; 1031 rows x 1024 columns is above it for every layout. Scales 1: the exact
    // integer sums; random scales: the tolerance of the other tests. Both GFNI variants.
    for (const char* layout : kLayouts)
      for (int G : {64, 256}) {
        CAPTURE(layout);
        CAPTURE(G);
        const PackedDesc d = make_desc(layout, G, 1031, 1024);
        const std::vector<int8_t> codes = random_codes(d, uint64_t(G + 3));
        const PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
        REQUIRE(m.codes.size() > (size_t(128) << 10));
        Rng rng(uint64_t(G) + 1);
        std::vector<int8_t> qx(1024);
        for (int8_t& v : qx) v = int8_t(int(rng.below(255)) - 127);
        std::vector<float> sx(size_t(1024 / G), 1.0f), y_ref(1031), y(1031);
        qgemm_ref(m, qx.data(), sx.data(), 1, y_ref.data());
        for (int64_t i = 0; i < 1031; i += 257) {  // the reference against the definition, spot rows
          int64_t acc = 0;
          for (int64_t k = 0; k < 1024; ++k) acc += int64_t(codes[size_t(i * 1024 + k)]) * qx[size_t(k)];
          CHECK(y_ref[size_t(i)] == float(acc));
        }
        for_each_variant([&](QTier t) {
          std::fill(y.begin(), y.end(), NAN);
          qgemm_tier(t, m, qx.data(), sx.data(), 1, y.data());
          CHECK(y == y_ref);
        });
        check_tiers_random_scales(d, 1, uint64_t(G + 5), uint64_t(G + 6), uint64_t(G + 7));
        // The same rows in a matrix small enough for the quads: the same bits, random scales.
        const PackedDesc ds = make_desc(layout, G, 96, 1024);
        const std::vector<float> scales = random_scales(d, uint64_t(G + 8), false);
        const PackedMatrix big = with_tiles(pack_matrix(d, codes.data(), scales.data()));
        const PackedMatrix small = with_tiles(pack_matrix(ds, codes.data(), scales.data()));
        REQUIRE(small.codes.size() < (size_t(64) << 10));
        std::vector<float> x(1024), y_small(96);
        for (float& v : x) v = rng.normal();
        quantize_a8_ref(x.data(), 1, 1024, G, qx.data(), sx.data());
        for_each_variant([&](QTier t) {
          qgemm_tier(t, big, qx.data(), sx.data(), 1, y.data());
          qgemm_tier(t, small, qx.data(), sx.data(), 1, y_small.data());
          CHECK(std::memcmp(y.data(), y_small.data(), sizeof(float) * 96) == 0);
        });
      }
  }

  TEST_CASE("qgemm: extreme codes and activations do not overflow the int16 pair sums") {
    for (const char* layout : kLayouts)
      for (int G : {64, 256}) {
        CAPTURE(layout);
        CAPTURE(G);
        const PackedDesc d = make_desc(layout, G, 9, 512);
        const std::vector<int8_t> codes = random_codes(d, 0, true);
        const PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
        for (int sign : {1, -1}) {
          std::vector<int8_t> qx(512, int8_t(127 * sign));
          std::vector<float> sx(512 / G, 1.0f), y_ref(9), y(9);
          qgemm_ref(m, qx.data(), sx.data(), 1, y_ref.data());
          CHECK(y_ref[0] == float(sign * 127 * 512 * (std::string(layout) == "ternary2" ||
                                                      std::string(layout) == "ternary5" ? 1 : 7)));
          for_each_variant([&](QTier t) {
            qgemm_tier(t, m, qx.data(), sx.data(), 1, y.data());
            CHECK(y == y_ref);
          });
        }
      }
  }

  TEST_CASE("qgemm: float outputs with random scales within a tight tolerance of the reference") {
    // Tiers sum the per-group products in a different order (SIMD lanes), so results differ
    // from the reference by fp32 rounding only: bound by 1e-5 * sum of |terms|.
    const int64_t d_in = 1024;
    for (const char* layout : kLayouts)
      for (int G : {64, 256})
        for (int64_t N : {1, 3, 17}) {
          CAPTURE(layout);
          CAPTURE(G);
          CAPTURE(N);
          const int64_t d_out = 17;
          check_tiers_random_scales(make_desc(layout, G, d_out, d_in), N, uint64_t(G + N), uint64_t(N),
                                    uint64_t(G * 3 + N));
        }
  }

  TEST_CASE("qgemm_multi: several matrices on one input equal qgemm per matrix, decode and prefill") {
    // Row ranges of the threads cross matrix boundaries; d_out not a multiple of 8 on purpose.
    const int64_t d_in = 1024;
    for (const char* layout : {"mixed8", "ternary2", "int4"}) {
      CAPTURE(layout);
      std::vector<PackedMatrix> Ws;
      for (int64_t d_out : {1000, 517, 300}) {
        const PackedDesc d = make_desc(layout, 64, d_out, d_in);
        Ws.push_back(with_tiles(pack_matrix(d, random_codes(d, uint64_t(d_out)).data(), random_scales(d, 3, false).data())));
      }
      for (int64_t N : {1, 2, 4, 6}) {
        CAPTURE(N);
        Rng rng{uint64_t(N)};
        std::vector<int8_t> qx(size_t(N * d_in));
        for (int8_t& v : qx) v = int8_t(int(rng.below(255)) - 127);
        std::vector<float> sx(size_t(N * d_in / 64));
        for (float& v : sx) v = 0.01f + 0.1f * rng.uniform();
        std::vector<std::vector<float>> want(3), got(3);
        const PackedMatrix* W[3];
        float* Y[3];
        for (int m = 0; m < 3; ++m) {
          want[size_t(m)].assign(size_t(N * Ws[size_t(m)].desc.d_out), 0.0f);
          got[size_t(m)].assign(want[size_t(m)].size(), NAN);
          qgemm(Ws[size_t(m)], qx.data(), sx.data(), N, want[size_t(m)].data());
          W[m] = &Ws[size_t(m)];
          Y[m] = got[size_t(m)].data();
        }
        qgemm_multi(W, Y, 3, qx.data(), sx.data(), N);
        for (int m = 0; m < 3; ++m) CHECK(got[size_t(m)] == want[size_t(m)]);
      }
    }
  }

  TEST_CASE("qgemm: threaded dispatch over many rows equals the reference") {
    // Large enough to take the OpenMP path; row ranges split on multiples of 8.
    const PackedDesc d = make_desc("mixed8", 64, 8 * 67 + 5, 1024);
    const std::vector<int8_t> codes = random_codes(d, 5);
    const PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
    Rng rng(9);
    std::vector<int8_t> qx(1024);
    for (int8_t& v : qx) v = int8_t(int(rng.below(255)) - 127);
    std::vector<float> sx(16, 1.0f), y_ref(size_t(d.d_out)), y(size_t(d.d_out));
    qgemm_ref(m, qx.data(), sx.data(), 1, y_ref.data());
    qgemm(m, qx.data(), sx.data(), 1, y.data());
    CHECK(y == y_ref);
    MESSAGE("qgemm active tier: " << std::string(qtier_name(qtier_active())));
  }
  TEST_CASE("qgemm GEMM path (prefill): equal to the reference for every layout, G, odd N and row counts") {
    // The unpacked-tile GEMM (qgemm_gemm.h): tiles of 32 rows (odd counts leave partial tiles),
    // blocks of 12 tokens (odd N leaves a zero-padded block). All scales 1: outputs are the
    // exact integer sums, equal to an independent definition and to qgemm_ref. Random fp16
    // scales: within 1e-5 * sum |terms| of qgemm_ref (fused multiply-add per group on x86; the
    // ARM tiers (16-row tiles, 4-token blocks) multiply then add: bitwise equal).
    // qgemm_tier must route N >= kQgemmGemmMinTokens to this path (bitwise the same result).
    for_each_gemm_tier([&](QTier t) {
      const int64_t d_in = 768;
      for (const char* layout : kLayouts)
        for (int G : {64, 128, 256})
          for (int64_t d_out : {1, 33, 67})
            for (int64_t N : {1, 8, 13, 512}) {
              if (N == 512 && d_out != 67) continue;  // one large case per layout and G keeps the suite fast
              CAPTURE(layout);
              CAPTURE(G);
              CAPTURE(d_out);
              CAPTURE(N);
              const PackedDesc d = make_desc(layout, G, d_out, d_in);
              const std::vector<int8_t> codes = random_codes(d, uint64_t(d_out * 131 + N + G));
              Rng rng(uint64_t(N * 17 + G + d_out));
              std::vector<int8_t> qx(size_t(N * d_in));
              for (int8_t& v : qx) v = int8_t(int(rng.below(255)) - 127);
              // Exact: all scales 1.
              const PackedMatrix m1 = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
              std::vector<float> sx1(size_t(N * d_in / G), 1.0f);
              std::vector<float> want(size_t(N * d_out)), y_ref(want.size()), y(want.size(), NAN);
              for (int64_t n = 0; n < N; ++n)
                for (int64_t i = 0; i < d_out; ++i) {
                  int64_t acc = 0;
                  for (int64_t k = 0; k < d_in; ++k)
                    acc += int64_t(codes[size_t(i * d_in + k)]) * qx[size_t(n * d_in + k)];
                  want[size_t(n * d_out + i)] = float(acc);
                }
              qgemm_ref(m1, qx.data(), sx1.data(), N, y_ref.data());
              CHECK(y_ref == want);
              qgemm_gemm_tier(t, m1, qx.data(), sx1.data(), N, y.data());
              CHECK(y == want);
              // Random scales: tolerance against the reference.
              const PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, uint64_t(N + G), false).data()));
              std::vector<float> sx(size_t(N * d_in / G));
              for (float& v : sx) v = 0.001f + 0.02f * rng.uniform();
              qgemm_ref(m, qx.data(), sx.data(), N, y_ref.data());
              std::fill(y.begin(), y.end(), NAN);
              qgemm_gemm_tier(t, m, qx.data(), sx.data(), N, y.data());
              std::vector<int8_t> cw(codes.size());
              std::vector<float> sw(size_t(d_out * d_in / G));
              unpack_matrix(m, cw.data(), sw.data());
              int bad = 0;
              for (int64_t n = 0; n < N; ++n)
                for (int64_t i = 0; i < d_out; ++i) {
                  double mag = 0.0;
                  for (int64_t g = 0; g < d_in / G; ++g) {
                    int64_t dot_abs = 0;
                    for (int64_t k = g * G; k < (g + 1) * G; ++k)
                      dot_abs += std::abs(int(cw[size_t(i * d_in + k)]) * int(qx[size_t(n * d_in + k)]));
                    mag += double(sw[size_t(i * (d_in / G) + g)]) * sx[size_t(n * (d_in / G) + g)] * double(dot_abs);
                  }
                  bad += !(std::fabs(double(y[size_t(n * d_out + i)]) - double(y_ref[size_t(n * d_out + i)])) <=
                           1e-5 * mag + 1e-30);
                }
              CHECK(bad == 0);
              // The ARM tiers multiply then add per group in order (qgemm_gemm_arm.h): the
              // reference's bits for any scales.
              if (t == QTier::Neon || t == QTier::Dotprod)
                CHECK(std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) == 0);
              // The dispatch routes prefill-sized calls here.
              if (N >= kQgemmGemmMinTokens) {
                std::vector<float> y_tier(y.size(), NAN);
                qgemm_tier(t, m, qx.data(), sx.data(), N, y_tier.data());
                CHECK(std::memcmp(y_tier.data(), y.data(), y.size() * sizeof(float)) == 0);
              }
            }
    });
  }

  TEST_CASE("qgemm: with its packed rows released, the AVX2 decode copy alone gives the same products and rows") {
    // qgemm_release_rows frees codes and scales; one token, a few (the tile kernels per token) and
    // prefill (the GEMM unpacking the decode tiles) must still give the exact integer sums, and
    // dequantize_row (the embedding lookup) the same floats. d_out 67: a partial last chunk.
    if (!qtier_supported(QTier::Avx2)) {
      MESSAGE("skipping: no AVX2 tier on this CPU / build");
      return;
    }
    const bool saved = qgemm_avx2_set_tiles(true);
    for (const char* layout : {"ternary2", "int4", "mixed2", "mixed8"})
      for (int G : {64, 192, 256}) {
        CAPTURE(layout);
        CAPTURE(G);
        const int64_t d_in = 768, d_out = 67;
        const PackedDesc d = make_desc(layout, G, d_out, d_in);
        const std::vector<int8_t> codes = random_codes(d, uint64_t(G * 3 + d_out));
        PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, uint64_t(G), false).data()));
        REQUIRE(bool(m.tiles));
        std::vector<float> rows_before(size_t(d_out * d_in)), rows_after(rows_before.size());
        for (int64_t i = 0; i < d_out; ++i) dequantize_row(m, i, rows_before.data() + i * d_in);
        const int64_t bytes_before = m.stream_bytes();
        qgemm_release_rows(m);
        CHECK(m.codes.size() == 0);
        CHECK(m.scales.size() == 0);
        CHECK(m.stream_bytes() >= bytes_before);  // the copy: the same bytes plus a partial chunk's padding
        for (int64_t i = 0; i < d_out; ++i) dequantize_row(m, i, rows_after.data() + i * d_in);
        CHECK(std::memcmp(rows_before.data(), rows_after.data(), rows_before.size() * sizeof(float)) == 0);
        const PackedMatrix exact = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
        PackedMatrix released = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
        qgemm_release_rows(released);
        for (int64_t N : {1, 3, 13}) {
          CAPTURE(N);
          Rng rng(uint64_t(N + G));
          std::vector<int8_t> qx(size_t(N * d_in));
          for (int8_t& v : qx) v = int8_t(int(rng.below(255)) - 127);
          std::vector<float> sx(size_t(N * d_in / G), 1.0f), y_ref(size_t(N * d_out)), y(y_ref.size(), NAN);
          qgemm_ref(exact, qx.data(), sx.data(), N, y_ref.data());
          qgemm_tier(QTier::Avx2, released, qx.data(), sx.data(), N, y.data());
          CHECK(y == y_ref);
        }
      }
    // Mostly padding (P 100: chunks of 800 rows for 67): no copy, the row kernels; released rows
    // stay (qgemm_release_rows needs a copy).
    PackedDesc d = make_desc("mixed8", 64, 67, 256);
    d.P = 100;
    PackedMatrix m = with_tiles(pack_matrix(d, random_codes(d, 3).data(), random_scales(d, 1, true).data()));
    CHECK(!m.tiles);
    qgemm_release_rows(m);
    CHECK(m.codes.size() > 0);
    qgemm_avx2_set_tiles(saved);
  }

  TEST_CASE("qgemm GEMM path: extreme codes and activations, and the threaded split, stay exact") {
    // The AVX2 micro-kernel adds vpmaddubsw pair sums in int16 for up to 64 steps (ternary
    // tiles) or 8 steps (tiles with an int4 row) before widening: the largest codes (+1 / +7,
    // i.e. offset codes 2 / 15) against activations of +-127 fill those lanes to 32,512 and
    // 30,480. One step more, or a wrong run length, wraps and changes the result (18 failed
    // assertions with an int4 run of 16).
    for_each_gemm_tier([&](QTier t) {
      for (const char* layout : kLayouts)
        for (int G : {64, 128, 256}) {
          CAPTURE(layout);
          CAPTURE(G);
          const PackedDesc d = make_desc(layout, G, 37, 512);
          const std::vector<int8_t> codes = random_codes(d, 0, true);
          const PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
          for (int sign : {1, -1}) {
            const int64_t N = 9;
            std::vector<int8_t> qx(size_t(N * 512), int8_t(127 * sign));
            std::vector<float> sx(size_t(N * 512 / G), 1.0f), y_ref(size_t(N * 37)), y(y_ref.size());
            qgemm_ref(m, qx.data(), sx.data(), N, y_ref.data());
            qgemm_gemm_tier(t, m, qx.data(), sx.data(), N, y.data());
            CHECK(y == y_ref);
            const bool int4_row0 = m.row_kind(0) == RowKind::Int4;
            CHECK(y_ref[0] == float(sign * 127 * 512 * (int4_row0 ? 7 : 1)));
          }
        }
      // Many rows and tokens: the OpenMP split over (row tile, token chunk) items.
      const PackedDesc d = make_desc("mixed8", 64, 8 * 67 + 5, 1024);
      const std::vector<int8_t> codes = random_codes(d, 5);
      const PackedMatrix m = with_tiles(pack_matrix(d, codes.data(), random_scales(d, 1, true).data()));
      const int64_t N = 29;
      Rng rng(9);
      std::vector<int8_t> qx(size_t(N * 1024));
      for (int8_t& v : qx) v = int8_t(int(rng.below(255)) - 127);
      std::vector<float> sx(size_t(N * 16), 1.0f), y_ref(size_t(N * d.d_out)), y(y_ref.size());
      qgemm_ref(m, qx.data(), sx.data(), N, y_ref.data());
      qgemm(m, qx.data(), sx.data(), N, y.data());
      CHECK(y == y_ref);
      qgemm_gemm_tier(t, m, qx.data(), sx.data(), N, y.data());
      CHECK(y == y_ref);
    });
  }
}

