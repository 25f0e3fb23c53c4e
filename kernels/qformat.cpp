// Packing and unpacking of the block formats in qformat.h (scalar; runs once per model).
#include "kernels/qformat.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "core/error.h"
#include "core/half.h"

namespace razor {

// ---- AlignedBytes ----

namespace {

constexpr size_t kHuge = size_t(2) << 20;
// A slab's size unless one buffer needs more. Requests above a quarter of it get a slab of
// their own (so a big matrix never retires a mostly empty shared slab).
constexpr size_t kSlabBytes = size_t(32) << 20;

}  // namespace

struct AlignedBytes::Slab {
  uint8_t* base = nullptr;
  size_t cap = 0, used = 0;
  size_t live = 0;  // buffers not yet freed
};

namespace {

std::mutex g_slab_mu;
AlignedBytes::Slab* g_current = nullptr;  // the slab new small buffers are carved from
SlabStats g_stats;

}  // namespace

// One slab of at least `bytes` (a multiple of 2 MiB), or nullptr when out of memory.
static AlignedBytes::Slab* new_slab(size_t bytes) {
  const size_t cap = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, cap);
  if (!p) return nullptr;
#ifdef MADV_HUGEPAGE
  madvise(p, cap, MADV_HUGEPAGE);  // a hint: failure is harmless
#endif
  auto* s = new AlignedBytes::Slab;
  s->base = static_cast<uint8_t*>(p);
  s->cap = cap;
  g_stats.slabs += 1;
  g_stats.bytes += cap;
  return s;
}

static void delete_slab(AlignedBytes::Slab* s) {
  g_stats.slabs -= 1;
  g_stats.bytes -= s->cap;
  std::free(s->base);
  delete s;
}

AlignedBytes::AlignedBytes(size_t bytes) : size_(bytes) {
  const size_t n = (bytes + kPad + 63) / 64 * 64;
  uint8_t* p = nullptr;
  Slab* slab = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_slab_mu);
    if (n > kSlabBytes / 4) {
      slab = new_slab(n);
    } else {
      if (!g_current || g_current->cap - g_current->used < n) {
        if (g_current && g_current->live == 0) delete_slab(g_current);
        g_current = new_slab(kSlabBytes);
      }
      slab = g_current;
    }
    if (slab) {
      p = slab->base + slab->used;
      slab->used += n;
      slab->live += 1;
    }
  }
  if (!p) fail("out of memory allocating %zu bytes of packed weights", bytes);
  std::memset(p, 0, n);
  p_ = std::unique_ptr<uint8_t, Free>(p, Free{slab});
}

void AlignedBytes::Free::operator()(uint8_t*) const {
  std::lock_guard<std::mutex> lock(g_slab_mu);
  if (--slab->live > 0) return;
  if (slab == g_current) {
    slab->used = 0;  // empty again: reuse it for the next buffers
    return;
  }
  delete_slab(slab);
}

SlabStats aligned_bytes_slabs() {
  std::lock_guard<std::mutex> lock(g_slab_mu);
  return g_stats;
}

// ---- geometry ----

int64_t group_code_bytes(RowKind kind, int G) {
  switch (kind) {
    case RowKind::Ternary2: return G / 4;
    case RowKind::Int4: return G / 2;
    case RowKind::Ternary5: return (G + 4) / 5;
  }
  return 0;
}

int64_t row_code_bytes(RowKind kind, int G, int64_t d_in) { return d_in / G * group_code_bytes(kind, G); }

void check_packed_desc(const PackedDesc& d, const char* what) {
  RZ_CHECK(packed_group_supported(d.G), "%s: group size %d not supported (use 64, 128 or 256)",
           what, d.G);
  RZ_CHECK(d.d_out >= 1 && d.d_in >= 1, "%s: empty matrix [%lld, %lld]", what, (long long)d.d_out,
           (long long)d.d_in);
  RZ_CHECK(d.d_in % d.G == 0, "%s: d_in = %lld is not divisible by the group size %d", what, (long long)d.d_in,
           d.G);
  RZ_CHECK(d.d_out <= (int64_t(1) << 40) && d.d_in <= (int64_t(1) << 30), "%s: matrix too large", what);
  switch (d.layout) {
    case PackedLayout::Ternary2:
    case PackedLayout::Ternary5:
    case PackedLayout::Int4: RZ_CHECK(d.P == 0, "%s: P = %d is only meaningful for the mixed layout", what, d.P); break;
    case PackedLayout::Mixed:
      RZ_CHECK(packed_period_supported(d.P), "%s: mixed layout needs P >= 2 (got %d; P = 1 is int4)", what, d.P);
      break;
    default: fail("%s: unknown packed layout %d", what, int(d.layout));
  }
}

int64_t PackedMatrix::row_offset(int64_t i) const {
  const int G = desc.G;
  const int64_t d_in = desc.d_in;
  switch (desc.layout) {
    case PackedLayout::Ternary2:
    case PackedLayout::Ternary5:
    case PackedLayout::Int4: return i * row_code_bytes(row_kind(0), G, d_in);
    case PackedLayout::Mixed: break;
  }
  const int64_t b4 = row_code_bytes(RowKind::Int4, G, d_in), b2 = row_code_bytes(RowKind::Ternary2, G, d_in);
  const int64_t s = i / desc.P, r = i % desc.P;
  return s * (b4 + (desc.P - 1) * b2) + (r == 0 ? 0 : b4 + (r - 1) * b2);
}

static int64_t total_code_bytes(const PackedMatrix& m) {
  const PackedDesc& d = m.desc;
  const int64_t last = d.d_out - 1;
  return m.row_offset(last) + row_code_bytes(m.row_kind(last), d.G, d.d_in);
}

// ---- ternary5 digit coding ----

static uint8_t t5_encode(const int* d /* five digits in {0,1,2}, d[0] most significant */) {
  int v = 0;
  for (int k = 0; k < 5; ++k) v = v * 3 + d[k];
  return uint8_t((v * 256 + 242) / 243);  // ceil(v * 256 / 243)
}

static int t5_digit(uint8_t b, int k) {
  static const int pow3[5] = {1, 3, 9, 27, 81};
  unsigned x = (unsigned(b) * pow3[k]) & 255u;
  return int((x * 3) >> 8);
}

// ---- encode / decode one group ----

static void encode_group(RowKind kind, int G, const int8_t* q, uint8_t* out) {
  switch (kind) {
    case RowKind::Ternary2:
      for (int b = 0; b < G / 64; ++b) {
        uint8_t* o = out + 16 * b;
        const int8_t* w = q + 64 * b;
        for (int j = 0; j < 16; ++j) {
          unsigned v = 0;
          for (int k = 0; k < 4; ++k) v |= unsigned(w[j + 16 * k] + 1) << (2 * k);
          o[j] = uint8_t(v);
        }
      }
      break;
    case RowKind::Int4:
      for (int b = 0; b < G / 64; ++b) {
        uint8_t* o = out + 32 * b;
        const int8_t* w = q + 64 * b;
        for (int j = 0; j < 32; ++j) o[j] = uint8_t((w[j] + 8) | ((w[j + 32] + 8) << 4));
      }
      break;
    case RowKind::Ternary5: {
      const int nb = (G + 4) / 5;
      for (int j = 0; j < nb; ++j) {
        int d[5];
        for (int k = 0; k < 5; ++k) {
          int w = k * nb + j;
          d[k] = w < G ? q[w] + 1 : 1;
        }
        out[j] = t5_encode(d);
      }
      break;
    }
  }
}

void decode_group_ref(RowKind kind, int G, const uint8_t* in, int8_t* q) {
  switch (kind) {
    case RowKind::Ternary2:
      for (int w = 0; w < G; ++w) {
        int b = w / 64, r = w % 64;
        q[w] = int8_t(((in[16 * b + r % 16] >> (2 * (r / 16))) & 3) - 1);
      }
      break;
    case RowKind::Int4:
      for (int w = 0; w < G; ++w) {
        int b = w / 64, r = w % 64;
        uint8_t byte = in[32 * b + r % 32];
        q[w] = int8_t((r < 32 ? byte & 15 : byte >> 4) - 8);
      }
      break;
    case RowKind::Ternary5: {
      const int nb = (G + 4) / 5;
      for (int w = 0; w < G; ++w) q[w] = int8_t(t5_digit(in[w % nb], w / nb) - 1);
      break;
    }
  }
}

// ---- whole matrices ----

PackedMatrix pack_matrix(const PackedDesc& desc, const int8_t* codes, const float* scales, const char* what) {
  check_packed_desc(desc, what);
  PackedMatrix m;
  m.desc = desc;
  const int G = desc.G;
  const int64_t ng = m.groups();
  // Validate everything before allocating the (possibly large) buffers: rows in parallel, then
  // the first bad row again with the messages.
  const bool par = desc.d_out * desc.d_in >= (int64_t(1) << 16);
  // report: throw at the row's first bad code or scale, naming it.
  auto check_row = [&](int64_t i, bool report) {
    const int lim = m.row_kind(i) == RowKind::Int4 ? 7 : 1;
    const int8_t* q = codes + i * desc.d_in;
    bool ok = true;
    for (int64_t k = 0; k < desc.d_in; ++k) {
      const bool good = q[k] >= -lim && q[k] <= lim;
      if (!good && report)
        fail("%s: row %lld column %lld: code %d out of range [-%d, %d] for a %s row", what, (long long)i,
             (long long)k, int(q[k]), lim, lim, lim == 7 ? "int4" : "ternary");
      ok &= good;
    }
    for (int64_t g = 0; g < ng; ++g) {
      const float s = scales[i * ng + g];
      const bool good = s > 0.0f && s <= 65504.0f && round_to_f16(s) == s;
      if (!good && report)
        fail("%s: row %lld group %lld: scale %g is not a positive finite fp16 value", what, (long long)i,
             (long long)g, double(s));
      ok &= good;
    }
    return ok;
  };
  int64_t bad = desc.d_out;
#pragma omp parallel for schedule(static) reduction(min : bad) if (par)
  for (int64_t i = 0; i < desc.d_out; ++i)
    if (!check_row(i, false)) bad = std::min(bad, i);
  if (bad < desc.d_out) check_row(bad, true);
  m.codes = AlignedBytes(size_t(total_code_bytes(m)));
  m.scales = AlignedBytes(size_t(desc.d_out * ng) * 2);
  uint16_t* sc = reinterpret_cast<uint16_t*>(m.scales.data());
#pragma omp parallel for schedule(static) if (par)
  for (int64_t i = 0; i < desc.d_out; ++i) {
    const RowKind kind = m.row_kind(i);
    const int64_t gb = group_code_bytes(kind, G);
    uint8_t* row = m.codes.data() + m.row_offset(i);
    for (int64_t g = 0; g < ng; ++g) {
      encode_group(kind, G, codes + i * desc.d_in + g * G, row + g * gb);
      sc[i * ng + g] = f32_to_f16(scales[i * ng + g]);
    }
  }
  return m;
}

void unpack_matrix(const PackedMatrix& m, int8_t* codes, float* scales) {
  const PackedDesc& d = m.desc;
  const int64_t ng = m.groups();
  for (int64_t i = 0; i < d.d_out; ++i) {
    const RowKind kind = m.row_kind(i);
    const int64_t gb = group_code_bytes(kind, d.G);
    const uint8_t* row = m.row(i);
    const uint16_t* sc = m.row_scales(i);
    for (int64_t g = 0; g < ng; ++g) {
      decode_group_ref(kind, d.G, row + g * gb, codes + i * d.d_in + g * d.G);
      scales[i * ng + g] = f16_to_f32(sc[g]);
    }
  }
}

// ---- the decode copy (DecodeTiles) ----

std::shared_ptr<const DecodeTiles> build_decode_tiles(const PackedMatrix& m) {
  const PackedDesc& d = m.desc;
  if (d.layout == PackedLayout::Ternary5) return nullptr;
  auto t = std::make_shared<DecodeTiles>();
  const int G = d.G;
  const int64_t ng = m.groups();
  const bool mixed = d.layout == PackedLayout::Mixed;
  t->chunk_rows = mixed ? 8 * int64_t(d.P) : 8;
  t->int4_tiles = mixed || d.layout == PackedLayout::Int4 ? 1 : 0;
  t->ternary_tiles = mixed ? d.P - 1 : d.layout == PackedLayout::Ternary2 ? 1 : 0;
  const int tiles = t->tiles();
  t->groups = ng;
  t->int4_tile_bytes = ng * 4 * G;
  t->ternary_tile_bytes = ng * 2 * G;
  t->chunk_bytes = t->int4_tiles * t->int4_tile_bytes + t->ternary_tiles * t->ternary_tile_bytes;
  t->chunks = (d.d_out + t->chunk_rows - 1) / t->chunk_rows;
  // A mixed layout with a large P (a small int4 share) on few rows would be mostly padding:
  // keep the row kernels there.
  const int64_t pad = t->chunks * t->chunk_rows - d.d_out;
  if (pad > std::max<int64_t>(64, d.d_out / 8)) return nullptr;
  // Lanes: the int4 tile takes the chunk's int4 rows (every P-th for mixed), then the ternary
  // rows in order, 8 per tile.
  for (int64_t r = 0; r < t->chunk_rows; ++r)
    if (m.row_kind(r) == RowKind::Int4) t->lane_row.push_back(int32_t(r));
  for (int64_t r = 0; r < t->chunk_rows; ++r)
    if (m.row_kind(r) != RowKind::Int4) t->lane_row.push_back(int32_t(r));
  RZ_ASSERT(int64_t(t->lane_row.size()) == 8 * tiles);
  t->codes = AlignedBytes(size_t(t->chunks * t->chunk_bytes));
  t->scales = AlignedBytes(size_t(t->chunks * tiles * ng * 8) * 2);
  const int64_t chunks = t->chunks;
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      for (int ti = 0; ti < tiles; ++ti) {
        const bool int4 = t->int4(ti);
        uint8_t* tile = t->tile_codes(c, ti);
        uint16_t* sc = t->tile_scales(c, ti);
        for (int r = 0; r < 8; ++r) {
          const int64_t i = t->lane_output_row(c, ti, r);
          if (i >= d.d_out) continue;  // zero codes and scales: the lane gives 0
          const uint8_t* row = m.row(i);
          for (int64_t g = 0; g < ng; ++g) {
            sc[g * 8 + r] = m.row_scales(i)[g];
            uint8_t* o = tile + g * (int4 ? 4 : 2) * G + 4 * r;
            if (int4) {  // vector v: weights 8v .. 8v + 7 of the group, kq = 2v (low nibble), 2v + 1 (high)
              const uint8_t* blk = row + g * (G / 2);
              for (int v = 0; v < G / 8; ++v) {
                const int w0 = 8 * (v % 8), hi = w0 >= 32 ? 4 : 0;  // block byte j: weights j, j + 32
                const uint8_t* bb = blk + 32 * (v / 8) + (w0 % 32);
                for (int j = 0; j < 4; ++j)
                  o[32 * v + j] = uint8_t(((bb[j] >> hi) & 15) | ((bb[4 + j] >> hi) & 15) << 4);
              }
            } else {  // vector v: weights 16v .. 16v + 15, field p of byte 4r + j is kq = 4v + p
              const uint8_t* blk = row + g * (G / 4);
              for (int v = 0; v < G / 16; ++v) {
                const int f = 2 * (v % 4);  // block byte j: weights j, j + 16, j + 32, j + 48 in fields 0..3
                const uint8_t* bb = blk + 16 * (v / 4);
                for (int j = 0; j < 4; ++j)
                  o[32 * v + j] = uint8_t(((bb[j] >> f) & 3) | ((bb[4 + j] >> f) & 3) << 2 | ((bb[8 + j] >> f) & 3) << 4 |
                                          ((bb[12 + j] >> f) & 3) << 6);
              }
            }
          }
        }
      }
    }
  }
  return t;
}

const char* layout_name(PackedLayout l) {
  switch (l) {
    case PackedLayout::Ternary2: return "ternary2";
    case PackedLayout::Ternary5: return "ternary5";
    case PackedLayout::Int4: return "int4";
    case PackedLayout::Mixed: return "mixed";
  }
  return "?";
}

PackedDesc parse_layout(const char* s) {
  PackedDesc d;
  std::string v = s;
  if (v == "ternary2") d.layout = PackedLayout::Ternary2;
  else if (v == "ternary5") d.layout = PackedLayout::Ternary5;
  else if (v == "int4") d.layout = PackedLayout::Int4;
  else if (v.rfind("mixed", 0) == 0 && v.size() > 5 && v.size() <= 9 &&
           v.find_first_not_of("0123456789", 5) == std::string::npos) {
    d.layout = PackedLayout::Mixed;
    d.P = std::atoi(v.c_str() + 5);
    RZ_CHECK(d.P >= 2, "--layout: '%s': mixed needs P >= 2 (mixed2 = 2.79-bit, mixed8 = 1.88-bit)", s);
  } else {
    fail("--layout: unknown layout '%s' (use ternary2, ternary5, int4, mixed2 or mixed8)", s);
  }
  return d;
}

// dequantize_row from the decode copy (DecodeTiles' layout).
static void dequantize_tile_row(const PackedMatrix& m, int64_t i, float* out) {
  const DecodeTiles& t = *m.tiles;
  const int G = m.desc.G;
  const int64_t ng = m.groups(), c = i / t.chunk_rows, rel = i % t.chunk_rows;
  int lane = 0;
  while (t.lane_row[size_t(lane)] != rel) ++lane;
  const int ti = lane / 8, r = lane % 8;
  const bool int4 = t.int4(ti);
  const uint8_t* src = t.tile_codes(c, ti);
  const uint16_t* sc = t.tile_scales(c, ti);
  for (int64_t g = 0; g < ng; ++g) {
    const float sg = f16_to_f32(sc[g * 8 + r]);
    for (int k = 0; k < G; ++k) {
      const int kq = k / 4, j = k % 4;
      const int q = int4 ? ((src[g * 4 * G + 32 * (kq / 2) + 4 * r + j] >> (4 * (kq % 2))) & 15) - 8
                         : ((src[g * 2 * G + 32 * (kq / 4) + 4 * r + j] >> (2 * (kq % 4))) & 3) - 1;
      out[g * G + k] = float(q) * sg;
    }
  }
}

void dequantize_row(const PackedMatrix& m, int64_t i, float* out) {
  if (m.codes.size() == 0 && m.tiles) return dequantize_tile_row(m, i, out);
  const int G = m.desc.G;
  const RowKind kind = m.row_kind(i);
  const int64_t gb = group_code_bytes(kind, G);
  const uint8_t* row = m.row(i);
  const uint16_t* s = m.row_scales(i);
  int8_t codes[256];  // G <= 256
  for (int64_t g = 0; g < m.groups(); ++g) {
    decode_group_ref(kind, G, row + g * gb, codes);
    const float sg = f16_to_f32(s[g]);
    for (int k = 0; k < G; ++k) out[g * G + k] = float(codes[k]) * sg;
  }
}

}  // namespace razor
