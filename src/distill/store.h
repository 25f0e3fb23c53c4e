// The teacher store: what the teacher computed once, read back by training with mmap.
//
// A store is a directory holding manifest.json and shard files shard-NNNNN.bin. Each shard
// is a 128-byte header (magic "RZTSTORE", version, sizes, dtypes, the teacher and tokenizer
// hashes, a checksum of the payload and one of the header itself) followed by fixed-size
// per-sequence records. A record holds, each section starting on a 64-byte boundary:
//   ids          int32 [T+1]   the T input tokens and the next-token target of the last one
//   mask         uint8 [T+1]   1 = token is a real target (0: padding / prompt)
//   hidden       bf16 [L+1, T, C]  or int8 [L+1, T, C] + fp32 scale [L+1, T] (per token)
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

const char* to_string(HiddenDtype d);
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
  // Throws razor::Error naming the bad field.
  void validate() const;
};

// Byte offsets of the sections inside one record (see the file comment).
struct RecordLayout {
  int64_t ids = 0, mask = 0, hidden = 0, hidden_scale = -1, topk_ids = -1, logp = 0, tail_logp = -1,
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
  const int32_t* ids = nullptr;          // [T+1]
  const uint8_t* mask = nullptr;         // [T+1]
  const void* hidden = nullptr;          // [L+1, T, C] uint16 (bf16) or int8
  const float* hidden_scale = nullptr;   // [L+1, T] (int8 only)
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
  // Tap `layer` at position t decoded to f32: out [C].
  void hidden_row(int64_t layer, int64_t t, float* out) const;
};

// Computes one record from raw teacher outputs. ids [T+1] (each in [0, V)); mask [T+1]
// (nullptr = all ones; nonzero = 1); hidden: L+1 pointers to f32 [T, C]; logits f32 [T, V].
// Log-softmax, top-K (ties to the lower id), tail mass, entropy, target log-prob and the
// cosine sums are computed here in double. `out` must hold layout.bytes bytes.
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
  // See encode_record for the arguments.
  void add_sequence(const int32_t* ids, const uint8_t* mask, const std::vector<const float*>& hidden,
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
