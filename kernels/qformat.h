// Packed low-bit weight formats for inference (NUMERICS.md §1, §2, §10): the byte layout of
// every block, the PackedMatrix that holds one quantized linear, and packing / unpacking
// between plain int8 codes + float scales and the packed form.
// Deliberately not here: the quantizers that produce the codes (src/quant), the .razor file
// format (src/io; a PackedMatrix is a descriptor plus two plain byte buffers so it serialises
// as-is), and the kernels (kernels/qgemm.h).
//
// Every weight code is stored as an unsigned offset code u = q + off (off = 1 for ternary,
// 8 for int4), so SIMD kernels can use unsigned x signed byte products (vpmaddubsw,
// vpdpbusd) and correct with off * sum(x) per group.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace razor {

// ---- Blocks (one block = 64 weights of one row, except ternary5 which is one group) ----

// Ternary, 2 bits per weight, 64 weights in 16 bytes. Weight j + 16*k (j < 16, k < 4) is the
// 2-bit field at bits [2k, 2k+2) of byte j, holding t + 1 in {0, 1, 2}:
//   byte:   0        1             15
//   bits: [w48 w32 w16 w0][w49 w33 w17 w1] ... [w63 w47 w31 w15]   (high field .. low field)
// One 16-byte load + shifts by 0/2/4/6 + mask 3 gives four runs of 16 consecutive weights
// (AVX2: broadcast to 256 bits, vpsrlvd by 0|2 and 4|6, mask -> two runs of 32).
struct BlockTernary2 {
  uint8_t qs[16];
};
static_assert(sizeof(BlockTernary2) == 16, "ternary2 block: 64 weights in 16 bytes");

// Int4 (symmetric, q in [-7, 7]), 64 weights in 32 bytes. Byte j (j < 32) holds weight j + 8 in
// its low nibble and weight j + 32 + 8 in its high nibble:
//   byte:  0            1                 31
//        [w32|w0]     [w33|w1]    ...   [w63|w31]      (high nibble | low nibble), codes q + 8
// One 32-byte load, mask 0x0f -> weights 0..31; shift 4, mask -> weights 32..63.
struct BlockInt4 {
  uint8_t qs[32];
};
static_assert(sizeof(BlockInt4) == 32, "int4 block: 64 weights in 32 bytes");

// Ternary, 5 trits per byte (1.6 bits), one block per group of G weights: nb = ceil(G/5)
// bytes (G = 64: 13 bytes, 1.625 bits; G = 256: 52 bytes, 1.625 bits). Weight w of the group
// is digit k = w / nb of byte j = w % nb ("planes": digit 0 of all bytes is weights
// 0..nb-1, digit 1 the next nb weights, ...); unused digits of the last plane hold t = 0.
// A byte stores its five digits d_k = t + 1 (d_0 most significant) as a base-3 fixed-point
// fraction: b = ceil(v * 256 / 243), v = sum_k d_k * 3^(4-k) in [0, 242]. Digit k is then
//   x = (b * 3^k) mod 256,  d_k = (x * 3) >> 8          (= [x >= 86] + [x >= 171])
// which needs only byte multiplies by 3 (mod 256) and two compares per digit — no division.
// A byte-plane is decoded from a vector of consecutive bytes; stores of plane k at offset
// k * nb (in increasing k) then give the weights in natural order.
struct BlockTernary5G64 {
  uint8_t qs[13];
};
static_assert(sizeof(BlockTernary5G64) == 13, "ternary5 block, G = 64: 64 trits in 13 bytes");
struct BlockTernary5G256 {
  uint8_t qs[52];
};
static_assert(sizeof(BlockTernary5G256) == 52, "ternary5 block, G = 256: 256 trits in 52 bytes");

// Weight scales: one fp16 (stored as uint16, see core/half.h) per (row, group), row-major
// [d_out, d_in / G], in their own buffer.

// ---- PackedMatrix ----

enum class PackedLayout : int32_t {
  Ternary2 = 0,  // every row ternary, 2 bits/weight ("P = 0", fast unpack)
  Ternary5 = 1,  // every row ternary, 1.625 bits/weight
  Int4 = 2,      // every row int4 ("P = 1")
  Mixed = 3,     // super-groups of P rows: row i is int4 when i % P == 0, else ternary2
};
enum class RowKind : int32_t { Ternary2 = 0, Ternary5 = 1, Int4 = 2 };

// The small descriptor that, with the two buffers' bytes, is all a file needs to store.
struct PackedDesc {
  PackedLayout layout = PackedLayout::Ternary2;
  int32_t P = 0;  // super-group size for Mixed (>= 2); 0 otherwise
  int32_t G = 64;  // group size: a multiple of 64, at most 256
  int64_t d_out = 0, d_in = 0;
};

// Owned, 64-byte aligned bytes, zero-filled. Buffers are carved from shared 2 MiB-aligned
// slabs advised MADV_HUGEPAGE (bump allocation; a slab is returned when its last buffer is),
// so a model's many sub-2 MiB matrices sit on huge pages too: with 4 KiB pages, decode paid a
// TLB miss and a cold hardware prefetcher at every page of weights (0.6B int4 decode at one
// thread, Zen 5: 21 -> 50 tokens/s). Always followed by kPad readable zero bytes: SIMD kernels
// may load up to one vector past the last block. Thread-safe.
class AlignedBytes {
 public:
  static constexpr size_t kPad = 64;
  AlignedBytes() = default;
  explicit AlignedBytes(size_t bytes);  // zero-filled
  uint8_t* data() { return p_.get(); }
  const uint8_t* data() const { return p_.get(); }
  size_t size() const { return size_; }
  struct Slab;  // defined in qformat.cpp

 private:
  struct Free {
    Free() : slab(nullptr) {}
    explicit Free(Slab* s) : slab(s) {}
    void operator()(uint8_t* p) const;
    Slab* slab;
  };
  std::unique_ptr<uint8_t, Free> p_;
  size_t size_ = 0;
};

// Slab statistics, for tests: slabs held now and their bytes (reserved address space).
struct SlabStats {
  size_t slabs = 0, bytes = 0;
};
SlabStats aligned_bytes_slabs();

// Code bytes of one group of G weights of a row of the given kind.
int64_t group_code_bytes(RowKind kind, int G);
// Code bytes of one row of the given kind.
int64_t row_code_bytes(RowKind kind, int G, int64_t d_in);
// Throws razor::Error naming `what` when the descriptor is not valid (shape, G, P).
void check_packed_desc(const PackedDesc& d, const char* what);
// The group sizes the packed formats and kernels take: 64, 128, 256.
inline bool packed_group_supported(int G) { return G >= 64 && G <= 256 && G % 64 == 0; }
// The super-group periods the mixed layout takes: one int4 row every P rows, 2 <= P <= 1024.
inline bool packed_period_supported(int64_t P) { return P >= 2 && P <= 1024; }

// A decode copy of a PackedMatrix (built by qgemm_prepare for the AVX2 tier; never stored in
// a file): output rows regrouped into tiles of 8 rows of one kind, the tile's codes interleaved
// so that one 32-byte vector holds four consecutive codes of each of the 8 rows. A one-token
// product then needs no horizontal sums: vpmaddubsw of the codes with the broadcast 4 activation
// bytes gives each row's pair sums in its own lanes, and per group one vpmaddwd, one correction
// and one fused multiply by the 8 rows' scales finish it (issue 24: the G 64 decode was bound by
// the per-group reduction of the row-by-row kernel).
// Chunks: 8 rows (ternary2, int4), or 8 P rows for mixed (8 int4 rows i = c 8P + P j, then the
// P - 1 ternary tiles of the chunk's ternary rows in order), so every tile is whole; rows past
// d_out are zero codes and scales. Per tile and group of G weights (k = 4 kq + j, r = row lane):
//   ternary: 2G bytes, vector v (32 bytes) byte 4r + j, bits [2p, 2p + 2) = u(r, 4 (4v + p) + j)
//   int4:    4G bytes, vector v byte 4r + j, nibble p (low first)       = u(r, 4 (2v + p) + j)
// u the unsigned offset code as in the blocks. Scales: fp16 [tile][group][8 rows].
struct DecodeTiles {
  int64_t chunk_rows = 8;     // output rows per chunk
  int64_t chunk_bytes = 0;    // code bytes per chunk (tiles back to back, the int4 tile first)
  int32_t int4_tiles = 0;     // int4 tiles per chunk (0 or 1)
  int32_t ternary_tiles = 0;  // ternary2 tiles per chunk
  int64_t chunks = 0;
  int64_t groups = 0;         // groups per row (d_in / G)
  int64_t int4_tile_bytes = 0, ternary_tile_bytes = 0;  // code bytes of one tile: groups * 4G, * 2G
  AlignedBytes codes;         // [chunk][tile][group][...]
  AlignedBytes scales;        // uint16 fp16 [chunk][tile][group][8]
  std::vector<int32_t> lane_row;  // [tiles per chunk * 8]: the chunk-relative output row of each lane

  int tiles() const { return int4_tiles + ternary_tiles; }  // per chunk
  bool int4(int t) const { return t < int4_tiles; }
  // Tile t of chunk c: its codes (groups in order), its scales [group][8], lane r's output row.
  int64_t tile_offset(int64_t c, int t) const {
    return c * chunk_bytes + (int4(t) ? 0 : int4_tiles * int4_tile_bytes + (t - int4_tiles) * ternary_tile_bytes);
  }
  const uint8_t* tile_codes(int64_t c, int t) const { return codes.data() + tile_offset(c, t); }
  uint8_t* tile_codes(int64_t c, int t) { return codes.data() + tile_offset(c, t); }
  const uint16_t* tile_scales(int64_t c, int t) const {
    return reinterpret_cast<const uint16_t*>(scales.data()) + (c * tiles() + t) * groups * 8;
  }
  uint16_t* tile_scales(int64_t c, int t) { return const_cast<uint16_t*>(std::as_const(*this).tile_scales(c, t)); }
  int64_t lane_output_row(int64_t c, int t, int r) const { return c * chunk_rows + lane_row[size_t(t * 8 + r)]; }
};

struct PackedMatrix {
  PackedDesc desc;
  // Rows in order, each row's groups in order. For Mixed, a super-group of P rows (one int4
  // row then P-1 ternary2 rows) is contiguous, so a pass over rows streams it once.
  AlignedBytes codes;
  AlignedBytes scales;  // uint16 fp16 [d_out, d_in / G]

  int64_t groups() const { return desc.d_in / desc.G; }
  RowKind row_kind(int64_t i) const {
    switch (desc.layout) {
      case PackedLayout::Ternary2: return RowKind::Ternary2;
      case PackedLayout::Ternary5: return RowKind::Ternary5;
      case PackedLayout::Int4: return RowKind::Int4;
      case PackedLayout::Mixed: break;
    }
    return i % desc.P == 0 ? RowKind::Int4 : RowKind::Ternary2;
  }
  int64_t row_offset(int64_t i) const;
  const uint8_t* row(int64_t i) const { return codes.data() + row_offset(i); }
  const uint16_t* row_scales(int64_t i) const {
    return reinterpret_cast<const uint16_t*>(scales.data()) + i * groups();
  }
  // Bytes of weight data a full pass reads (codes + scales), for bandwidth figures; those of
  // the decode copy once the rows are released (qgemm_release_rows).
  int64_t stream_bytes() const {
    if (codes.size() == 0 && tiles) return int64_t(tiles->codes.size() + tiles->scales.size());
    return int64_t(codes.size() + scales.size());
  }
  // The AVX2 decode copy (qgemm_prepare), or null. Derived from the bytes above, so it is
  // mutable: qgemm_prepare adds it to a const matrix (once, before concurrent use).
  mutable std::shared_ptr<const DecodeTiles> tiles;
};

// The decode copy of m (DecodeTiles); null for ternary5, and where padding the last chunk would
// add more than max(64, d_out / 8) rows (a mixed layout with a large P on few rows): those keep
// the row kernels.
std::shared_ptr<const DecodeTiles> build_decode_tiles(const PackedMatrix& m);

// Walks consecutive rows of a PackedMatrix: kind, code and scale pointers of row i, then next()
// for row i + 1, with no division per row (kernels' inner row loops).
struct RowCursor {
  __attribute__((always_inline)) RowCursor(const PackedMatrix& m, int64_t i)
      : row(m.row(i)), scales(m.row_scales(i)), kind(m.row_kind(i)), ng(m.groups()), P(m.desc.P),
        r(m.desc.layout == PackedLayout::Mixed ? int32_t(i % m.desc.P) : 0), mixed(m.desc.layout == PackedLayout::Mixed) {
    bytes[int(RowKind::Ternary2)] = row_code_bytes(RowKind::Ternary2, m.desc.G, m.desc.d_in);
    bytes[int(RowKind::Ternary5)] = row_code_bytes(RowKind::Ternary5, m.desc.G, m.desc.d_in);
    bytes[int(RowKind::Int4)] = row_code_bytes(RowKind::Int4, m.desc.G, m.desc.d_in);
  }
  void next() {
    row += bytes[int(kind)];
    scales += ng;
    if (mixed) {
      r = r + 1 == P ? 0 : r + 1;
      kind = r == 0 ? RowKind::Int4 : RowKind::Ternary2;
    }
  }
  const uint8_t* row;
  const uint16_t* scales;
  RowKind kind;
  int64_t ng;
  int32_t P, r;
  bool mixed;
  int64_t bytes[3];
};

// Packs int8 codes [d_out, d_in] (ternary rows in {-1, 0, 1}, int4 rows in [-7, 7]) and
// scales [d_out, d_in / G] (each already an fp16 value, > 0 and finite). Throws razor::Error
// naming `what` for a bad descriptor, an out-of-range code or a scale that is not fp16.
PackedMatrix pack_matrix(const PackedDesc& desc, const int8_t* codes, const float* scales,
                         const char* what = "pack");
// Inverse of pack_matrix: codes [d_out, d_in], scales [d_out, d_in / G]. Exact.
void unpack_matrix(const PackedMatrix& m, int8_t* codes, float* scales);

// Scalar decode of one group's block into signed codes q[0, G): the definition of the bits.
void decode_group_ref(RowKind kind, int G, const uint8_t* block, int8_t* q);
// Row i of m dequantized: out[k] = q_k * s_g per group (codes by decode_group_ref, fp16 scales
// widened), out [d_in]. The engine's embedding lookup. Reads the decode copy when the packed
// rows were released.
void dequantize_row(const PackedMatrix& m, int64_t i, float* out);
// Offset added to a code to store it unsigned (1 for ternary, 8 for int4).
inline int code_offset(RowKind kind) { return kind == RowKind::Int4 ? 8 : 1; }

const char* layout_name(PackedLayout l);
// "ternary2", "ternary5", "int4", "mixed<P>" (e.g. mixed2, mixed8). Throws on anything else.
PackedDesc parse_layout(const char* s);

}  // namespace razor
