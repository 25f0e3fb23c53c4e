// Teacher store: record encoding (the teacher math), shard writer with resume, mmap reader.
#include "distill/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <numeric>

#include "core/error.h"
#include "core/half.h"
#include "core/util.h"
#include "core/checksum.h"
#include "io/file_util.h"
#include "io/json.h"
#include "io/mapped_file.h"

namespace razor {

namespace {

constexpr char kMagic[8] = {'R', 'Z', 'T', 'S', 'T', 'O', 'R', 'E'};
// Version 1: every feature tap. Version 2: selected taps (header byte 63, manifest "taps").
// A store of every tap is still written as version 1, so older readers keep reading it.
constexpr uint32_t kVersionAll = 1, kVersionSelected = 2;
uint32_t store_version(const StoreInfo& info) { return info.selected_taps > 0 ? kVersionSelected : kVersionAll; }
constexpr const char* kFormat = "razor-teacher-store";

// Shard header, 128 bytes, little-endian:
//   0 magic[8] | 8 version u32 | 12 header_bytes u32 | 16 first_sequence u64 |
//  24 num_sequences u64 | 32 record_bytes u64 | 40 T u32 | 44 L u32 | 48 C u32 | 52 V u32 |
//  56 K u32 | 60 hidden_dtype u8 | 61 logits u8 | 62 logp_dtype u8 |
//  63 selected taps u8 (version 1: 0 = every tap; version 2: n >= 1) |
//  64 teacher_hash u64 | 72 tokenizer_hash u64 | 80 payload checksum u64 (hash64) |
//  88 header checksum u64 (fnv1a64 of bytes 0..87) | 96..127 zero
struct ShardHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_bytes;
  uint64_t first_sequence;
  uint64_t num_sequences;
  uint64_t record_bytes;
  uint32_t T, L, C, V, K;
  uint8_t hidden_dtype, logits, logp_dtype, selected_taps;
  uint64_t teacher_hash;
  uint64_t tokenizer_hash;
  uint64_t payload_checksum;
  uint64_t header_checksum;
  uint8_t reserved[32];
};
static_assert(sizeof(ShardHeader) == 128, "shard header is 128 bytes");

ShardHeader make_header(const StoreInfo& info, const RecordLayout& layout) {
  ShardHeader h;
  std::memset(&h, 0, sizeof h);
  std::memcpy(h.magic, kMagic, 8);
  h.version = store_version(info);
  h.header_bytes = sizeof(ShardHeader);
  h.record_bytes = uint64_t(layout.bytes);
  h.T = uint32_t(info.seq_len);
  h.L = uint32_t(info.num_layers);
  h.C = uint32_t(info.hidden_size);
  h.V = uint32_t(info.vocab_size);
  h.K = info.logits == LogitStorage::TopK ? uint32_t(info.top_k) : 0;
  h.hidden_dtype = uint8_t(info.hidden_dtype);
  h.logits = uint8_t(info.logits);
  h.logp_dtype = uint8_t(info.logp_dtype);
  h.selected_taps = uint8_t(info.selected_taps);
  h.teacher_hash = info.teacher_hash;
  h.tokenizer_hash = info.tokenizer_hash;
  return h;
}

void seal_header(ShardHeader& h) { h.header_checksum = fnv1a64(&h, offsetof(ShardHeader, header_checksum)); }

// Checks a shard header against the expected settings; `what` names the file.
void check_header(const ShardHeader& h, const ShardHeader& want, const std::string& what) {
  if (std::memcmp(h.magic, kMagic, 8) != 0) fail("%s: not a razor teacher-store shard (bad magic)", what.c_str());
  if (h.version != kVersionAll && h.version != kVersionSelected)
    fail("%s: shard format version %u, this razor reads versions %u and %u", what.c_str(), h.version, kVersionAll,
         kVersionSelected);
  if (h.header_checksum != fnv1a64(&h, offsetof(ShardHeader, header_checksum)))
    fail("%s: header checksum mismatch (the file is damaged)", what.c_str());
  if (h.header_bytes != sizeof(ShardHeader)) fail("%s: header size %u, expected 128", what.c_str(), h.header_bytes);
  if (h.T != want.T || h.L != want.L || h.C != want.C || h.V != want.V || h.K != want.K ||
      h.hidden_dtype != want.hidden_dtype || h.logits != want.logits || h.logp_dtype != want.logp_dtype ||
      h.record_bytes != want.record_bytes || h.version != want.version || h.selected_taps != want.selected_taps)
    fail("%s: shard settings (version %u T=%u L=%u C=%u V=%u K=%u hidden=%u logits=%u logp=%u selected taps=%u) "
         "differ from the store's (version %u T=%u L=%u C=%u V=%u K=%u hidden=%u logits=%u logp=%u selected taps=%u)",
         what.c_str(), h.version, h.T, h.L, h.C, h.V, h.K, h.hidden_dtype, h.logits, h.logp_dtype, h.selected_taps,
         want.version, want.T, want.L, want.C, want.V, want.K, want.hidden_dtype, want.logits, want.logp_dtype,
         want.selected_taps);
  if (h.teacher_hash != want.teacher_hash || h.tokenizer_hash != want.tokenizer_hash)
    fail("%s: shard was written by another teacher/tokenizer (hashes %s/%s, store %s/%s)", what.c_str(),
         hex64(h.teacher_hash).c_str(), hex64(h.tokenizer_hash).c_str(), hex64(want.teacher_hash).c_str(),
         hex64(want.tokenizer_hash).c_str());
  if (h.num_sequences == 0) fail("%s: shard holds no sequences", what.c_str());
}

// Validates a whole shard file (header, size, checksum) against `want`; returns its header.
// With `checksum`, also range-checks every token id and top-K id: the losses index logits
// with them, and a checksum only proves the file is what some writer wrote.
ShardHeader validate_shard(const MappedFile& m, const ShardHeader& want, const RecordLayout& layout,
                           const std::string& what, bool checksum) {
  if (int64_t(m.size()) < int64_t(sizeof(ShardHeader)))
    fail("%s: truncated: %lld bytes, shorter than the 128-byte header", what.c_str(), (long long)m.size());
  ShardHeader h;
  std::memcpy(&h, m.data(), sizeof h);
  check_header(h, want, what);
  if (h.num_sequences > uint64_t(1) << 40) fail("%s: implausible sequence count %llu", what.c_str(), (unsigned long long)h.num_sequences);
  // record_bytes equals the layout's (< 2^40), but the product can still overflow.
  int64_t expect = 0;
  if (__builtin_mul_overflow(int64_t(h.num_sequences), int64_t(h.record_bytes), &expect) ||
      __builtin_add_overflow(expect, int64_t(sizeof(ShardHeader)), &expect))
    fail("%s: %llu sequences of %llu bytes do not fit in any file", what.c_str(), (unsigned long long)h.num_sequences,
         (unsigned long long)h.record_bytes);
  if (int64_t(m.size()) < expect)
    fail("%s: truncated: %lld bytes, expected %lld for %llu sequences", what.c_str(), (long long)m.size(),
         (long long)expect, (unsigned long long)h.num_sequences);
  if (int64_t(m.size()) > expect)
    fail("%s: %lld bytes, expected %lld for %llu sequences (trailing data)", what.c_str(), (long long)m.size(),
         (long long)expect, (unsigned long long)h.num_sequences);
  if (checksum && hash64(m.data() + sizeof(ShardHeader), size_t(expect) - sizeof(ShardHeader)) != h.payload_checksum)
    fail("%s: checksum mismatch (the file is damaged; delete it and re-run the teacher dump)", what.c_str());
  if (checksum) {
    const int64_t T = h.T, K = h.K, V = h.V;
    for (uint64_t r = 0; r < h.num_sequences; ++r) {
      const uint8_t* rec = m.data() + sizeof(ShardHeader) + int64_t(r) * layout.bytes;
      auto check_ids = [&](int64_t off, int64_t n, const char* field) {
        for (int64_t i = 0; i < n; ++i) {
          int32_t id;
          std::memcpy(&id, rec + off + 4 * i, 4);
          if (id < 0 || id >= V)
            fail("%s: record %llu: %s[%lld] = %d is outside the vocabulary [0, %lld)", what.c_str(),
                 (unsigned long long)r, field, (long long)i, id, (long long)V);
        }
      };
      check_ids(layout.ids, T + 1, "ids");
      if (layout.topk_ids >= 0) check_ids(layout.topk_ids, T * K, "topk_ids");
      // Selected taps: ascending, in [1, L] (hidden_row's lookup and the loss rely on it).
      for (int64_t j = 0; layout.tap_ids >= 0 && j < int64_t(h.selected_taps); ++j) {
        uint16_t id, prev = 0;
        std::memcpy(&id, rec + layout.tap_ids + 2 * j, 2);
        if (j > 0) std::memcpy(&prev, rec + layout.tap_ids + 2 * (j - 1), 2);
        if (id < 1 || id > h.L || id <= prev)
          fail("%s: record %llu: tap_ids[%lld] = %u is not an ascending feature tap in [1, %u]", what.c_str(),
               (unsigned long long)r, (long long)j, unsigned(id), h.L);
      }
    }
  }
  return h;
}

double cosine(const float* a, const float* b, int64_t n) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t i = 0; i < n; ++i) {
    dot += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  // The eps of autograd's cosine_similarity (1e-8 on each norm).
  return dot / (std::max(std::sqrt(na), 1e-8) * std::max(std::sqrt(nb), 1e-8));
}

Json info_to_json(const StoreInfo& info, const RecordLayout& layout) {
  Json j = Json::object();
  j.set("format", kFormat);
  j.set("version", int64_t(store_version(info)));
  j.set("teacher_id", info.teacher_id);
  j.set("teacher_hash", hex64(info.teacher_hash));
  j.set("tokenizer_hash", hex64(info.tokenizer_hash));
  j.set("seq_len", info.seq_len);
  j.set("num_layers", info.num_layers);
  j.set("hidden_size", info.hidden_size);
  j.set("vocab_size", info.vocab_size);
  j.set("hidden_dtype", to_string(info.hidden_dtype));
  j.set("logits", to_string(info.logits));
  j.set("top_k", info.logits == LogitStorage::TopK ? info.top_k : int64_t(0));
  j.set("logp_dtype", to_string(info.logp_dtype));
  j.set("shard_sequences", info.shard_sequences);
  j.set("num_sequences", info.num_sequences);
  if (info.selected_taps > 0) {  // version 2 only: a store of every tap keeps version 1's manifest
    j.set("taps", "selected");
    j.set("selected_taps", info.selected_taps);
  }
  j.set("record_bytes", layout.bytes);
  j.set("bytes_per_token", double(layout.bytes) / double(info.seq_len));
  return j;
}

StoreInfo info_from_json(const Json& j, const std::string& what) {
  if (j.get_string("format", "") != kFormat) fail("%s: not a razor teacher-store manifest", what.c_str());
  int64_t version = j.at("version", what.c_str()).as_int("version");
  if (version != kVersionAll && version != kVersionSelected)
    fail("%s: manifest version %lld, this razor reads versions %u and %u", what.c_str(), (long long)version, kVersionAll,
         kVersionSelected);
  StoreInfo s;
  auto field = [&](const char* k) { return j.at(k, what.c_str()).as_int((what + ": " + k).c_str()); };
  s.teacher_id = j.get_string("teacher_id", "");
  s.teacher_hash = parse_hex64(j.at("teacher_hash", what.c_str()).as_string(), (what + ": teacher_hash").c_str());
  s.tokenizer_hash = parse_hex64(j.at("tokenizer_hash", what.c_str()).as_string(), (what + ": tokenizer_hash").c_str());
  s.seq_len = field("seq_len");
  s.num_layers = field("num_layers");
  s.hidden_size = field("hidden_size");
  s.vocab_size = field("vocab_size");
  // The enum parsers name the option (they also serve the CLI); here the manifest is at fault.
  auto parsed = [&](const char* k, auto parse) {
    const std::string v = j.at(k, what.c_str()).as_string((what + ": " + k).c_str());
    try {
      return parse(v);
    } catch (const Error& e) {
      fail("%s: %s: %s", what.c_str(), k, e.what());
    }
  };
  s.hidden_dtype = parsed("hidden_dtype", parse_hidden_dtype);
  s.logits = parsed("logits", parse_logit_storage);
  s.top_k = s.logits == LogitStorage::TopK ? field("top_k") : 64;
  s.logp_dtype = parsed("logp_dtype", parse_logp_dtype);
  s.shard_sequences = field("shard_sequences");
  s.num_sequences = field("num_sequences");
  if (version == kVersionSelected) {
    const std::string taps = j.at("taps", what.c_str()).as_string((what + ": taps").c_str());
    if (taps != "selected") fail("%s: taps: '%s' in a version 2 store, expected 'selected'", what.c_str(), taps.c_str());
    s.selected_taps = field("selected_taps");
    if (s.selected_taps < 1) fail("%s: selected_taps %lld must be >= 1", what.c_str(), (long long)s.selected_taps);
  } else if (j.has("taps") || j.has("selected_taps")) {
    fail("%s: a version 1 store with a 'taps' field (edited manifest?)", what.c_str());
  }
  try {
    s.validate();
  } catch (const Error& e) {
    fail("%s: %s", what.c_str(), e.what());
  }
  if (s.num_sequences < 0) fail("%s: negative num_sequences", what.c_str());
  return s;
}

// True when two infos describe the same store layout and origin (ignores counts / id).
bool same_settings(const StoreInfo& a, const StoreInfo& b) {
  return a.teacher_hash == b.teacher_hash && a.tokenizer_hash == b.tokenizer_hash && a.seq_len == b.seq_len &&
         a.num_layers == b.num_layers && a.hidden_size == b.hidden_size && a.vocab_size == b.vocab_size &&
         a.hidden_dtype == b.hidden_dtype && a.logits == b.logits &&
         (a.logits == LogitStorage::Full || a.top_k == b.top_k) && a.logp_dtype == b.logp_dtype &&
         a.shard_sequences == b.shard_sequences && a.selected_taps == b.selected_taps;
}

}  // namespace

// ---- names and settings

const char* to_string(HiddenDtype d) { return d == HiddenDtype::BF16 ? "bf16" : "int8"; }
const char* to_string(LogitStorage s) { return s == LogitStorage::TopK ? "topk" : "full"; }
const char* to_string(LogpDtype d) { return d == LogpDtype::F32 ? "f32" : "f16"; }
HiddenDtype parse_hidden_dtype(const std::string& s) {
  if (s == "bf16") return HiddenDtype::BF16;
  if (s == "int8") return HiddenDtype::INT8;
  fail("hidden dtype: '%s' is not one of bf16, int8", s.c_str());
}
TapStorage parse_tap_storage(const std::string& s) {
  if (s == "auto") return TapStorage::Auto;
  if (s == "all") return TapStorage::All;
  if (s == "selected") return TapStorage::Selected;
  fail("taps: '%s' is not one of auto, all, selected", s.c_str());
}
LogitStorage parse_logit_storage(const std::string& s) {
  if (s == "topk") return LogitStorage::TopK;
  if (s == "full") return LogitStorage::Full;
  fail("logit storage: '%s' is not one of topk, full", s.c_str());
}
LogpDtype parse_logp_dtype(const std::string& s) {
  if (s == "f32") return LogpDtype::F32;
  if (s == "f16") return LogpDtype::F16;
  fail("log-prob dtype: '%s' is not one of f32, f16", s.c_str());
}

void StoreInfo::validate() const {
  const int64_t kMax32 = int64_t(1) << 31;
  RZ_CHECK(seq_len > 0 && seq_len < kMax32, "teacher store: seq_len %lld must be positive", (long long)seq_len);
  RZ_CHECK(num_layers > 0 && num_layers < 4096, "teacher store: num_layers %lld out of range", (long long)num_layers);
  RZ_CHECK(hidden_size > 0 && hidden_size < kMax32, "teacher store: hidden_size %lld out of range", (long long)hidden_size);
  RZ_CHECK(vocab_size > 1 && vocab_size < kMax32, "teacher store: vocab_size %lld out of range", (long long)vocab_size);
  if (logits == LogitStorage::TopK)
    RZ_CHECK(top_k >= 1 && top_k <= vocab_size, "teacher store: top_k %lld must be in [1, vocab_size=%lld]",
             (long long)top_k, (long long)vocab_size);
  RZ_CHECK(shard_sequences >= 1, "teacher store: shard_sequences %lld must be >= 1", (long long)shard_sequences);
  RZ_CHECK(selected_taps >= 0 && selected_taps <= std::min<int64_t>(num_layers, 255),
           "teacher store: selected_taps %lld must be in [0, min(L=%lld, 255)]", (long long)selected_taps,
           (long long)num_layers);
}

int64_t resolve_selected_taps(TapStorage taps, int afd_k, const StoreInfo& info) {
  RZ_CHECK(afd_k >= 1, "--afd-k: %d must be >= 1", afd_k);
  const int64_t n = std::min<int64_t>(afd_k, info.num_layers);
  if (taps == TapStorage::All) return 0;
  if (taps == TapStorage::Selected) {
    if (n > 255) fail("--taps selected: keeps at most 255 taps per sequence (--afd-k %d, L = %lld); use --taps all", afd_k, (long long)info.num_layers);
    return n;
  }
  StoreInfo all = info;
  all.selected_taps = 0;
  const double per_token = double(RecordLayout::make(all).bytes) / double(all.seq_len);
  return per_token > double(kAutoTapsBytesPerToken) && n <= 255 ? n : 0;
}

std::vector<int> lowest_cosine_layers(const std::vector<double>& c, int k) {
  const int L = int(c.size());
  std::vector<int> order(static_cast<size_t>(L));
  for (int l = 0; l < L; ++l) order[size_t(l)] = l + 1;
  // Lowest c_l first; stable, so ties keep the lower index.
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return c[size_t(a - 1)] < c[size_t(b - 1)]; });
  std::vector<int> layers(order.begin(), order.begin() + std::min(std::max(k, 0), L));
  std::sort(layers.begin(), layers.end());
  return layers;
}

RecordLayout RecordLayout::make(const StoreInfo& info) {
  info.validate();
  const int64_t T = info.seq_len, L = info.num_layers, C = info.hidden_size, V = info.vocab_size;
  const int64_t K = info.logits == LogitStorage::TopK ? info.top_k : 0;
  RecordLayout r;
  int64_t off = 0;
  // Section sizes are products of manifest fields that validate() bounds only one by one
  // (T, C, V < 2^31, L < 4096): multiply with overflow checks and cap the record at 2^40
  // bytes, so a hostile manifest gives an error instead of a wrapped (negative) size.
  constexpr int64_t kMaxRecord = int64_t(1) << 40;
  auto bytes_of = [&](std::initializer_list<int64_t> factors) {
    int64_t n = 1;
    for (int64_t f : factors)
      if (__builtin_mul_overflow(n, f, &n) || n > kMaxRecord)
        fail("teacher store: one record would exceed 2^40 bytes (T=%lld L=%lld C=%lld V=%lld K=%lld)", (long long)T,
             (long long)L, (long long)C, (long long)V, (long long)K);
    return n;
  };
  auto take = [&](int64_t bytes) {
    int64_t at = off;
    off = align_up<int64_t>(off + bytes, 64);
    if (off > kMaxRecord)
      fail("teacher store: one record would exceed 2^40 bytes (T=%lld L=%lld C=%lld V=%lld K=%lld)", (long long)T,
           (long long)L, (long long)C, (long long)V, (long long)K);
    return at;
  };
  r.ids = take(bytes_of({4, T + 1}));
  r.mask = take(T + 1);
  const int64_t N = info.stored_taps();
  if (info.selected_taps > 0) r.tap_ids = take(2 * N);
  r.hidden = take(bytes_of({N, T, C, info.hidden_dtype == HiddenDtype::BF16 ? 2 : 1}));
  if (info.hidden_dtype == HiddenDtype::INT8) r.hidden_scale = take(bytes_of({4, N, T}));
  const int64_t lp = info.logp_dtype == LogpDtype::F32 ? 4 : 2;
  if (K > 0) {
    r.topk_ids = take(bytes_of({4, T, K}));
    r.logp = take(bytes_of({lp, T, K}));
    r.tail_logp = take(4 * T);
  } else {
    r.logp = take(bytes_of({lp, T, V}));
  }
  r.entropy = take(4 * T);
  r.target_logp = take(4 * T);
  r.cos_sum = take(8 * 2 * L);
  r.cos_count = take(8 * 2);
  r.bytes = off;
  return r;
}

// ---- views

float SequenceView::logp_at(int64_t t, int64_t j) const {
  const int64_t i = t * bins() + j;
  if (logp_dtype == LogpDtype::F32) return static_cast<const float*>(logp)[i];
  return f16_to_f32(static_cast<const uint16_t*>(logp)[i]);
}

int64_t SequenceView::tap_slot(int64_t layer) const {
  if (!tap_ids) return layer >= 0 && layer < taps ? layer : -1;
  for (int64_t j = 0; j < taps; ++j)
    if (tap_ids[j] == layer) return j;
  return -1;
}

void SequenceView::hidden_row(int64_t layer, int64_t t, float* out) const {
  const int64_t slot = tap_slot(layer);
  RZ_CHECK(slot >= 0, "teacher store: feature tap %lld is not stored for this sequence (a --taps selected store)",
           (long long)layer);
  hidden_slot_row(slot, t, out);
}

void SequenceView::hidden_slot_row(int64_t slot, int64_t t, float* out) const {
  const int64_t row = slot * T + t;
  if (hidden_dtype == HiddenDtype::BF16) {
    bf16_to_f32(static_cast<const uint16_t*>(hidden) + row * C, out, C);
  } else {
    const int8_t* q = static_cast<const int8_t*>(hidden) + row * C;
    const float s = hidden_scale[row];
    for (int64_t c = 0; c < C; ++c) out[c] = float(q[c]) * s;
  }
}

SequenceView view_record(const StoreInfo& info, const RecordLayout& layout, const uint8_t* rec) {
  SequenceView v;
  v.T = info.seq_len, v.L = info.num_layers, v.C = info.hidden_size, v.V = info.vocab_size;
  v.K = info.logits == LogitStorage::TopK ? info.top_k : 0;
  v.hidden_dtype = info.hidden_dtype, v.logits = info.logits, v.logp_dtype = info.logp_dtype;
  v.taps = info.stored_taps();
  v.ids = reinterpret_cast<const int32_t*>(rec + layout.ids);
  v.mask = rec + layout.mask;
  if (layout.tap_ids >= 0) v.tap_ids = reinterpret_cast<const uint16_t*>(rec + layout.tap_ids);
  v.hidden = rec + layout.hidden;
  if (layout.hidden_scale >= 0) v.hidden_scale = reinterpret_cast<const float*>(rec + layout.hidden_scale);
  if (layout.topk_ids >= 0) v.topk_ids = reinterpret_cast<const int32_t*>(rec + layout.topk_ids);
  v.logp = rec + layout.logp;
  if (layout.tail_logp >= 0) v.tail_logp = reinterpret_cast<const float*>(rec + layout.tail_logp);
  v.entropy = reinterpret_cast<const float*>(rec + layout.entropy);
  v.target_logp = reinterpret_cast<const float*>(rec + layout.target_logp);
  v.cos_sum = reinterpret_cast<const double*>(rec + layout.cos_sum);
  v.cos_count = reinterpret_cast<const int64_t*>(rec + layout.cos_count);
  return v;
}

// ---- encoding (the teacher-side math)

namespace {

// One position's logit statistics in one pass over its V logits: an online log-sum-exp
// (running max m; s = sum exp(z - m), w = sum exp(z - m) (z - m), both rescaled when m grows),
// and a heap of the K best (z, id) so far whose evicted entries, like every entry that never
// enters it, add to the tail sum in the same frame (so the tail mass is a sum of its own
// terms, never 1 - top mass: no cancellation). One exp per entry, plus one per rescale and per
// eviction (rare: O(K log(V/K)) for logits in random order).
// Then lse = m + log s and H = -sum p log p = log s - w / s (both terms >= 0).
struct LogitPass {
  struct Entry {
    float z;
    int32_t id;
  };
  // a before b: larger logit, ties to the lower id (the heap's front is the worst kept entry).
  static bool better(const Entry& a, const Entry& b) { return a.z > b.z || (a.z == b.z && a.id < b.id); }
  std::vector<Entry> heap;
  double m = 0, s = 0, w = 0, tail = 0, lse = 0, entropy = 0;

  void run(const float* z, int64_t V, int64_t K) {
    heap.clear();
    m = -std::numeric_limits<double>::infinity(), s = 0, w = 0, tail = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double x = z[v];
      if (x > m) {
        if (s > 0) {  // new frame: every term exp(u) becomes exp(u + d), u becomes u + d
          const double d = m - x, r = std::exp(d);
          w = r * (w + d * s);
          s *= r;
          tail *= r;
        }
        m = x;
      }
      const double u = x - m, e = std::exp(u);
      s += e;
      if (e > 0) w += e * u;  // (a -inf logit adds nothing, not 0 * -inf)
      if (int64_t(heap.size()) < K) {
        heap.push_back({z[v], int32_t(v)});
        std::push_heap(heap.begin(), heap.end(), better);
      } else if (K > 0 && z[v] > heap.front().z) {  // equal logits: the lower id (already kept) wins
        tail += std::exp(double(heap.front().z) - m);
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = {z[v], int32_t(v)};
        std::push_heap(heap.begin(), heap.end(), better);
      } else {
        tail += e;
      }
    }
    lse = m + std::log(s);
    entropy = std::log(s) - w / s;
    std::sort(heap.begin(), heap.end(), better);
  }
};

}  // namespace

void encode_record(const StoreInfo& info, const RecordLayout& layout, const int32_t* ids, const uint8_t* mask,
                   const std::vector<const float*>& hidden, const float* logits, uint8_t* out) {
  const int64_t T = info.seq_len, L = info.num_layers, C = info.hidden_size, V = info.vocab_size;
  const int64_t K = info.logits == LogitStorage::TopK ? info.top_k : 0;
  RZ_CHECK(int64_t(hidden.size()) == L + 1, "teacher store: %zu hidden-state taps given, expected L+1 = %lld",
           hidden.size(), (long long)(L + 1));
  for (int64_t i = 0; i <= T; ++i)
    RZ_CHECK(ids[i] >= 0 && ids[i] < V, "teacher store: token id %d at position %lld outside the vocabulary [0, %lld)",
             ids[i], (long long)i, (long long)V);
  std::memset(out, 0, size_t(layout.bytes));
  std::memcpy(out + layout.ids, ids, size_t(4 * (T + 1)));
  uint8_t* m = out + layout.mask;
  for (int64_t i = 0; i <= T; ++i) m[i] = mask ? (mask[i] != 0) : 1;

  // Adjacent-layer cosine sums over valid positions, both alignments, from the raw f32 taps:
  // the cosines in parallel, the sums in position order (the same bits as a serial loop).
  double* cs = reinterpret_cast<double*>(out + layout.cos_sum);
  int64_t* cc = reinterpret_cast<int64_t*>(out + layout.cos_count);
  {
    std::vector<double> cosv(size_t(T * L), 0.0);
#pragma omp parallel for schedule(static) if (T * L * C >= (1 << 16))
    for (int64_t t = 0; t < T; ++t) {
      if (!m[t + 1] && !m[t]) continue;
      for (int64_t l = 1; l <= L; ++l)
        cosv[size_t(t * L + l - 1)] = cosine(hidden[size_t(l)] + t * C, hidden[size_t(l - 1)] + t * C, C);
    }
    for (int64_t t = 0; t < T; ++t) {
      const bool valid[2] = {m[t + 1] != 0, m[t] != 0};  // razor, reference (NUMERICS §5)
      if (!valid[0] && !valid[1]) continue;
      for (int a = 0; a < 2; ++a) cc[a] += valid[a];
      for (int64_t l = 1; l <= L; ++l)
        for (int a = 0; a < 2; ++a)
          if (valid[a]) cs[a * L + (l - 1)] += cosv[size_t(t * L + l - 1)];
    }
  }

  // Which taps the record keeps: every one, or AFD's selection for this sequence alone with
  // k = selected_taps: c_l exactly as afd_layer_cosines computes it for a one-sequence batch.
  std::vector<int> taps;
  if (info.selected_taps > 0) {
    std::vector<double> c(size_t(L), 0.0);
    for (int64_t l = 0; l < L; ++l) c[size_t(l)] = cc[0] > 0 ? (0.0 + cs[l]) / double(cc[0]) : 0.0;
    taps = lowest_cosine_layers(c, int(info.selected_taps));
    RZ_ASSERT(int64_t(taps.size()) == info.selected_taps);
    uint16_t* tid = reinterpret_cast<uint16_t*>(out + layout.tap_ids);
    for (size_t j = 0; j < taps.size(); ++j) tid[j] = uint16_t(taps[j]);
  } else {
    for (int64_t l = 0; l <= L; ++l) taps.push_back(int(l));
  }

  // Hidden states of the kept taps, slot j = taps[j].
  for (int64_t j = 0; j < int64_t(taps.size()); ++j) {
    const float* src = hidden[size_t(taps[size_t(j)])];
    if (info.hidden_dtype == HiddenDtype::BF16) {
      f32_to_bf16(src, reinterpret_cast<uint16_t*>(out + layout.hidden) + j * T * C, T * C);
    } else {
      int8_t* q = reinterpret_cast<int8_t*>(out + layout.hidden) + j * T * C;
      float* scale = reinterpret_cast<float*>(out + layout.hidden_scale) + j * T;
#pragma omp parallel for schedule(static) if (T * C >= (1 << 16))
      for (int64_t t = 0; t < T; ++t) {
        const float* x = src + t * C;
        float amax = 0;
        for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::fabs(x[c]));
        // Per-token 8-bit absmax, as NUMERICS §4 (eps 1e-5, round half to even).
        const float s = std::max(amax, 1e-5f) / 127.0f;
        scale[t] = s;
        for (int64_t c = 0; c < C; ++c)
          q[t * C + c] = int8_t(std::min(127.0f, std::max(-127.0f, std::nearbyint(x[c] / s))));
      }
    }
  }

  // Logit distribution, per position, in double, one pass over the vocabulary each.
  float* entropy = reinterpret_cast<float*>(out + layout.entropy);
  float* target = reinterpret_cast<float*>(out + layout.target_logp);
  const bool f16 = info.logp_dtype == LogpDtype::F16;
  auto put_logp = [&](int64_t i, double lp) {
    if (f16) {
      // Keep finite: fp16 overflows below -65504.
      reinterpret_cast<uint16_t*>(out + layout.logp)[i] = f32_to_f16(float(std::max(lp, -65504.0)));
    } else {
      reinterpret_cast<float*>(out + layout.logp)[i] = float(lp);
    }
  };
#pragma omp parallel if (T * V >= (1 << 15))
  {
    LogitPass pass;
    pass.heap.reserve(size_t(K));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      const float* z = logits + t * V;
      pass.run(z, V, K);
      const double lse = pass.lse;
      entropy[t] = float(pass.entropy);
      target[t] = float(double(z[ids[t + 1]]) - lse);
      if (K == 0) {
        for (int64_t v = 0; v < V; ++v) put_logp(t * V + v, double(z[v]) - lse);
        continue;
      }
      int32_t* top = reinterpret_cast<int32_t*>(out + layout.topk_ids) + t * K;
      for (int64_t j = 0; j < K; ++j) {
        top[j] = pass.heap[size_t(j)].id;
        put_logp(t * K + j, double(pass.heap[size_t(j)].z) - lse);
      }
      reinterpret_cast<float*>(out + layout.tail_logp)[t] =
          pass.tail > 0 ? float(pass.m + std::log(pass.tail) - lse) : -std::numeric_limits<float>::infinity();
    }
  }
}

TeacherRecord TeacherRecord::make(const StoreInfo& info, const int32_t* ids, const uint8_t* mask,
                                  const std::vector<const float*>& hidden, const float* logits) {
  TeacherRecord r;
  r.info = info;
  r.layout = RecordLayout::make(info);
  r.storage.assign(size_t(r.layout.bytes / 8), 0);
  encode_record(info, r.layout, ids, mask, hidden, logits, reinterpret_cast<uint8_t*>(r.storage.data()));
  return r;
}

// ---- writer

std::string store_manifest_path(const std::string& dir) { return dir + "/manifest.json"; }
std::string store_shard_name(int64_t index) { return strfmt("shard-%05lld.bin", (long long)index); }

StoreWriter::StoreWriter(const std::string& dir, const StoreInfo& info) : dir_(dir), info_(info) {
  layout_ = RecordLayout::make(info_);
  RZ_CHECK(!dir.empty(), "teacher store: empty directory name");
  make_dirs(dir_);
  const std::string manifest = store_manifest_path(dir_);
  if (path_exists(manifest)) {
    StoreInfo have = info_from_json(Json::parse(read_file(manifest), manifest), manifest);
    if (!same_settings(have, info_))
      fail("%s: an existing teacher store with different settings (teacher %s, T=%lld, L=%lld, C=%lld, V=%lld, "
           "hidden %s, logits %s, %s); use another directory or delete it (or give the same --taps / --afd-k)",
           dir_.c_str(), hex64(have.teacher_hash).c_str(), (long long)have.seq_len, (long long)have.num_layers,
           (long long)have.hidden_size, (long long)have.vocab_size, to_string(have.hidden_dtype),
           to_string(have.logits),
           have.selected_taps > 0 ? strfmt("%lld selected taps", (long long)have.selected_taps).c_str() : "every tap");
    complete_ = true;
    next_ = have.num_sequences;
    info_.num_sequences = have.num_sequences;
    return;
  }
  // An unfinished dump: drop a partial shard, keep (and verify) the complete ones. Shards
  // after a gap come from a parallel dump (several writers, whole shards each: shard k holds
  // sequences from k*S); they are kept too, and next_sequence() is the end of the prefix.
  std::vector<int64_t> found;
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("shard-", 0) != 0) continue;
      if (name.size() > 8 && name.compare(name.size() - 8, 8, ".bin.tmp") == 0) {
        ::unlink((dir_ + "/" + name).c_str());
        continue;
      }
      long long k = -1;
      int used = 0;
      if (std::sscanf(name.c_str(), "shard-%lld.bin%n", &k, &used) == 1 && used == int(name.size()) && k >= 0 &&
          name == store_shard_name(k))
        found.push_back(k);
    }
    ::closedir(d);
  }
  std::sort(found.begin(), found.end());
  ShardHeader want = make_header(info_, layout_);
  bool prefix = true;
  for (int64_t i : found) {
    const std::string name = store_shard_name(i), path = dir_ + "/" + name;
    std::shared_ptr<MappedFile> map = MappedFile::open(path);
    const MappedFile& m = *map;
    ShardHeader h;
    try {
      h = validate_shard(m, want, layout_, path, true);
    } catch (const Error& e) {
      fail("%s (cannot resume the teacher dump: delete this shard and the ones after it, then re-run)", e.what());
    }
    if (prefix && i != int64_t(shards_.size())) prefix = false;  // a gap: the prefix ends here
    const int64_t first = int64_t(h.first_sequence), count = int64_t(h.num_sequences);
    if (prefix) {
      if (first != next_)
        fail("%s: starts at sequence %llu, expected %lld (shards out of order; delete it and the ones after it)",
             path.c_str(), (unsigned long long)h.first_sequence, (long long)next_);
      next_ += count;
    } else if (first != i * info_.shard_sequences || count > info_.shard_sequences) {
      fail("%s: starts at sequence %llu with %lld sequences, expected %lld with at most %lld (delete it and re-run)",
           path.c_str(), (unsigned long long)h.first_sequence, (long long)count,
           (long long)(i * info_.shard_sequences), (long long)info_.shard_sequences);
    }
    shards_.push_back({name, i, first, count, int64_t(m.size()), h.payload_checksum});
  }
  prefix_shards_ = 0;
  while (prefix_shards_ < int64_t(shards_.size()) && shards_[size_t(prefix_shards_)].index == prefix_shards_)
    ++prefix_shards_;
  info_.num_sequences = next_;
  record_.resize(size_t(layout_.bytes));
}

int64_t StoreWriter::shard_on_disk(int64_t k) const {
  for (const ShardMeta& s : shards_)
    if (s.index == k) return s.count;
  return -1;
}

void StoreWriter::start_shard(int64_t k) {
  if (complete_) fail("%s: the teacher store is complete (%lld sequences); it takes no more", dir_.c_str(), (long long)next_);
  RZ_ASSERT(fd_ < 0 && k >= 0);
  next_ = k * info_.shard_sequences;
  open_shard(k);
}

void StoreWriter::end_shard() {
  if (fd_ >= 0 && shard_count_ > 0) close_shard();
}

StoreWriter::~StoreWriter() {
  // An unfinished shard stays as *.tmp; the next StoreWriter on this directory deletes it.
  if (fd_ >= 0) ::close(fd_);
  delete static_cast<Hash64*>(hasher_);
}

void StoreWriter::open_shard(int64_t index) {
  open_index_ = index;
  const std::string name = store_shard_name(index);
  tmp_path_ = dir_ + "/" + name + ".tmp";
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd_ < 0) fail("%s: cannot create: %s", tmp_path_.c_str(), std::strerror(errno));
  ShardHeader h;
  std::memset(&h, 0, sizeof h);  // placeholder, rewritten by close_shard
  write_all(fd_, &h, sizeof h, tmp_path_);
  delete static_cast<Hash64*>(hasher_);
  hasher_ = new Hash64();
  shard_count_ = 0;
}

void StoreWriter::close_shard() {
  RZ_ASSERT(fd_ >= 0 && shard_count_ > 0);
  ShardHeader h = make_header(info_, layout_);
  h.first_sequence = uint64_t(next_ - shard_count_);
  h.num_sequences = uint64_t(shard_count_);
  h.payload_checksum = static_cast<Hash64*>(hasher_)->digest();
  seal_header(h);
  if (::pwrite(fd_, &h, sizeof h, 0) != ssize_t(sizeof h))
    fail("%s: header write failed: %s", tmp_path_.c_str(), std::strerror(errno));
  const std::string name = store_shard_name(open_index_);
  const std::string path = dir_ + "/" + name;
  const int fd = fd_;
  fd_ = -1;
  commit_file(fd, tmp_path_, path);  // io/file_util: the atomic writer's fsync + rename + directory fsync
  ShardMeta meta{name, open_index_, next_ - shard_count_, shard_count_,
                 int64_t(sizeof h) + shard_count_ * layout_.bytes, h.payload_checksum};
  auto it = std::find_if(shards_.begin(), shards_.end(), [&](const ShardMeta& s) { return s.index >= open_index_; });
  if (it != shards_.end() && it->index == open_index_)
    *it = meta;  // rewritten (a sequential dump reaching a shard a parallel one left)
  else
    shards_.insert(it, meta);
  if (open_index_ == prefix_shards_) ++prefix_shards_;
  shard_count_ = 0;
}

SequenceView StoreWriter::add_sequence(const int32_t* ids, const uint8_t* mask,
                                       const std::vector<const float*>& hidden, const float* logits) {
  if (complete_) fail("%s: the teacher store is complete (%lld sequences); it takes no more", dir_.c_str(), (long long)next_);
  encode_record(info_, layout_, ids, mask, hidden, logits, record_.data());
  if (fd_ < 0) open_shard(prefix_shards_);
  write_all(fd_, record_.data(), record_.size(), tmp_path_);
  static_cast<Hash64*>(hasher_)->update(record_.data(), record_.size());
  ++shard_count_;
  ++next_;
  if (shard_count_ == info_.shard_sequences) close_shard();
  return view_record(info_, layout_, record_.data());
}

void StoreWriter::finish() {
  if (complete_) return;
  if (fd_ >= 0 && shard_count_ > 0) close_shard();
  info_.num_sequences = next_;
  Json j = info_to_json(info_, layout_);
  Json shards = Json::array();
  int64_t covered = 0;
  for (const ShardMeta& s : shards_) {
    if (covered >= next_) break;  // shards past the end (a longer earlier dump) are not part of this store
    RZ_ASSERT(s.first == covered);
    covered += s.count;
    Json o = Json::object();
    o.set("file", s.file);
    o.set("first_sequence", s.first);
    o.set("sequences", s.count);
    o.set("bytes", s.bytes);
    o.set("checksum", hex64(s.checksum));
    shards.push_back(std::move(o));
  }
  RZ_ASSERT(covered == next_);
  j.set("shards", std::move(shards));
  write_file_atomic(store_manifest_path(dir_), j.dump(2) + "\n");
  fsync_dir(dir_);
  complete_ = true;
}

// ---- reader

struct StoreReader::Shard {
  std::string path;
  std::shared_ptr<MappedFile> map;
  int64_t first = 0, count = 0;
  uint64_t checksum = 0;
  mutable std::once_flag verified;
};

StoreReader::StoreReader(const std::string& dir, StoreVerify verify) : dir_(dir) {
  const std::string mpath = store_manifest_path(dir_);
  if (!path_exists(mpath))
    fail("%s: no manifest.json (not a teacher store, or an unfinished dump: re-run `razor teacher` to resume it)",
         dir_.c_str());
  const std::string text = read_file(mpath);
  manifest_bytes_ = int64_t(text.size());
  Json j = Json::parse(text, mpath);
  info_ = info_from_json(j, mpath);
  layout_ = RecordLayout::make(info_);
  if (j.has("record_bytes") && j.at("record_bytes").as_int() != layout_.bytes)
    fail("%s: record_bytes %lld does not match the layout (%lld)", mpath.c_str(),
         (long long)j.at("record_bytes").as_int(), (long long)layout_.bytes);
  const ShardHeader want = make_header(info_, layout_);
  const Json& list = j.at("shards", mpath.c_str());
  if (!list.is_array()) fail("%s: 'shards' must be an array", mpath.c_str());
  int64_t total = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& s = list[i];
    auto sh = std::make_unique<Shard>();
    const std::string file = s.at("file", mpath.c_str()).as_string("shards[].file");
    if (file.empty() || file.find('/') != std::string::npos || file[0] == '.')
      fail("%s: shard file name '%s' must be a plain name inside the store", mpath.c_str(), file.c_str());
    sh->path = dir_ + "/" + file;
    sh->count = s.at("sequences", mpath.c_str()).as_int("shards[].sequences");
    sh->first = s.get_int("first_sequence", total);
    sh->checksum = parse_hex64(s.at("checksum", mpath.c_str()).as_string(), (mpath + ": shards[].checksum").c_str());
    if (sh->first != total)
      fail("%s: shard %s starts at sequence %lld, expected %lld", mpath.c_str(), file.c_str(), (long long)sh->first,
           (long long)total);
    sh->map = MappedFile::open(sh->path);
    ShardHeader h = validate_shard(*sh->map, want, layout_, sh->path, false);
    if (int64_t(h.num_sequences) != sh->count || int64_t(h.first_sequence) != sh->first)
      fail("%s: the manifest says %lld sequences from %lld, the shard header says %llu from %llu", sh->path.c_str(),
           (long long)sh->count, (long long)sh->first, (unsigned long long)h.num_sequences,
           (unsigned long long)h.first_sequence);
    if (h.payload_checksum != sh->checksum)
      fail("%s: checksum %s in the header, %s in the manifest (mixed files from two dumps?)", sh->path.c_str(),
           hex64(h.payload_checksum).c_str(), hex64(sh->checksum).c_str());
    total += sh->count;
    shards_.push_back(std::move(sh));
  }
  if (total != info_.num_sequences)
    fail("%s: num_sequences is %lld but the shards hold %lld", mpath.c_str(), (long long)info_.num_sequences,
         (long long)total);
  if (verify == StoreVerify::Eager) {
    for (auto& sh : shards_) {
      std::call_once(sh->verified, [&] { validate_shard(*sh->map, want, layout_, sh->path, true); });
    }
  }
}

StoreReader::~StoreReader() = default;

const StoreReader::Shard& StoreReader::shard_for(int64_t i, int64_t* local) const {
  if (i < 0 || i >= info_.num_sequences)
    fail("%s: sequence %lld out of range [0, %lld)", dir_.c_str(), (long long)i, (long long)info_.num_sequences);
  auto it = std::upper_bound(shards_.begin(), shards_.end(), i,
                             [](int64_t x, const std::unique_ptr<Shard>& s) { return x < s->first; });
  const Shard& sh = **(it - 1);
  *local = i - sh.first;
  return sh;
}

SequenceView StoreReader::sequence(int64_t i) const {
  int64_t local;
  const Shard& sh = shard_for(i, &local);
  std::call_once(sh.verified, [&] { validate_shard(*sh.map, make_header(info_, layout_), layout_, sh.path, true); });
  return view_record(info_, layout_, sh.map->data() + sizeof(ShardHeader) + local * layout_.bytes);
}

void StoreReader::prefetch(int64_t first, int64_t count) const {
  for (int64_t i = std::max<int64_t>(first, 0); i < std::min(first + count, info_.num_sequences); ++i) {
    int64_t local;
    const Shard& sh = shard_for(i, &local);
    const int64_t off = int64_t(sizeof(ShardHeader)) + local * layout_.bytes;
    sh.map->prefetch(size_t(off), size_t(layout_.bytes));
  }
}

void StoreReader::check_compatible(uint64_t teacher_hash, uint64_t tokenizer_hash) const {
  if (teacher_hash != info_.teacher_hash)
    fail("%s: teacher store was made by teacher '%s' (hash %s), not the teacher given (hash %s); re-run `razor "
         "teacher` with this teacher or pass its store",
         dir_.c_str(), info_.teacher_id.c_str(), hex64(info_.teacher_hash).c_str(), hex64(teacher_hash).c_str());
  if (tokenizer_hash != info_.tokenizer_hash)
    fail("%s: teacher store was made with another tokenizer (hash %s, given %s); token ids would not match",
         dir_.c_str(), hex64(info_.tokenizer_hash).c_str(), hex64(tokenizer_hash).c_str());
}

StoreStats StoreReader::stats() const {
  StoreStats s;
  s.sequences = info_.num_sequences;
  s.tokens = info_.num_sequences * info_.seq_len;
  s.shards = int64_t(shards_.size());
  s.record_bytes = layout_.bytes;
  s.bytes_per_token = double(layout_.bytes) / double(info_.seq_len);
  s.total_bytes = manifest_bytes_;
  for (const auto& sh : shards_) s.total_bytes += int64_t(sh->map->size());
  return s;
}

}  // namespace razor
