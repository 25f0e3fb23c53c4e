// Token shards: tokenized text in one binary file that training memory-maps, a builder
// from text files, and a batch sampler that is a pure function of (seed, step).
//
// File layout (little-endian), every field checked against the file size on open:
//   offset  size  field
//        0     8  magic "RZTOKENS"
//        8     4  version (1)
//       12     4  header_bytes (64)
//       16     4  token_bytes: 2 (uint16, vocab <= 65535) or 4 (uint32)
//       20     4  vocab_size (every token id is < vocab_size)
//       24     8  n_tokens
//       32     8  n_docs (0: no document boundaries stored)
//       40     8  checksum: FNV-1a 64 over the token bytes, then the doc-start bytes
//       48     8  header checksum: FNV-1a 64 over bytes 0..47
//       56     4  flags (version 2; 0 in version 1): bit 0 = records (every document is one
//                 training sequence, never windowed across), bit 1 = a loss mask is stored
//       60     4  pad_id (version 2): the token that pads a record to the sequence length
//       64        tokens [n_tokens * token_bytes], zero-padded to a multiple of 8 bytes
//        …        doc_starts uint64 [n_docs] (token index where each document begins)
//        …        mask uint8 [n_tokens] (flag bit 1 only; 1 = a real target, 0 = prompt / role
//                 tokens of chat data), zero-padded to a multiple of 8 bytes
// The file size must equal exactly 64 + pad8(n_tokens * token_bytes) + 8 * n_docs
// (+ pad8(n_tokens) with a mask). A shard without flags is written as version 1 (byte for
// byte what earlier builds wrote); version 2's header checksum also covers bytes 56..63 and
// its payload checksum the mask bytes.
// Deliberately not here: the tokenizer (the builder takes any encoder callback), the
// teacher store (src/distill), multi-shard datasets (one shard per split suffices here).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace razor {

class MappedFile;
using TextEncoder = std::function<std::vector<int32_t>(std::string_view)>;

// One record per sequence (chat data, `--records`): how a shard's documents are read.
struct RecordSpec {
  bool records = false;       // every document is one sequence (padded or truncated)
  std::vector<uint8_t> mask;  // [n_tokens] loss mask (empty: every token is a target)
  int32_t pad_id = 0;         // pads a record to T+1 tokens (masked out)
};

// Writes a shard (temporary name + fsync + rename). doc_starts may be empty (not with
// records: each record is a document).
void write_token_shard(const std::string& path, const std::vector<int32_t>& tokens,
                       const std::vector<uint64_t>& doc_starts, uint32_t vocab_size,
                       const RecordSpec& records = RecordSpec());

// Splits corpus text into documents: separated by one or more empty lines ("\n\n"), as
// tools/fetch_corpus.sh writes them. Empty documents are dropped.
std::vector<std::string_view> split_documents(std::string_view text);

// Accumulates documents, each followed by eos_id, and writes one shard.
class ShardBuilder {
 public:
  ShardBuilder(TextEncoder encoder, int32_t eos_id, uint32_t vocab_size);
  // `what` names the source in errors (file and document number).
  void add_document(std::string_view text, const std::string& what = "document");
  // Every document of a text file (split_documents).
  void add_text_file(const std::string& path);
  size_t n_docs() const { return doc_starts_.size(); }
  size_t n_tokens() const { return tokens_.size(); }
  // records.records: every document is one sequence (its mask stays empty: all targets).
  void write(const std::string& path, const RecordSpec& records = RecordSpec()) const;

 private:
  TextEncoder encoder_;
  int32_t eos_id_;
  uint32_t vocab_size_;
  std::vector<int32_t> tokens_;
  std::vector<uint64_t> doc_starts_;
};

// Convenience: all documents of the given text files, then extra_docs (e.g. arithmetic
// lines), into one shard. Returns the token count.
size_t build_token_shard(const std::vector<std::string>& text_files, const std::string& out_path,
                         const TextEncoder& encoder, int32_t eos_id, uint32_t vocab_size,
                         const std::vector<std::string>& extra_docs = {});

// A read-only, memory-mapped shard. Opening validates magic, version, sizes, dtype,
// document offsets and (unless verify_checksum is false) the checksum; errors name the
// file and the field.
class TokenShard {
 public:
  explicit TokenShard(const std::string& path, bool verify_checksum = true);
  ~TokenShard();
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return n_tokens_; }
  uint32_t vocab_size() const { return vocab_size_; }
  uint32_t token_bytes() const { return token_bytes_; }
  uint64_t n_docs() const { return n_docs_; }
  uint64_t doc_start(uint64_t i) const;
  int32_t token(uint64_t i) const;
  // Copies tokens [start, start + n) as int32; start + n must be <= size().
  void read(uint64_t start, uint64_t n, int32_t* out) const;
  // One record per sequence (RecordSpec): documents are sequences, never windowed across.
  bool records() const { return records_; }
  bool has_mask() const { return mask_ != nullptr; }
  int32_t pad_id() const { return pad_id_; }
  // Loss mask of tokens [start, start + n) (all ones without a stored mask).
  void read_mask(uint64_t start, uint64_t n, uint8_t* out) const;

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  uint64_t n_tokens_ = 0, n_docs_ = 0;
  uint32_t vocab_size_ = 0, token_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;
  const unsigned char* docs_ = nullptr;
  const unsigned char* mask_ = nullptr;
  bool records_ = false;
  int32_t pad_id_ = 0;
};

// Random training sequences: window b of step s starts at an offset drawn from an RNG seeded
// by (seed, s, b) alone, so a resumed run (same seed, same step) sees exactly the batches
// the interrupted one would have seen: the data cursor is just the step. On a records shard
// row b is record rng.below(n_docs) instead (data_sequence).
class BatchSampler {
 public:
  BatchSampler(const TokenShard& shard, int batch, int seq_len, uint64_t seed);
  int batch() const { return batch_; }
  int seq_len() const { return seq_len_; }
  // out: [B, T+1] int32 (inputs are [:, :T], next-token targets [:, 1:]); mask (optional):
  // [B, T+1], 0 where a token is no target (padding, prompt).
  void sample(int64_t step, int32_t* out, uint8_t* mask = nullptr) const;
  std::vector<int32_t> sample(int64_t step) const;

 private:
  const TokenShard& shard_;
  int batch_, seq_len_;
  uint64_t seed_;
};

// Sequential, non-overlapping evaluation windows: window i covers tokens
// [i*T, i*T + T + 1). count() is how many fit.
uint64_t eval_window_count(const TokenShard& shard, int seq_len);
void eval_window(const TokenShard& shard, int seq_len, uint64_t i, int32_t* out /* [T+1] */);

// The fixed sequences of a shard, as the teacher dump and evaluation read them: the
// evaluation windows above, or on a records shard one sequence per record: its first T+1
// tokens (truncated), right-padded with pad_id() whose mask is 0. ids, mask: [T+1].
uint64_t data_sequence_count(const TokenShard& shard, int seq_len);
void data_sequence(const TokenShard& shard, int seq_len, uint64_t i, int32_t* ids, uint8_t* mask);
// Records longer than T+1 tokens (truncated by data_sequence).
uint64_t truncated_records(const TokenShard& shard, int seq_len);

}  // namespace razor
