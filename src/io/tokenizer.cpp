// Byte-level BPE: loading tokenizer.json, encoding and decoding (see tokenizer.h).
#include "io/tokenizer.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>
#include <queue>

#include "core/error.h"
#include "io/json.h"
#include "io/unicode.h"

namespace razor {

// Word cache: piece bytes -> ids. Open addressing over slots that point into two arenas
// (key bytes, ids), so a lookup hashes a string_view and allocates nothing. Guarded by
// `mutex`, taken once per encode call; an encode that finds it busy (another thread) runs
// without the cache rather than waiting. Cleared when full.
struct TokenizerCache {
  struct Slot {
    uint64_t hash = 0;  // 0 = empty
    uint32_t key_at = 0, key_len = 0, ids_at = 0, ids_len = 0;
  };
  static constexpr size_t kMaxEntries = size_t(1) << 20;
  static constexpr size_t kMaxPieceBytes = 64;
  std::mutex mutex;
  std::vector<Slot> slots = std::vector<Slot>(1 << 12);
  size_t used = 0;
  std::string keys;
  std::vector<int32_t> ids;

  static uint64_t hash_of(std::string_view s) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();  // FNV-style over 8-byte words
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * 0x100000001B3ULL;
      h ^= h >> 29;
    }
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 32;
    return h | 1;  // never 0
  }
  const Slot* find(std::string_view piece, uint64_t h) const {
    size_t mask = slots.size() - 1;
    for (size_t k = h & mask;; k = (k + 1) & mask) {
      const Slot& s = slots[k];
      if (s.hash == 0) return nullptr;
      if (s.hash == h && s.key_len == piece.size() && std::memcmp(keys.data() + s.key_at, piece.data(), piece.size()) == 0)
        return &s;
    }
  }
  void insert(std::string_view piece, uint64_t h, const int32_t* first, size_t n) {
    if (used >= kMaxEntries) {
      std::fill(slots.begin(), slots.end(), Slot());
      used = 0, keys.clear(), ids.clear();
    }
    if ((used + 1) * 2 > slots.size()) {  // keep the load under one half
      std::vector<Slot> old(slots.size() * 2);
      old.swap(slots);
      size_t mask = slots.size() - 1;
      for (const Slot& s : old) {
        if (s.hash == 0) continue;
        size_t k = s.hash & mask;
        while (slots[k].hash != 0) k = (k + 1) & mask;
        slots[k] = s;
      }
    }
    size_t mask = slots.size() - 1;
    size_t k = h & mask;
    while (slots[k].hash != 0) k = (k + 1) & mask;
    slots[k] = Slot{h, uint32_t(keys.size()), uint32_t(piece.size()), uint32_t(ids.size()), uint32_t(n)};
    keys.append(piece.data(), piece.size());
    ids.insert(ids.end(), first, first + n);
    ++used;
  }
};

namespace {

struct ByteLevelMap {
  std::string chars[256];
  int16_t byte_of[324];  // code point (< 324) -> byte, or -1
  ByteLevelMap() {
    std::fill(byte_of, byte_of + 324, int16_t(-1));
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? uint32_t(b) : next++;
      utf8_append(chars[b], cp);
      byte_of[cp] = int16_t(b);
    }
  }
};
const ByteLevelMap& byte_level_map() {
  static const ByteLevelMap m;
  return m;
}

// Byte-level spelling -> raw bytes; false when a character is outside the map.
bool byte_level_decode(std::string_view s, std::string& out) {
  const ByteLevelMap& m = byte_level_map();
  out.clear();
  for (size_t i = 0; i < s.size();) {
    int32_t cp = utf8_next(s, i);
    if (cp < 0 || cp >= 324 || m.byte_of[cp] < 0) return false;
    out += char(m.byte_of[cp]);
  }
  return true;
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

const std::string& byte_level_char(uint8_t b) { return byte_level_map().chars[b]; }

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += byte_level_map().chars[b];
  return out;
}

Tokenizer::Tokenizer() : cache_(new TokenizerCache) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

const Tokenizer::MergeSlot* Tokenizer::find_merge(int32_t a, int32_t b) const {
  uint64_t key = (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  size_t mask = merges_.size() - 1;
  for (size_t h = mix64(key) & mask;; h = (h + 1) & mask) {
    const MergeSlot& s = merges_[h];
    if (s.key == key) return &s;
    if (s.key == kEmpty) return nullptr;
  }
}

void Tokenizer::add_merge(int32_t a, int32_t b, int32_t rank, int32_t merged) {
  uint64_t key = (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  size_t mask = merges_.size() - 1;
  for (size_t h = mix64(key) & mask;; h = (h + 1) & mask) {
    MergeSlot& s = merges_[h];
    if (s.key == kEmpty) ++merge_count_;
    if (s.key == kEmpty || s.key == key) {  // a repeated pair: the later rank wins (as HF)
      s = MergeSlot{key, rank, merged};
      return;
    }
  }
}

namespace {

const Json* member(const Json& obj, const char* key) { return obj.is_object() ? obj.find(key) : nullptr; }

std::string type_of(const Json& j, const std::string& file, const char* field) {
  const Json* t = member(j, "type");
  RZ_CHECK(t && t->is_string(), "%s: %s: missing \"type\"", file.c_str(), field);
  return t->as_string();
}

bool json_bool(const Json& obj, const char* key, bool def) {
  const Json* v = member(obj, key);
  return (v && v->is_bool()) ? v->as_bool() : def;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path) { return from_json(read_file(path), path); }

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& file) {
  const char* f = file.c_str();
  Json root = Json::parse(json_text, file);
  RZ_CHECK(root.is_object(), "%s: not a JSON object", f);
  Tokenizer t;

  // model
  const Json* model = root.find("model");
  RZ_CHECK(model && model->is_object(), "%s: model: missing", f);
  std::string mtype = type_of(*model, file, "model");
  RZ_CHECK(mtype == "BPE", "%s: model.type: unknown model type \"%s\" (razor reads byte-level BPE only)", f,
           mtype.c_str());
  if (const Json* d = model->find("dropout"))
    RZ_CHECK(d->is_null() || (d->is_number() && d->as_double() == 0.0), "%s: model.dropout: BPE dropout is not supported", f);
  RZ_CHECK(!json_bool(*model, "byte_fallback", false), "%s: model.byte_fallback: not supported (byte-level BPE only)", f);
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* v = model->find(k);
    RZ_CHECK(!v || v->is_null() || (v->is_string() && v->as_string().empty()), "%s: model.%s: not supported", f, k);
  }
  t.ignore_merges_ = json_bool(*model, "ignore_merges", false);

  const Json* vocab = model->find("vocab");
  RZ_CHECK(vocab && vocab->is_object(), "%s: model.vocab: missing or not an object", f);
  int64_t max_id = -1;
  for (const auto& kv : vocab->members()) {
    RZ_CHECK(kv.second.is_int(), "%s: model.vocab: id of \"%s\" is not an integer", f, kv.first.c_str());
    int64_t id = kv.second.as_int();
    RZ_CHECK(id >= 0 && id < (int64_t(1) << 30), "%s: model.vocab: id %lld of \"%s\" out of range", f, (long long)id,
             kv.first.c_str());
    max_id = std::max(max_id, id);
  }
  const Json* added = root.find("added_tokens");
  RZ_CHECK(!added || added->is_null() || added->is_array(), "%s: added_tokens: not an array", f);
  if (added && added->is_array()) {
    for (size_t i = 0; i < added->size(); ++i) {
      const Json& a = (*added)[i];
      const Json* id = member(a, "id");
      const Json* content = member(a, "content");
      RZ_CHECK(id && id->is_int() && content && content->is_string() && !content->as_string().empty(),
               "%s: added_tokens[%zu]: needs an integer \"id\" and a non-empty \"content\"", f, i);
      RZ_CHECK(id->as_int() >= 0 && id->as_int() < (int64_t(1) << 30), "%s: added_tokens[%zu]: id out of range", f, i);
      max_id = std::max(max_id, id->as_int());
    }
  }
  RZ_CHECK(max_id >= 0, "%s: model.vocab: empty", f);
  // Per-id tables are sized by the largest id: bound the unused ids, so that a small file
  // naming id 10^9 is an error rather than gigabytes of empty slots. Real files are dense
  // (Qwen3: no hole at all); 65536 leaves room for reserved ranges.
  const int64_t listed = int64_t(vocab->size()) + (added && added->is_array() ? int64_t(added->size()) : 0);
  RZ_CHECK(max_id < listed + 65536,
           "%s: largest token id %lld leaves more than 65536 unused ids below it (%lld tokens listed): not a "
           "tokenizer.json razor can index",
           f, (long long)max_id, (long long)listed);
  t.id_to_token_.assign(size_t(max_id + 1), std::string());
  t.id_bytes_.assign(size_t(max_id + 1), std::string());
  t.special_.assign(size_t(max_id + 1), 0);
  std::vector<uint8_t> seen(size_t(max_id + 1), 0);
  t.vocab_.reserve(vocab->size() * 2);
  std::fill(t.byte_id_, t.byte_id_ + 256, -1);
  std::string bytes;
  for (const auto& kv : vocab->members()) {
    int32_t id = int32_t(kv.second.as_int());
    RZ_CHECK(!seen[id], "%s: model.vocab: id %d used twice (\"%s\")", f, id, kv.first.c_str());
    seen[id] = 1;
    t.id_to_token_[id] = kv.first;
    if (byte_level_decode(kv.first, bytes)) {
      t.id_bytes_[id] = bytes;
      if (bytes.size() == 1) t.byte_id_[uint8_t(bytes[0])] = id;
    } else {
      t.id_bytes_[id] = kv.first;  // not byte-level spelled: decode as its own text
    }
    RZ_CHECK(t.vocab_.emplace(kv.first, id).second, "%s: model.vocab: token \"%s\" appears twice", f, kv.first.c_str());
  }
  for (int b = 0; b < 256; ++b)
    RZ_CHECK(t.byte_id_[b] >= 0, "%s: model.vocab: no token for byte 0x%02X (\"%s\"): not a byte-level BPE vocabulary",
             f, b, byte_level_char(uint8_t(b)).c_str());

  // merges: "a b" strings or ["a", "b"] pairs; rank = position.
  const Json* merges = model->find("merges");
  RZ_CHECK(merges && merges->is_array(), "%s: model.merges: missing or not an array", f);
  size_t cap = 16;
  while (cap < merges->size() * 2) cap *= 2;
  t.merges_.assign(cap, MergeSlot{kEmpty, 0, 0});
  std::string left, right;
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    if (m.is_string()) {
      const std::string& s = m.as_string();
      size_t sp = s.find(' ');
      RZ_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < s.size() && s.find(' ', sp + 1) == std::string::npos,
               "%s: model.merges[%zu]: bad merge entry \"%s\" (want \"left right\")", f, i, s.c_str());
      left.assign(s, 0, sp);
      right.assign(s, sp + 1, std::string::npos);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].as_string();
      right = m[1].as_string();
    } else {
      fail("%s: model.merges[%zu]: bad merge entry (want \"left right\" or [\"left\", \"right\"])", f, i);
    }
    auto a = t.vocab_.find(left), b = t.vocab_.find(right), c = t.vocab_.find(left + right);
    RZ_CHECK(a != t.vocab_.end() && b != t.vocab_.end(), "%s: model.merges[%zu]: token \"%s\" not in the vocabulary", f,
             i, (a == t.vocab_.end() ? left : right).c_str());
    RZ_CHECK(c != t.vocab_.end(), "%s: model.merges[%zu]: merged token \"%s\" not in the vocabulary", f, i,
             (left + right).c_str());
    t.add_merge(a->second, b->second, int32_t(i), c->second);
  }

  // added tokens
  if (added && added->is_array()) {
    for (size_t i = 0; i < added->size(); ++i) {
      const Json& a = (*added)[i];
      AddedToken tok{a.at("content").as_string(), int32_t(a.at("id").as_int()), json_bool(a, "special", false),
                     json_bool(a, "lstrip", false), json_bool(a, "rstrip", false)};
      std::string& slot = t.id_to_token_[tok.id];
      RZ_CHECK(slot.empty() || slot == tok.content, "%s: added_tokens[%zu]: id %d is already \"%s\"", f, i, tok.id,
               slot.c_str());
      slot = tok.content;
      t.id_bytes_[tok.id] = tok.content;
      t.special_[tok.id] = tok.special;
      t.added_first_byte_[uint8_t(tok.content[0])] = true;
      t.added_.push_back(std::move(tok));
    }
    std::stable_sort(t.added_.begin(), t.added_.end(),
                     [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
  }

  // normalizer
  const Json* norm = root.find("normalizer");
  if (norm && !norm->is_null()) {
    std::string nt = type_of(*norm, file, "normalizer");
    if (nt == "NFC") {
      t.nfc_ = true;
    } else if (nt == "Sequence") {
      const Json* list = norm->find("normalizers");
      RZ_CHECK(list && list->is_array(), "%s: normalizer.normalizers: missing", f);
      for (const Json& n : list->items()) {
        std::string st = type_of(n, file, "normalizer.normalizers[]");
        RZ_CHECK(st == "NFC", "%s: normalizer: unsupported normalizer \"%s\" (NFC or none)", f, st.c_str());
        t.nfc_ = true;
      }
    } else {
      fail("%s: normalizer.type: unsupported normalizer \"%s\" (NFC or none)", f, nt.c_str());
    }
  }

  // pre_tokenizer
  const Json* pre = root.find("pre_tokenizer");
  RZ_CHECK(pre && pre->is_object(), "%s: pre_tokenizer: missing (byte-level BPE needs ByteLevel)", f);
  auto read_byte_level = [&](const Json& bl, const char* field) {
    t.add_prefix_space_ = json_bool(bl, "add_prefix_space", false);
    if (json_bool(bl, "use_regex", true)) {
      RZ_CHECK(!t.split_, "%s: %s: ByteLevel use_regex after a Split is not supported", f, field);
      t.split_ = true;
      t.pattern_ = SplitPattern::Gpt2;
    }
  };
  std::string pt = type_of(*pre, file, "pre_tokenizer");
  if (pt == "ByteLevel") {
    read_byte_level(*pre, "pre_tokenizer");
  } else if (pt == "Sequence") {
    const Json* list = pre->find("pretokenizers");
    RZ_CHECK(list && list->is_array(), "%s: pre_tokenizer.pretokenizers: missing", f);
    bool have_byte_level = false;
    for (size_t i = 0; i < list->size(); ++i) {
      const Json& p = (*list)[i];
      std::string field = "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]";
      std::string st = type_of(p, file, field.c_str());
      if (st == "Split") {
        RZ_CHECK(!t.split_ && !have_byte_level, "%s: %s: only one Split before ByteLevel is supported", f, field.c_str());
        const Json* pat = member(p, "pattern");
        const Json* rx = pat ? member(*pat, "Regex") : nullptr;
        RZ_CHECK(rx && rx->is_string(), "%s: %s.pattern: a Regex pattern is required", f, field.c_str());
        RZ_CHECK(split_pattern_from_regex(rx->as_string(), &t.pattern_),
                 "%s: %s.pattern.Regex: unknown pre-tokenizer regex \"%s\" (razor knows the Qwen2/Qwen3, Llama 3 and "
                 "GPT-2 patterns)",
                 f, field.c_str(), rx->as_string().c_str());
        std::string behavior = p.get_string("behavior", "Isolated");
        RZ_CHECK(behavior == "Isolated" && !json_bool(p, "invert", false),
                 "%s: %s: only behavior \"Isolated\" without invert is supported", f, field.c_str());
        t.split_ = true;
      } else if (st == "ByteLevel") {
        RZ_CHECK(!have_byte_level, "%s: %s: ByteLevel twice", f, field.c_str());
        read_byte_level(p, field.c_str());
        have_byte_level = true;
      } else {
        fail("%s: %s.type: unsupported pre-tokenizer \"%s\"", f, field.c_str(), st.c_str());
      }
    }
    RZ_CHECK(have_byte_level, "%s: pre_tokenizer: no ByteLevel step (razor reads byte-level BPE only)", f);
  } else {
    fail("%s: pre_tokenizer.type: unsupported pre-tokenizer \"%s\"", f, pt.c_str());
  }

  const Json* dec = root.find("decoder");
  if (dec && !dec->is_null()) {
    std::string dt = type_of(*dec, file, "decoder");
    RZ_CHECK(dt == "ByteLevel", "%s: decoder.type: unsupported decoder \"%s\" (ByteLevel)", f, dt.c_str());
  }
  return t;
}

// --- encoding ---------------------------------------------------------------------------

void Tokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(piece.data());
  size_t n = piece.size();
  if (ignore_merges_ && n > 1) {  // Llama 3: a piece that is a whole token skips the merges
    auto it = vocab_.find(byte_level_encode(piece));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (n <= 48) {
    // Short pieces: repeatedly merge the lowest-rank pair, leftmost on ties.
    int32_t sym[48];
    for (size_t i = 0; i < n; ++i) sym[i] = byte_id_[p[i]];
    while (n > 1) {
      int32_t best_rank = INT_MAX, best_merged = 0;
      size_t best = 0;
      for (size_t i = 0; i + 1 < n; ++i) {
        const MergeSlot* m = find_merge(sym[i], sym[i + 1]);
        if (m && m->rank < best_rank) best_rank = m->rank, best_merged = m->merged, best = i;
      }
      if (best_rank == INT_MAX) break;
      sym[best] = best_merged;
      std::memmove(sym + best + 1, sym + best + 2, (n - best - 2) * sizeof(int32_t));
      --n;
    }
    out.insert(out.end(), sym, sym + n);
    return;
  }
  // Long pieces: a linked list of symbols and a heap of candidate merges (rank, position),
  // validated lazily when popped -- O(n log n).
  std::vector<int32_t> id(n), prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_id_[p[i]];
    prev[i] = int32_t(i) - 1;
    next[i] = (i + 1 < n) ? int32_t(i + 1) : -1;
  }
  using Cand = std::pair<int64_t, int32_t>;  // ((rank << 32) | position, merged id)
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t i) {
    if (i < 0 || next[i] < 0) return;
    if (const MergeSlot* m = find_merge(id[i], id[next[i]])) heap.push({(int64_t(m->rank) << 32) | i, m->merged});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(int32_t(i));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int32_t i = int32_t(c.first & 0xFFFFFFFF);
    int32_t rank = int32_t(c.first >> 32);
    if (id[i] < 0 || next[i] < 0) continue;
    const MergeSlot* m = find_merge(id[i], id[next[i]]);
    if (!m || m->rank != rank || m->merged != c.second) continue;  // stale
    int32_t j = next[i];
    id[i] = m->merged;
    id[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    push(prev[i]);
    push(i);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

void Tokenizer::encode_piece(std::string_view piece, TokenizerCache* cache, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_id_[uint8_t(piece[0])]);
    return;
  }
  if (!cache || piece.size() > TokenizerCache::kMaxPieceBytes) {
    bpe(piece, out);
    return;
  }
  uint64_t h = TokenizerCache::hash_of(piece);
  if (const TokenizerCache::Slot* s = cache->find(piece, h)) {
    out.insert(out.end(), cache->ids.begin() + s->ids_at, cache->ids.begin() + s->ids_at + s->ids_len);
    return;
  }
  size_t before = out.size();
  bpe(piece, out);
  cache->insert(piece, h, out.data() + before, out.size() - before);
}

namespace {

// Where a long section may be cut without changing its pieces: after a '\n' that is
// followed by an ASCII letter or digit. No alternative of the supported regexes matches
// across that point, none looks further than one character past it, and NFC cannot compose
// across it ('\n' composes with nothing). Cutting bounds the scanner's working memory.
size_t safe_cut(std::string_view s, size_t from) {
  for (size_t i = from; i + 1 < s.size(); ++i) {
    if (s[i] != '\n') continue;
    uint32_t c = uint8_t(s[i + 1]);
    if (((c | 0x20) - 'a') < 26u || (c - '0') < 10u) return i + 1;
  }
  return s.size();
}

}  // namespace

void Tokenizer::encode_section(std::string_view section, TokenizerCache* cache, std::vector<int32_t>& out) const {
  bool first = true;
  while (!section.empty()) {
    size_t cut = (split_ && section.size() > 2 * encode_chunk_) ? safe_cut(section, encode_chunk_) : section.size();
    std::string_view chunk = section.substr(0, cut);
    section.remove_prefix(cut);
    std::string normalized;
    if (nfc_ && !nfc_quick_check(chunk)) {
      normalized = nfc(chunk);
      chunk = normalized;
    }
    if (first && add_prefix_space_ && chunk[0] != ' ') {
      normalized = " " + std::string(chunk);
      chunk = normalized;
    }
    first = false;
    if (!split_) {
      bpe(chunk, out);
      continue;
    }
    thread_local std::vector<Piece> pieces;
    pieces.clear();
    pretokenize(pattern_, chunk, pieces);
    for (const Piece& p : pieces) encode_piece(chunk.substr(p.begin, p.end - p.begin), cache, out);
  }
}

void Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& out) const {
  std::unique_lock<std::mutex> lock(cache_->mutex, std::try_to_lock);
  TokenizerCache* cache = lock.owns_lock() ? cache_.get() : nullptr;
  if (added_.empty()) {
    encode_section(text, cache, out);
    return;
  }
  // Cut out added tokens, leftmost-longest (added_ is sorted longest first).
  size_t start = 0;        // start of the pending text section
  bool strip_left = false;  // the previous added token has rstrip
  for (size_t i = 0; i < text.size();) {
    const AddedToken* hit = nullptr;
    if (added_first_byte_[uint8_t(text[i])]) {
      for (const AddedToken& a : added_)
        if (text.compare(i, a.content.size(), a.content) == 0) {
          hit = &a;
          break;
        }
    }
    if (!hit) {
      ++i;
      continue;
    }
    std::string_view section = text.substr(start, i - start);
    auto is_space = [](char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); };
    if (strip_left)
      while (!section.empty() && is_space(section.front())) section.remove_prefix(1);
    if (hit->lstrip)
      while (!section.empty() && is_space(section.back())) section.remove_suffix(1);
    encode_section(section, cache, out);
    out.push_back(hit->id);
    strip_left = hit->rstrip;
    i += hit->content.size();
    start = i;
  }
  std::string_view rest = text.substr(start);
  if (strip_left)
    while (!rest.empty() && (rest.front() == ' ' || (rest.front() >= '\t' && rest.front() <= '\r'))) rest.remove_prefix(1);
  encode_section(rest, cache, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 8);
  encode_append(text, out);
  return out;
}

// --- decoding and lookups ------------------------------------------------------------------

const std::string& Tokenizer::token_bytes(int32_t id) const {
  RZ_CHECK(id >= 0 && id < vocab_size(), "token id %d out of range [0, %d)", id, vocab_size());
  return id_bytes_[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    const std::string& b = token_bytes(id);
    if (skip_special && special_[id]) continue;
    bytes += b;
  }
  return utf8_valid(bytes) ? bytes : utf8_sanitize(bytes);
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  if (int32_t id = added_id(token); id >= 0) return id;
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  RZ_CHECK(id >= 0 && id < vocab_size(), "token id %d out of range [0, %d)", id, vocab_size());
  return id_to_token_[id];
}

bool Tokenizer::is_special(int32_t id) const { return id >= 0 && id < vocab_size() && special_[id]; }

// Only added tokens count: Qwen's vocabulary has an ordinary "<s>" token that is no BOS.
int32_t Tokenizer::added_id(std::string_view content) const {
  for (const AddedToken& a : added_)
    if (a.content == content) return a.id;
  return -1;
}

int32_t Tokenizer::bos_id() const {
  for (const char* name : {"<|begin_of_text|>", "<s>", "<|startoftext|>"})
    if (int32_t id = added_id(name); id >= 0) return id;
  return -1;
}

int32_t Tokenizer::eos_id() const {
  for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>", "<|im_end|>", "<|eot_id|>"})
    if (int32_t id = added_id(name); id >= 0) return id;
  return -1;
}

}  // namespace razor
