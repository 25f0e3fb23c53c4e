// Unicode for the tokenizer: UTF-8 decoding and encoding, the few character classes the
// pre-tokenizer regexes use (\p{L}, \p{N}, \s), canonical combining classes and NFC.
// The data come from tools/gen_unicode_tables.py (src/io/unicode_tables.inc, UCD 15.0).
// Deliberately not here: case mapping, NFKC/NFKD, grapheme or word segmentation.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace razor {

const char* unicode_version();

// Decodes one code point at s[i], advancing i. Invalid or truncated sequences (overlongs,
// surrogates, > U+10FFFF) consume one byte and return -1.
int32_t utf8_next(std::string_view s, size_t& i);
// Appends the UTF-8 encoding of cp (0 <= cp <= 0x10FFFF, not a surrogate) to out.
void utf8_append(std::string& out, uint32_t cp);
bool utf8_valid(std::string_view s);
// Replaces each maximal invalid subpart with U+FFFD (the WHATWG / Rust from_utf8_lossy rule).
std::string utf8_sanitize(std::string_view s);

// Coarse categories of the pre-tokenizer regexes.
enum class CharClass : uint8_t { Other = 0, Letter = 1, Number = 2, Mark = 3 };
CharClass char_class(uint32_t cp);
inline bool is_letter(uint32_t cp) {
  if (cp < 0x80) return ((cp | 0x20) - 'a') < 26;
  return char_class(cp) == CharClass::Letter;
}
inline bool is_number(uint32_t cp) {
  if (cp < 0x80) return cp - '0' < 10;
  return char_class(cp) == CharClass::Number;
}
// Unicode White_Space: the \s of Oniguruma, which Hugging Face tokenizers runs. (JavaScript's
// \s differs on two code points: it excludes U+0085 and includes U+FEFF.)
bool is_white_space_slow(uint32_t cp);
inline bool is_white_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return is_white_space_slow(cp);
}
uint8_t combining_class(uint32_t cp);

// True when s is certainly in NFC (every code point is NFC_QC=Yes with combining class 0);
// false means "maybe not".
bool nfc_quick_check(std::string_view s);
// Canonical composition (NFC) of valid UTF-8 (invalid bytes are kept as they are).
std::string nfc(std::string_view s);

}  // namespace razor
