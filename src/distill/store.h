// The teacher store: what the teacher computed once, read back by training with mmap.
//
// A store is a directory holding manifest.json and shard files shard-NNNNN.bin. Each shard
// is a 128-byte header (magic "RZTSTORE", version, sizes, dtypes, the teacher and tokenizer
// hashes, a checksum of the payload and one of the header itself) followed by fixed-size
// per-sequence records. A record holds, each section starting on a 64-byte boundary:
//   ids          int32 [T+1]   the T input tokens and the next-token target of the last one
//   mask         uint8 [T+1]   1 = token is a real target (0: padding / prompt)
//   tap_ids      uint16 [n]    (selected-tap stores only) the n feature taps kept, ascending
//   hidden       bf16 [N, T, C]  or int8 [N, T, C] + fp32 scale [N, T] (per token), N = L+1
//                (every tap) or n (the taps AFD selects for this sequence, see below)
//                tap 0 = embedding output, 1..L-1 = decoder layer outputs, L = final norm
//   topk_ids     int32 [T, K]  (top-K store) teacher's K most likely tokens, descending
//   logp         f32|f16 [T, K] (top-K) or [T, V] (full): teacher log-probabilities
//   tail_logp    f32 [T]       (top-K) log of the tail mass 1 - sum_K p (-inf when K = V)
//   entropy      f32 [T]       exact full-vocabulary teacher entropy (nats)
//   target_logp  f32 [T]       teacher log p(ids[t+1]) (for CAKLD's lambda)
//   cos_sum      f64 [2, L]    sum over valid positions of cos(F^(l), F^(l-1)), l = 1..L;
//                              row 0 under razor's alignment, row 1 under --mask-align reference
//   cos_count    i64 [2]       the number of valid positions of each row
// The tail is stored as a log so that a tiny tail mass never underflows to 0 (which would
// make RKL infinite). The manifest is written last; a directory without it is an unfinished
// dump, which StoreWriter resumes after the last complete shard. Byte order: little-endian
// (every platform razor builds for).
// Deliberately not here: the losses (distill/losses.h) and running the teacher (src/nn).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace razor {

enum class HiddenDtype : uint8_t { BF16 = 0, INT8 = 1 };
enum class LogitStorage : uint8_t { TopK = 0, Full = 1 };
enum class LogpDtype : uint8_t { F32 = 0, F16 = 1 };

// --taps: every feature tap, only the ones AFD selects per sequence, or auto (selected when
// every tap would take the record past kAutoTapsBytesPerToken bytes per token).
enum class TapStorage : uint8_t { Auto = 0, All = 1, Selected = 2 };
constexpr int64_t kAutoTapsBytesPerToken = 8192;

const char* to_string(HiddenDtype d);
TapStorage parse_tap_storage(const std::string& s);  // "auto" | "all" | "selected"

const char* to_string(LogitStorage s);
const char* to_string(LogpDtype d);
HiddenDtype parse_hidden_dtype(const std::string& s);  // "bf16" | "int8"
LogitStorage parse_logit_storage(const std::string& s);  // "topk" | "full"
LogpDtype parse_logp_dtype(const std::string& s);        // "f32" | "f16"

// What a store holds; given to the writer, read back from the manifest.
struct StoreInfo {
  std::string teacher_id;       // a name for humans (e.g. the checkpoint directory)
  uint64_t teacher_hash = 0;    // e.g. hash64_file(model.safetensors)
  uint64_t tokenizer_hash = 0;  // e.g. hash64_file(tokenizer.json)
  int64_t seq_len = 0;          // T
  int64_t num_layers = 0;       // L (the store keeps L+1 feature taps)
  int64_t hidden_size = 0;      // C
  int64_t vocab_size = 0;       // V
  HiddenDtype hidden_dtype = HiddenDtype::BF16;
  LogitStorage logits = LogitStorage::TopK;
  int64_t top_k = 64;                  // K (top-K stores only)
  LogpDtype logp_dtype = LogpDtype::F32;  // f16 halves the log-prob bytes (default for full)
  int64_t shard_sequences = 64;        // S: sequences per shard
  int64_t num_sequences = 0;           // in the manifest: sequences stored
  // 0: every feature tap (L+1; format version 1). n in [1, min(L, 255)]: per sequence only
  // the n taps with the lowest c_l of that sequence (AFD's rule with k = n; version 2).
  int64_t selected_taps = 0;
  int64_t stored_taps() const { return selected_taps > 0 ? selected_taps : num_layers + 1; }
  // Throws razor::Error naming the bad field.
  void validate() const;
};

// The selected-tap setting `--taps` gives for a store of `info`'s shape (info.selected_taps
// ignored): 0 for All; min(afd_k, L) for Selected; Auto: Selected when the record with every
// tap would exceed kAutoTapsBytesPerToken bytes per token, else All.
int64_t resolve_selected_taps(TapStorage taps, int afd_k, const StoreInfo& info);

// AFD's layer rule (NUMERICS §6), shared by the dump and the loss: the k layers l in [1, L]
// whose c[l-1] are lowest (stable: ties go to the lower index), returned ascending; all L
// when k >= L. c has L entries.
std::vector<int> lowest_cosine_layers(const std::vector<double>& c, int k);

// Byte offsets of the sections inside one record (see the file comment).
struct RecordLayout {
  int64_t ids = 0, mask = 0, tap_ids = -1, hidden = 0, hidden_scale = -1, topk_ids = -1, logp = 0, tail_logp = -1,
          entropy = 0, target_logp = 0, cos_sum = 0, cos_count = 0;
  int64_t bytes = 0;  // record size, a multiple of 64
  static RecordLayout make(const StoreInfo& info);
};

// One sequence of teacher data: pointers into a mapped shard (or a TeacherRecord). Valid
// as long as the StoreReader / TeacherRecord lives.
struct SequenceView {
  int64_t T = 0, L = 0, C = 0, V = 0, K = 0;  // K = 0 for a full store
  HiddenDtype hidden_dtype = HiddenDtype::BF16;
  LogitStorage logits = LogitStorage::TopK;
  LogpDtype logp_dtype = LogpDtype::F32;
  int64_t taps = 0;                      // N: taps stored (L+1, or n for a selected-tap store)
  const int32_t* ids = nullptr;          // [T+1]
  const uint8_t* mask = nullptr;         // [T+1]
  const uint16_t* tap_ids = nullptr;     // [N] ascending (selected-tap stores; nullptr: tap i is slot i)
  const void* hidden = nullptr;          // [N, T, C] uint16 (bf16) or int8
  const float* hidden_scale = nullptr;   // [N, T] (int8 only)
  const int32_t* topk_ids = nullptr;     // [T, K]
  const void* logp = nullptr;            // [T, K] or [T, V], f32 or f16
  const float* tail_logp = nullptr;      // [T] (top-K only)
  const float* entropy = nullptr;        // [T]
  const float* target_logp = nullptr;    // [T]
  const double* cos_sum = nullptr;       // [2, L]
  const int64_t* cos_count = nullptr;    // [2]

  int64_t bins() const { return logits == LogitStorage::TopK ? K : V; }
  // Teacher log-prob of bin j (top-K: the j-th most likely token; full: token j) at t.
  float logp_at(int64_t t, int64_t j) const;
  // The slot holding feature tap `layer`, or -1 when this record does not keep it.
  int64_t tap_slot(int64_t layer) const;
  bool has_tap(int64_t layer) const { return tap_slot(layer) >= 0; }
  // Tap `layer` at position t decoded to f32: out [C]. A tap the record does not keep is a
  // razor::Error (callers check has_tap first).
  void hidden_row(int64_t layer, int64_t t, float* out) const;
  // The tap in slot `slot` (in [0, taps)) at position t: out [C].
  void hidden_slot_row(int64_t slot, int64_t t, float* out) const;
};

// Computes one record from raw teacher outputs. ids [T+1] (each in [0, V)); mask [T+1]
// (nullptr = all ones; nonzero = 1); hidden: L+1 pointers to f32 [T, C] (every tap, also for
// a selected-tap store: the selection needs them all); logits f32 [T, V].
// Log-softmax, top-K (ties to the lower id), tail mass, entropy and target log-prob are
// computed in double in one pass over each position's V logits (an online log-sum-exp, one
// exp per entry; threaded over positions); the cosine sums in double from the f32 taps, and
// from them the selected taps. `out` must hold layout.bytes bytes.
void encode_record(const StoreInfo& info, const RecordLayout& layout, const int32_t* ids, const uint8_t* mask,
                   const std::vector<const float*>& hidden, const float* logits, uint8_t* out);
SequenceView view_record(const StoreInfo& info, const RecordLayout& layout, const uint8_t* record);

// An in-memory record (tests, and callers that score a teacher on the fly).
struct TeacherRecord {
  StoreInfo info;
  RecordLayout layout;
  std::vector<uint64_t> storage;  // 8-byte aligned bytes
  SequenceView view() const {
    return view_record(info, layout, reinterpret_cast<const uint8_t*>(storage.data()));
  }
  static TeacherRecord make(const StoreInfo& info, const int32_t* ids, const uint8_t* mask,
                            const std::vector<const float*>& hidden, const float* logits);
};

// Writes a store; resumes an unfinished one. Not thread-safe (one writer per directory).
class StoreWriter {
 public:
  // Creates `dir` when missing. When it holds complete shards from an interrupted dump
  // with the same settings, they are kept (checksums verified) and next_sequence() says
  // where to resume; a leftover temporary shard is deleted. A finished store (manifest
  // present) with the same settings is complete() and accepts no more sequences. Different
  // settings or a damaged shard: razor::Error saying what to do.
  StoreWriter(const std::string& dir, const StoreInfo& info);
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  int64_t next_sequence() const { return next_; }
  bool complete() const { return complete_; }
  // See encode_record for the arguments. Returns a view of the record just written, valid
  // until the next call.
  SequenceView add_sequence(const int32_t* ids, const uint8_t* mask, const std::vector<const float*>& hidden,
                    const float* logits);
  // Writes the last (partial) shard and then the manifest. The shards on disk must cover
  // [0, next_sequence()) without a gap.
  void finish();

  // Parallel dumps: several writers (one per process) on one directory, each writing whole
  // shards; shard k holds sequences [k*S, min(k*S + S, total)). Construct every writer before
  // any of them writes (the constructor deletes leftover temporary shards), write, wait for
  // all, then one process opens a new StoreWriter (which finds the prefix complete) and
  // calls finish().
  // Sequences in complete shard k found on disk or written by this writer (-1: none).
  int64_t shard_on_disk(int64_t k) const;
  // The next add_sequence calls fill shard k, from sequence k*S; it closes itself after S.
  void start_shard(int64_t k);
  // Closes the open shard when it holds fewer than S sequences (the last shard).
  void end_shard();

 private:
  struct ShardMeta {
    std::string file;
    int64_t index = 0, first = 0, count = 0, bytes = 0;
    uint64_t checksum = 0;
  };
  void open_shard(int64_t index);
  void close_shard();
  std::string dir_;
  StoreInfo info_;
  RecordLayout layout_;
  std::vector<ShardMeta> shards_;  // by index; a parallel dump may leave gaps
  int64_t prefix_shards_ = 0;      // shards 0..prefix_shards_-1 are all present
  int64_t open_index_ = -1;        // index of the open shard
  std::vector<uint8_t> record_;
  int fd_ = -1;
  std::string tmp_path_;
  int64_t shard_count_ = 0;  // sequences in the open shard
  void* hasher_ = nullptr;   // Hash64 of the open shard's payload
  int64_t next_ = 0;
  bool complete_ = false;
};

enum class StoreVerify { Eager, Lazy };  // checksums + id ranges on open, or per shard on first access

struct StoreStats {
  int64_t sequences = 0, tokens = 0, shards = 0;
  int64_t record_bytes = 0;
  double bytes_per_token = 0;  // record_bytes / T
  int64_t total_bytes = 0;     // shard files + manifest
};

class StoreReader {
 public:
  explicit StoreReader(const std::string& dir, StoreVerify verify = StoreVerify::Eager);
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  const StoreInfo& info() const { return info_; }
  int64_t num_sequences() const { return info_.num_sequences; }
  // Sequence i in [0, num_sequences). With StoreVerify::Lazy the first access to a shard
  // verifies its checksum and that every token / top-K id lies in [0, V) (thread-safe); a
  // bad shard throws razor::Error.
  SequenceView sequence(int64_t i) const;
  // Asks the kernel to read sequences [first, first+count) ahead (madvise WILLNEED), so the
  // next micro-batch is in memory before the training step needs it.
  void prefetch(int64_t first, int64_t count) const;
  // Refuses (razor::Error) a store made by another teacher or tokenizer.
  void check_compatible(uint64_t teacher_hash, uint64_t tokenizer_hash) const;
  StoreStats stats() const;

 private:
  struct Shard;
  const Shard& shard_for(int64_t i, int64_t* local) const;
  std::string dir_;
  StoreInfo info_;
  RecordLayout layout_;
  std::vector<std::unique_ptr<Shard>> shards_;
  int64_t manifest_bytes_ = 0;
};

// The store's file names.
std::string store_manifest_path(const std::string& dir);
std::string store_shard_name(int64_t index);  // "shard-00003.bin"

}  // namespace razor
