// The pre-tokenizer scanners (see pretokenize.h). Each alternative of a regex is one block
// below, tried in the regex's order at the current position; the comment above each block
// is the alternative it implements.
#include "io/pretokenize.h"

#include <cstring>
#include <string>

#include "io/unicode.h"

namespace razor {

const char* const kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

bool split_pattern_from_regex(std::string_view regex, SplitPattern* out) {
  if (regex == kQwen2Regex) return *out = SplitPattern::Qwen2, true;
  if (regex == kLlama3Regex) return *out = SplitPattern::Llama3, true;
  if (regex == kGpt2Regex) return *out = SplitPattern::Gpt2, true;
  return false;
}

const char* split_pattern_regex(SplitPattern p) {
  switch (p) {
    case SplitPattern::Qwen2: return kQwen2Regex;
    case SplitPattern::Llama3: return kLlama3Regex;
    case SplitPattern::Gpt2: return kGpt2Regex;
  }
  return "";
}

const char* split_pattern_name(SplitPattern p) {
  switch (p) {
    case SplitPattern::Qwen2: return "qwen2";
    case SplitPattern::Llama3: return "llama3";
    case SplitPattern::Gpt2: return "gpt2";
  }
  return "";
}

namespace {

// Character flags used by the scanners.
enum : uint8_t { kL = 1, kN = 2, kS = 4, kCRLF = 8 };

struct Chars {
  std::vector<uint32_t> cp;     // code point (0xFFFFFFFF for an invalid byte)
  std::vector<uint8_t> flags;   // kL | kN | kS | kCRLF
  std::vector<uint32_t> start;  // byte offset of each code point, plus the end
  size_t n = 0;

  bool letter(size_t k) const { return k < n && (flags[k] & kL); }
  bool number(size_t k) const { return k < n && (flags[k] & kN); }
  bool space(size_t k) const { return k < n && (flags[k] & kS); }
  bool crlf(size_t k) const { return k < n && (flags[k] & kCRLF); }
  // [^\s\p{L}\p{N}]
  bool other(size_t k) const { return k < n && !(flags[k] & (kL | kN | kS)); }
  size_t space_run_end(size_t k) const {
    while (k < n && (flags[k] & kS)) ++k;
    return k;
  }
};

struct AsciiFlags {
  uint8_t f[128];
  AsciiFlags() {
    for (uint32_t c = 0; c < 128; ++c) {
      f[c] = uint8_t((is_letter(c) ? kL : 0) | (is_number(c) ? kN : 0) | (is_white_space(c) ? kS : 0) |
                     ((c == '\r' || c == '\n') ? kCRLF : 0));
    }
  }
};

void classify(std::string_view text, Chars& c) {
  static const AsciiFlags ascii;
  const uint8_t* ascii_flags = ascii.f;
  c.cp.clear(), c.flags.clear(), c.start.clear();
  c.cp.reserve(text.size()), c.flags.reserve(text.size()), c.start.reserve(text.size() + 1);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    c.start.push_back(uint32_t(i));
    if (p[i] < 0x80) {
      c.cp.push_back(p[i]);
      c.flags.push_back(ascii_flags[p[i]]);
      ++i;
      continue;
    }
    int32_t cp = utf8_next(text, i);
    uint8_t f = 0;
    if (cp >= 0) {
      CharClass cls = char_class(uint32_t(cp));
      if (cls == CharClass::Letter) f |= kL;
      if (cls == CharClass::Number) f |= kN;
      if (is_white_space(uint32_t(cp))) f |= kS;
    }
    c.cp.push_back(cp >= 0 ? uint32_t(cp) : 0xFFFFFFFFu);
    c.flags.push_back(f);
  }
  c.n = c.cp.size();
  c.start.push_back(uint32_t(text.size()));
}

inline uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d, optionally folding ASCII case. Returns the match length or 0.
size_t contraction(const Chars& c, size_t i, bool fold) {
  if (c.cp[i] != '\'' || i + 1 >= c.n) return 0;
  uint32_t a = fold ? ascii_lower(c.cp[i + 1]) : c.cp[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= c.n) return 0;
  uint32_t b = fold ? ascii_lower(c.cp[i + 2]) : c.cp[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S) then \s+ : a whitespace run, leaving its last space for the next piece when a
// non-space follows (so " word" keeps its space). Returns the end, or i when c[i] is not \s.
size_t space_tail(const Chars& c, size_t i) {
  if (!c.space(i)) return i;
  size_t j = c.space_run_end(i);
  if (j == c.n) return j;     // \s+(?!\S) at the end of the text
  if (j - 1 > i) return j - 1;  // backtrack one so that (?!\S) holds
  return j;                   // \s+
}

// Qwen2 / Llama 3; max_digits is 1 (Qwen) or 3 (Llama 3).
size_t scan_qwen(const Chars& c, size_t i, size_t max_digits) {
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (size_t len = contraction(c, i, true)) return i + len;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  {
    size_t j = i;
    if (!(c.flags[i] & (kL | kN | kCRLF)) && c.letter(i + 1)) j = i + 1;
    if (c.letter(j)) {
      while (c.letter(j)) ++j;
      return j;
    }
  }
  // \p{N} or \p{N}{1,3}
  if (c.number(i)) {
    size_t j = i;
    while (j - i < max_digits && c.number(j)) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    size_t j = (c.cp[i] == ' ') ? i + 1 : i;
    if (c.other(j)) {
      while (c.other(j)) ++j;
      while (c.crlf(j)) ++j;
      return j;
    }
  }
  // \s*[\r\n]+ : ends after the last CR/LF of the whitespace run.
  if (c.space(i)) {
    size_t j = c.space_run_end(i);
    for (size_t k = j; k > i; --k)
      if (c.crlf(k - 1)) return k;
  }
  // \s+(?!\S)|\s+
  size_t j = space_tail(c, i);
  return j > i ? j : i + 1;
}

size_t scan_gpt2(const Chars& c, size_t i) {
  // 's|'t|'re|'ve|'m|'ll|'d
  if (size_t len = contraction(c, i, false)) return i + len;
  size_t j = (c.cp[i] == ' ') ? i + 1 : i;
  //  ?\p{L}+
  if (c.letter(j)) {
    while (c.letter(j)) ++j;
    return j;
  }
  //  ?\p{N}+
  if (c.number(j)) {
    while (c.number(j)) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+
  if (c.other(j)) {
    while (c.other(j)) ++j;
    return j;
  }
  // \s+(?!\S)|\s+
  j = space_tail(c, i);
  return j > i ? j : i + 1;
}

}  // namespace

void pretokenize(SplitPattern p, std::string_view text, std::vector<Piece>& out) {
  thread_local Chars c;
  classify(text, c);
  for (size_t i = 0; i < c.n;) {
    size_t j = p == SplitPattern::Gpt2 ? scan_gpt2(c, i) : scan_qwen(c, i, p == SplitPattern::Llama3 ? 3 : 1);
    out.push_back(Piece{c.start[i], c.start[j]});
    i = j;
  }
}

}  // namespace razor
