// Byte-level BPE training (see train_bpe in tokenizer.h). Pair counts are kept
// incrementally: a merge only revisits the words that contain the merged pair, and a
// max-heap of (count, pair) is validated lazily when popped -- counts of pairs that do not
// involve the new token can only fall, so only pairs with the new token are re-pushed.
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "io/json.h"
#include "io/pretokenize.h"
#include "io/tokenizer.h"
#include "io/unicode.h"

namespace razor {

namespace {

inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

// Splits text on the special tokens (leftmost, longest) and counts Qwen2 pieces.
void count_pieces(std::string_view text, const std::vector<std::string>& specials,
                  std::unordered_map<std::string, int64_t>& counts) {
  std::vector<Piece> pieces;
  auto add_section = [&](std::string_view s) {
    if (s.empty()) return;
    std::string normalized = nfc(s);
    pieces.clear();
    pretokenize(SplitPattern::Qwen2, normalized, pieces);
    for (const Piece& p : pieces) ++counts[normalized.substr(p.begin, p.end - p.begin)];
  };
  size_t start = 0;
  while (start <= text.size()) {
    size_t best = std::string_view::npos, best_len = 0;
    for (const std::string& sp : specials) {
      size_t at = text.find(sp, start);
      if (at != std::string_view::npos && (at < best || (at == best && sp.size() > best_len))) best = at, best_len = sp.size();
    }
    if (best == std::string_view::npos) {
      add_section(text.substr(start));
      break;
    }
    add_section(text.substr(start, best - start));
    start = best + best_len;
  }
}

}  // namespace

std::string train_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& opt) {
  int n_special = int(opt.special_tokens.size());
  RZ_CHECK(opt.vocab_size >= 256 + n_special && opt.vocab_size <= (1 << 24),
           "--vocab: %d out of range [%d, %d] (256 bytes + %d special tokens at least)", opt.vocab_size,
           256 + n_special, 1 << 24, n_special);
  RZ_CHECK(opt.min_frequency >= 1, "min_frequency: %d must be >= 1", opt.min_frequency);
  for (const std::string& s : opt.special_tokens) RZ_CHECK(!s.empty(), "special token: empty");

  std::unordered_map<std::string, int64_t> counts;
  for (const std::string& t : texts) count_pieces(t, opt.special_tokens, counts);
  // Distinct pieces in byte order, so that nothing depends on hash-table iteration order.
  std::vector<std::pair<std::string, int64_t>> pieces(counts.begin(), counts.end());
  counts.clear();
  std::sort(pieces.begin(), pieces.end());

  // Initial alphabet: the 256 bytes, ids in the order of their byte-level characters (the
  // order GPT-2, Llama 3 and Qwen vocabularies use).
  std::vector<std::string> tokens;  // byte-level spelling per id
  std::unordered_map<std::string, int32_t> token_id;
  int32_t byte_to_id[256];
  {
    std::vector<std::pair<std::string, int>> chars;
    for (int b = 0; b < 256; ++b) chars.push_back({byte_level_char(uint8_t(b)), b});
    auto cp_of = [](const std::string& s) {
      size_t i = 0;
      return utf8_next(s, i);
    };
    std::sort(chars.begin(), chars.end(), [&](const auto& x, const auto& y) { return cp_of(x.first) < cp_of(y.first); });
    for (auto& c : chars) {
      byte_to_id[c.second] = int32_t(tokens.size());
      token_id[c.first] = int32_t(tokens.size());
      tokens.push_back(c.first);
    }
  }

  std::vector<std::vector<int32_t>> words(pieces.size());
  std::vector<int64_t> weight(pieces.size());
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < pieces.size(); ++w) {
    for (unsigned char b : pieces[w].first) words[w].push_back(byte_to_id[b]);
    weight[w] = pieces[w].second;
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      uint64_t k = pair_key(words[w][i], words[w][i + 1]);
      pair_count[k] += weight[w];
      where[k].push_back(int32_t(w));
    }
  }
  // Max-heap on count; ties to the smallest (left id, right id), i.e. the largest ~key.
  using Entry = std::pair<int64_t, uint64_t>;
  std::priority_queue<Entry> heap;
  for (const auto& pc : pair_count) heap.push({pc.second, ~pc.first});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> visited(words.size(), -1);
  std::vector<uint64_t> touched;
  while (int(tokens.size()) + n_special < opt.vocab_size && !heap.empty()) {
    Entry top = heap.top();
    heap.pop();
    uint64_t key = ~top.second;
    auto pc = pair_count.find(key);
    int64_t now = pc == pair_count.end() ? 0 : pc->second;
    if (now != top.first) {  // stale entry
      if (now > 0) heap.push({now, top.second});
      continue;
    }
    if (now < opt.min_frequency) break;
    int32_t a = int32_t(key >> 32), b = int32_t(key & 0xFFFFFFFF);
    std::string merged = tokens[a] + tokens[b];
    int32_t c;
    auto existing = token_id.find(merged);
    if (existing != token_id.end()) {
      c = existing->second;  // the same string reached by another pair: one token, two merges
    } else {
      c = int32_t(tokens.size());
      token_id.emplace(merged, c);
      tokens.push_back(merged);
    }
    int32_t merge_index = int32_t(merges.size());
    merges.push_back({a, b});

    std::vector<int32_t> list = std::move(where[key]);
    where.erase(key);
    touched.clear();
    for (int32_t w : list) {
      if (visited[w] == merge_index) continue;
      visited[w] = merge_index;
      std::vector<int32_t>& s = words[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) pair_count[pair_key(s[i], s[i + 1])] -= weight[w];
      size_t out = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          s[out++] = c;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      s.resize(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        pair_count[k] += weight[w];
        if (s[i] == c || s[i + 1] == c) {
          where[k].push_back(w);
          touched.push_back(k);
        }
      }
    }
    pair_count.erase(key);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t k : touched) heap.push({pair_count[k], ~k});
  }

  // The tokenizer.json, laid out as Qwen's.
  Json root = Json::object();
  root.set("version", "1.0");
  root.set("truncation", nullptr);
  root.set("padding", nullptr);
  Json added = Json::array();
  for (int i = 0; i < n_special; ++i) {
    Json t = Json::object();
    t.set("id", int64_t(tokens.size()) + i);
    t.set("content", opt.special_tokens[i]);
    t.set("single_word", false);
    t.set("lstrip", false);
    t.set("rstrip", false);
    t.set("normalized", false);
    t.set("special", true);
    added.push_back(std::move(t));
  }
  root.set("added_tokens", std::move(added));
  Json norm = Json::object();
  norm.set("type", "NFC");
  root.set("normalizer", std::move(norm));
  root.set("pre_tokenizer", hf_split_pre_tokenizer(kQwen2Regex));
  root.set("post_processor", hf_byte_level(false));
  root.set("decoder", hf_byte_level(false));
  Json vocab = Json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab.set_unchecked(tokens[i], int64_t(i));
  Json jm = Json::array();
  for (const auto& m : merges) {
    Json pair = Json::array();
    pair.push_back(tokens[m.first]);
    pair.push_back(tokens[m.second]);
    jm.push_back(std::move(pair));
  }
  root.set("model", hf_bpe_model(std::move(vocab), std::move(jm), false));
  return root.dump(2) + "\n";
}

Json hf_byte_level(bool use_regex) {
  Json bl = Json::object();
  bl.set("type", "ByteLevel");
  bl.set("add_prefix_space", false);
  bl.set("trim_offsets", use_regex);
  bl.set("use_regex", use_regex);
  return bl;
}

Json hf_split_pre_tokenizer(const char* regex) {
  Json split = Json::object();
  split.set("type", "Split");
  Json pat = Json::object();
  pat.set("Regex", regex);
  split.set("pattern", std::move(pat));
  split.set("behavior", "Isolated");
  split.set("invert", false);
  Json list = Json::array();
  list.push_back(std::move(split));
  list.push_back(hf_byte_level(false));
  Json pre = Json::object();
  pre.set("type", "Sequence");
  pre.set("pretokenizers", std::move(list));
  return pre;
}

Json hf_bpe_model(Json vocab, Json merges, bool ignore_merges) {
  Json model = Json::object();
  model.set("type", "BPE");
  model.set("dropout", nullptr);
  model.set("unk_token", nullptr);
  model.set("continuing_subword_prefix", "");
  model.set("end_of_word_suffix", "");
  model.set("fuse_unk", false);
  model.set("byte_fallback", false);
  model.set("ignore_merges", ignore_merges);
  model.set("vocab", std::move(vocab));
  model.set("merges", std::move(merges));
  return model;
}

}  // namespace razor
