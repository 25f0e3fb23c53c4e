#include "train/shards.h"

#include <algorithm>
#include <cstring>

#include "core/checksum.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/json.h"
#include "io/file_util.h"
#include "io/mapped_file.h"

namespace razor {

namespace {

constexpr char kMagic[8] = {'R', 'Z', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kVersion = 2;  // reads 1 and 2; writes 1 when no flag is set
constexpr uint32_t kFlagRecords = 1, kFlagMask = 2;
constexpr uint32_t kHeaderBytes = 64;

uint64_t pad8(uint64_t n) { return (n + 7) & ~uint64_t(7); }

template <typename T>
void put(unsigned char* h, size_t off, T v) { std::memcpy(h + off, &v, sizeof(T)); }
template <typename T>
T get(const unsigned char* h, size_t off) {
  T v;
  std::memcpy(&v, h + off, sizeof(T));
  return v;
}

}  // namespace

// Version 2 header checksum: bytes 0..47, then the flags and pad id (56..63).
uint64_t header_sum(const unsigned char* h, uint32_t version) {
  uint64_t s = fnv1a64(h, 48);
  return version >= 2 ? fnv1a64(h + 56, 8, s) : s;
}

void write_token_shard(const std::string& path, const std::vector<int32_t>& tokens,
                       const std::vector<uint64_t>& doc_starts, uint32_t vocab_size, const RecordSpec& rec) {
  RZ_CHECK(vocab_size > 0, "%s: vocab size must be > 0", path.c_str());
  const bool has_mask = !rec.mask.empty();
  RZ_CHECK(!has_mask || rec.mask.size() == tokens.size(), "%s: %zu mask bytes for %zu tokens", path.c_str(),
           rec.mask.size(), tokens.size());
  RZ_CHECK(!rec.records || (!doc_starts.empty() && doc_starts[0] == 0), "%s: a records shard needs document starts",
           path.c_str());
  RZ_CHECK(!rec.records || (rec.pad_id >= 0 && uint32_t(rec.pad_id) < vocab_size), "%s: pad id %d outside [0, %u)",
           path.c_str(), rec.pad_id, vocab_size);
  const uint32_t flags = (rec.records ? kFlagRecords : 0) | (has_mask ? kFlagMask : 0);
  const uint32_t version = flags ? 2 : 1;
  const uint32_t tb = vocab_size <= 65535 ? 2 : 4;
  // Token payload in its storage dtype, padded to 8 bytes.
  std::vector<unsigned char> body(pad8(tokens.size() * tb), 0);
  for (size_t i = 0; i < tokens.size(); ++i) {
    int32_t t = tokens[i];
    RZ_CHECK(t >= 0 && uint32_t(t) < vocab_size, "%s: token %zu has id %d outside the vocabulary [0, %u)",
             path.c_str(), i, t, vocab_size);
    if (tb == 2) put<uint16_t>(body.data(), i * 2, uint16_t(t));
    else put<uint32_t>(body.data(), i * 4, uint32_t(t));
  }
  for (size_t i = 0; i < doc_starts.size(); ++i) {
    RZ_CHECK(doc_starts[i] < tokens.size() && (i == 0 || doc_starts[i] > doc_starts[i - 1]),
             "%s: document start %zu (%llu) is not increasing or past the end", path.c_str(), i,
             (unsigned long long)doc_starts[i]);
  }
  std::vector<unsigned char> mask(has_mask ? pad8(tokens.size()) : 0, 0);
  for (size_t i = 0; has_mask && i < tokens.size(); ++i) mask[i] = rec.mask[i] ? 1 : 0;
  uint64_t sum = fnv1a64(body.data(), tokens.size() * tb);
  sum = fnv1a64(doc_starts.data(), doc_starts.size() * 8, sum);
  if (has_mask) sum = fnv1a64(mask.data(), tokens.size(), sum);

  unsigned char h[kHeaderBytes] = {};
  std::memcpy(h, kMagic, 8);
  put<uint32_t>(h, 8, version);
  put<uint32_t>(h, 12, kHeaderBytes);
  put<uint32_t>(h, 16, tb);
  put<uint32_t>(h, 20, vocab_size);
  put<uint64_t>(h, 24, tokens.size());
  put<uint64_t>(h, 32, doc_starts.size());
  put<uint64_t>(h, 40, sum);
  if (version >= 2) {
    put<uint32_t>(h, 56, flags);
    put<uint32_t>(h, 60, uint32_t(rec.records ? rec.pad_id : 0));
  }
  put<uint64_t>(h, 48, header_sum(h, version));

  AtomicFile w(path);
  w.write(h, sizeof h);
  w.write(body.data(), body.size());
  w.write(doc_starts.data(), doc_starts.size() * 8);
  w.write(mask.data(), mask.size());
  w.commit();
}

std::vector<std::string_view> split_documents(std::string_view text) {
  std::vector<std::string_view> docs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view d = text.substr(pos, end - pos);
    while (!d.empty() && d.back() == '\n') d.remove_suffix(1);
    while (!d.empty() && d.front() == '\n') d.remove_prefix(1);
    if (!d.empty()) docs.push_back(d);
    pos = end;
    while (pos < text.size() && text[pos] == '\n') ++pos;
  }
  return docs;
}

ShardBuilder::ShardBuilder(TextEncoder encoder, int32_t eos_id, uint32_t vocab_size)
    : encoder_(std::move(encoder)), eos_id_(eos_id), vocab_size_(vocab_size) {
  RZ_CHECK(eos_id >= 0 && uint32_t(eos_id) < vocab_size, "shard builder: EOS id %d outside the vocabulary [0, %u)",
           eos_id, vocab_size);
}

void ShardBuilder::add_document(std::string_view text, const std::string& what) {
  std::vector<int32_t> ids = encoder_(text);
  for (int32_t t : ids)
    RZ_CHECK(t >= 0 && uint32_t(t) < vocab_size_, "%s: encoder produced id %d outside the vocabulary [0, %u)",
             what.c_str(), t, vocab_size_);
  if (ids.empty()) return;
  doc_starts_.push_back(tokens_.size());
  tokens_.insert(tokens_.end(), ids.begin(), ids.end());
  tokens_.push_back(eos_id_);
}

void ShardBuilder::add_text_file(const std::string& path) {
  std::string text = read_file(path);
  size_t i = 0;
  for (std::string_view d : split_documents(text)) add_document(d, path + ": document " + std::to_string(++i));
}

void ShardBuilder::write(const std::string& path, const RecordSpec& records) const {
  write_token_shard(path, tokens_, doc_starts_, vocab_size_, records);
}

size_t build_token_shard(const std::vector<std::string>& text_files, const std::string& out_path,
                         const TextEncoder& encoder, int32_t eos_id, uint32_t vocab_size,
                         const std::vector<std::string>& extra_docs) {
  ShardBuilder b(encoder, eos_id, vocab_size);
  for (const std::string& f : text_files) b.add_text_file(f);
  for (size_t i = 0; i < extra_docs.size(); ++i) b.add_document(extra_docs[i], "extra document " + std::to_string(i + 1));
  RZ_CHECK(b.n_tokens() > 0, "%s: no tokens to write (empty inputs)", out_path.c_str());
  b.write(out_path);
  return b.n_tokens();
}

TokenShard::TokenShard(const std::string& path, bool verify_checksum) : path_(path) {
  map_ = MappedFile::open(path);
  const unsigned char* p = map_->data();
  const uint64_t size = map_->size();
  const char* f = path.c_str();
  RZ_CHECK(size >= kHeaderBytes, "%s: not a token shard: %llu bytes, shorter than the %u-byte header (truncated?)", f,
           (unsigned long long)size, kHeaderBytes);
  RZ_CHECK(std::memcmp(p, kMagic, 8) == 0, "%s: not a token shard (bad magic; expected \"RZTOKENS\")", f);
  uint32_t version = get<uint32_t>(p, 8);
  RZ_CHECK(version >= 1 && version <= kVersion, "%s: version: %u is not supported (this build reads versions 1 to %u)",
           f, version, kVersion);
  uint32_t hb = get<uint32_t>(p, 12);
  RZ_CHECK(hb == kHeaderBytes, "%s: header_bytes: %u, expected %u", f, hb, kHeaderBytes);
  RZ_CHECK(get<uint64_t>(p, 48) == header_sum(p, version), "%s: header checksum mismatch (header corrupted)", f);
  const uint32_t flags = version >= 2 ? get<uint32_t>(p, 56) : 0;
  RZ_CHECK((flags & ~(kFlagRecords | kFlagMask)) == 0, "%s: flags: 0x%x has unknown bits", f, flags);
  records_ = flags & kFlagRecords;
  token_bytes_ = get<uint32_t>(p, 16);
  RZ_CHECK(token_bytes_ == 2 || token_bytes_ == 4, "%s: token_bytes: %u, expected 2 (uint16) or 4 (uint32)", f,
           token_bytes_);
  vocab_size_ = get<uint32_t>(p, 20);
  // Ids are handed out as int32: a larger vocabulary would turn valid ids negative.
  RZ_CHECK(vocab_size_ > 0 && vocab_size_ <= uint32_t(INT32_MAX), "%s: vocab_size: %u is out of range [1, 2^31)", f,
           vocab_size_);
  RZ_CHECK(token_bytes_ == (vocab_size_ <= 65535 ? 2u : 4u), "%s: token_bytes: %u does not match vocab_size %u", f,
           token_bytes_, vocab_size_);
  n_tokens_ = get<uint64_t>(p, 24);
  n_docs_ = get<uint64_t>(p, 32);
  // Overflow-safe size check: each count is first bounded by the file size.
  RZ_CHECK(n_tokens_ <= size / token_bytes_ && n_docs_ <= size / 8,
           "%s: n_tokens %llu / n_docs %llu exceed the file size %llu (truncated or corrupt)", f,
           (unsigned long long)n_tokens_, (unsigned long long)n_docs_, (unsigned long long)size);
  const uint64_t mask_bytes = (flags & kFlagMask) ? pad8(n_tokens_) : 0;
  uint64_t expect = kHeaderBytes + pad8(n_tokens_ * token_bytes_) + n_docs_ * 8 + mask_bytes;
  RZ_CHECK(size == expect, "%s: file size %llu bytes, but the header (n_tokens %llu, n_docs %llu) needs %llu%s", f,
           (unsigned long long)size, (unsigned long long)n_tokens_, (unsigned long long)n_docs_,
           (unsigned long long)expect, size < expect ? " (truncated)" : "");
  tokens_ = p + kHeaderBytes;
  docs_ = tokens_ + pad8(n_tokens_ * token_bytes_);
  if (flags & kFlagMask) mask_ = docs_ + n_docs_ * 8;
  if (records_) {
    pad_id_ = int32_t(get<uint32_t>(p, 60));
    RZ_CHECK(uint32_t(pad_id_) < vocab_size_, "%s: pad_id: %d outside the vocabulary [0, %u)", f, pad_id_,
             vocab_size_);
    RZ_CHECK(n_docs_ >= 1 && get<uint64_t>(docs_, 0) == 0, "%s: a records shard without records (doc_starts)", f);
  }
  if (verify_checksum) {
    uint64_t sum = fnv1a64(tokens_, n_tokens_ * token_bytes_);
    sum = fnv1a64(docs_, n_docs_ * 8, sum);
    if (mask_) sum = fnv1a64(mask_, n_tokens_, sum);
    RZ_CHECK(sum == get<uint64_t>(p, 40), "%s: checksum mismatch (data corrupted; rebuild the shard)", f);
  }
  for (uint64_t i = 0; i < n_docs_; ++i) {
    uint64_t s = doc_start(i);
    RZ_CHECK(s < n_tokens_ && (i == 0 || s > doc_start(i - 1)),
             "%s: doc_starts[%llu] = %llu is out of order or past n_tokens", f, (unsigned long long)i,
             (unsigned long long)s);
  }
  // Token ids are range-checked on the fly in read(); a full scan here would touch every page.
}

TokenShard::~TokenShard() = default;

uint64_t TokenShard::doc_start(uint64_t i) const {
  RZ_ASSERT(i < n_docs_);
  return get<uint64_t>(docs_, i * 8);
}

int32_t TokenShard::token(uint64_t i) const {
  RZ_ASSERT(i < n_tokens_);
  return token_bytes_ == 2 ? int32_t(get<uint16_t>(tokens_, i * 2)) : int32_t(get<uint32_t>(tokens_, i * 4));
}

void TokenShard::read(uint64_t start, uint64_t n, int32_t* out) const {
  RZ_ASSERT(start <= n_tokens_ && n <= n_tokens_ - start);
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t t = token_bytes_ == 2 ? get<uint16_t>(tokens_, (start + i) * 2) : get<uint32_t>(tokens_, (start + i) * 4);
    RZ_CHECK(t < vocab_size_, "%s: token %llu has id %u >= vocab_size %u (corrupt shard)", path_.c_str(),
             (unsigned long long)(start + i), t, vocab_size_);
    out[i] = int32_t(t);
  }
}

void TokenShard::read_mask(uint64_t start, uint64_t n, uint8_t* out) const {
  RZ_ASSERT(start <= n_tokens_ && n <= n_tokens_ - start);
  if (mask_) std::memcpy(out, mask_ + start, n);
  else std::memset(out, 1, n);
}

BatchSampler::BatchSampler(const TokenShard& shard, int batch, int seq_len, uint64_t seed)
    : shard_(shard), batch_(batch), seq_len_(seq_len), seed_(seed) {
  RZ_CHECK(batch > 0 && seq_len > 0, "batch sampler: batch (%d) and sequence length (%d) must be > 0", batch, seq_len);
  RZ_CHECK(shard.records() || shard.size() >= uint64_t(seq_len) + 1,
           "%s: %llu tokens, too few for one window of sequence length %d (+1 target)", shard.path().c_str(),
           (unsigned long long)shard.size(), seq_len);
}

void BatchSampler::sample(int64_t step, int32_t* out, uint8_t* mask) const {
  RZ_ASSERT(step >= 0);
  const uint64_t T1 = uint64_t(seq_len_) + 1;
  const uint64_t n_starts = shard_.records() ? shard_.n_docs() : shard_.size() - T1 + 1;
  for (int b = 0; b < batch_; ++b) {
    // A fresh stream per (seed, step, row): no state to carry across a resume.
    Rng rng(fnv1a64(&b, sizeof b, fnv1a64(&step, sizeof step, fnv1a64(&seed_, sizeof seed_))));
    const uint64_t i = rng.below(n_starts);
    int32_t* row = out + size_t(b) * T1;
    if (shard_.records()) {
      std::vector<uint8_t> m(T1);
      data_sequence(shard_, seq_len_, i, row, m.data());
      if (mask) std::copy(m.begin(), m.end(), mask + size_t(b) * T1);
    } else {
      shard_.read(i, T1, row);
      if (mask) shard_.read_mask(i, T1, mask + size_t(b) * T1);
    }
  }
}

std::vector<int32_t> BatchSampler::sample(int64_t step) const {
  std::vector<int32_t> out(size_t(batch_) * size_t(seq_len_ + 1));
  sample(step, out.data());
  return out;
}

uint64_t eval_window_count(const TokenShard& shard, int seq_len) {
  RZ_CHECK(seq_len > 0, "evaluation windows: sequence length must be > 0 (got %d)", seq_len);
  return shard.size() < 1 ? 0 : (shard.size() - 1) / uint64_t(seq_len);
}

void eval_window(const TokenShard& shard, int seq_len, uint64_t i, int32_t* out) {
  RZ_ASSERT(i < eval_window_count(shard, seq_len));
  shard.read(i * uint64_t(seq_len), uint64_t(seq_len) + 1, out);
}

uint64_t data_sequence_count(const TokenShard& shard, int seq_len) {
  return shard.records() ? shard.n_docs() : eval_window_count(shard, seq_len);
}

static uint64_t record_end(const TokenShard& shard, uint64_t i) {
  return i + 1 < shard.n_docs() ? shard.doc_start(i + 1) : shard.size();
}

void data_sequence(const TokenShard& shard, int seq_len, uint64_t i, int32_t* ids, uint8_t* mask) {
  RZ_ASSERT(i < data_sequence_count(shard, seq_len));
  const uint64_t T1 = uint64_t(seq_len) + 1;
  if (!shard.records()) {
    shard.read(i * uint64_t(seq_len), T1, ids);
    shard.read_mask(i * uint64_t(seq_len), T1, mask);
    return;
  }
  const uint64_t start = shard.doc_start(i);
  const uint64_t n = std::min(record_end(shard, i) - start, T1);
  shard.read(start, n, ids);
  shard.read_mask(start, n, mask);
  std::fill(ids + n, ids + T1, shard.pad_id());
  std::fill(mask + n, mask + T1, uint8_t(0));
}

uint64_t truncated_records(const TokenShard& shard, int seq_len) {
  uint64_t n = 0;
  for (uint64_t i = 0; shard.records() && i < shard.n_docs(); ++i)
    n += record_end(shard, i) - shard.doc_start(i) > uint64_t(seq_len) + 1;
  return n;
}

}  // namespace razor
