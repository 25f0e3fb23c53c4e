// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Qwen2/Qwen3, Llama 3,
// GPT-2), and a small trainer that writes one.
//
// Encoding, as Hugging Face tokenizers does it:
//   1. added tokens (special or not) are cut out of the raw text first, leftmost-longest;
//   2. each remaining section is normalized (NFC, or not at all);
//   3. split into pieces by the pre-tokenizer regex (io/pretokenize.h) or not split;
//   4. each piece's bytes become byte-level symbols and are merged by rank (lowest rank
//      first, leftmost on ties); pieces are cached, so repeated words cost a hash lookup.
// Decoding maps tokens back to bytes and replaces invalid UTF-8 by U+FFFD.
// Supported file: model.type "BPE" without dropout / byte_fallback / subword affixes;
// normalizer null, NFC or a Sequence of NFC; pre_tokenizer ByteLevel, or Sequence [Split
// (a known regex, Isolated), ByteLevel]; decoder ByteLevel or null. Anything else is an
// error naming the file and field. Post-processors (BOS insertion) are not applied: encode
// returns only the text's tokens; callers add bos_id() themselves when a model wants it.
// Added tokens' lstrip/rstrip are honoured; single_word is ignored; all added tokens are
// matched on the raw text (transformers.js does the same).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/pretokenize.h"

namespace razor {

class Json;  // io/json.h

struct TokenizerCache;

class Tokenizer {
 public:
  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Loads a tokenizer.json; errors name the file and the field.
  static Tokenizer load(const std::string& path);
  static Tokenizer from_json(std::string_view json_text, const std::string& source);

  // Thread-safe. Ids of the text (no BOS/EOS added).
  std::vector<int32_t> encode(std::string_view text) const;
  void encode_append(std::string_view text, std::vector<int32_t>& out) const;
  // UTF-8 text of ids; invalid byte sequences become U+FFFD. Ids out of range are an error.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The raw bytes one token stands for (may be a partial UTF-8 sequence).
  const std::string& token_bytes(int32_t id) const;

  int32_t vocab_size() const { return int32_t(id_to_token_.size()); }  // max id + 1
  // Id of a token as spelled in the file (byte-level form, or an added token's content);
  // -1 when absent.
  int32_t token_to_id(std::string_view token) const;
  const std::string& id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  // Id of an added token with this content, or -1.
  int32_t added_id(std::string_view content) const;
  // First added token present of the usual names, or -1: BOS <|begin_of_text|>, <s>, <|startoftext|>;
  // EOS <|endoftext|>, <|end_of_text|>, </s>, <|im_end|>, <|eot_id|>.
  int32_t bos_id() const;
  int32_t eos_id() const;

  bool has_nfc() const { return nfc_; }
  bool has_split() const { return split_; }
  SplitPattern split_pattern() const { return pattern_; }
  size_t merge_count() const { return merge_count_; }
  // Sections longer than twice `bytes` are encoded in chunks of about that size, cut where
  // the pieces cannot change; this bounds memory. (Tests set it small to exercise cuts.)
  void set_encode_chunk(size_t bytes) { encode_chunk_ = bytes < 1 ? 1 : bytes; }

 private:
  struct AddedToken {
    std::string content;
    int32_t id;
    bool special, lstrip, rstrip;
  };
  struct MergeSlot {
    uint64_t key;  // (left id << 32) | right id; kEmpty when unused
    int32_t rank, merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t(0);

  const MergeSlot* find_merge(int32_t a, int32_t b) const;
  void add_merge(int32_t a, int32_t b, int32_t rank, int32_t merged);
  void encode_section(std::string_view section, TokenizerCache* cache, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, TokenizerCache* cache, std::vector<int32_t>& out) const;
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> id_to_token_;  // spelled as in the file ("" for holes)
  std::vector<std::string> id_bytes_;     // raw bytes per id
  std::vector<uint8_t> special_;          // per id
  std::unordered_map<std::string, int32_t> vocab_;  // model vocabulary (byte-level form)
  std::vector<AddedToken> added_;         // sorted longest first
  bool added_first_byte_[256] = {};
  int32_t byte_id_[256] = {};             // id of each single-byte symbol
  std::vector<MergeSlot> merges_;         // open addressing, power-of-two size
  size_t merge_count_ = 0;
  bool nfc_ = false, split_ = false, ignore_merges_ = false, add_prefix_space_ = false;
  SplitPattern pattern_ = SplitPattern::Qwen2;
  size_t encode_chunk_ = size_t(1) << 16;
  std::unique_ptr<TokenizerCache> cache_;
};

// GPT-2's reversible byte -> printable character map ("Ġ" for a space); as UTF-8.
const std::string& byte_level_char(uint8_t b);
// The byte-level spelling of raw bytes.
std::string byte_level_encode(std::string_view bytes);

// BPE training. The corpus is split on the special tokens, NFC-normalized and pre-tokenized
// with the Qwen2 regex; merges are learned greedily by pair frequency over distinct pieces
// weighted by their counts. Ties go to the pair whose (left id, right id) is smallest, ids
// being assigned in creation order (bytes first, in byte-level character order) -- so the
// result is deterministic. Stops at vocab_size tokens (bytes + merges + specials) or when
// no pair occurs min_frequency times. Returns a Qwen-style tokenizer.json.
struct BpeTrainOptions {
  int vocab_size = 4096;
  int min_frequency = 2;
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
};
std::string train_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& options);
inline std::string train_bpe(const std::vector<std::string>& texts, int vocab_size) {
  BpeTrainOptions options;
  options.vocab_size = vocab_size;
  return train_bpe(texts, options);
}

// Pieces of a Hugging Face byte-level BPE tokenizer.json as razor writes them (train_bpe, GGUF
// import), field for field in HF's order: a ByteLevel node (add_prefix_space false), the
// Sequence[Split(regex, Isolated), ByteLevel] pre-tokenizer, and the BPE model object.
Json hf_byte_level(bool use_regex);
Json hf_split_pre_tokenizer(const char* regex);
Json hf_bpe_model(Json vocab, Json merges, bool ignore_merges);

}  // namespace razor
