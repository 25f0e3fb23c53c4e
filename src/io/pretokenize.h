// Pre-tokenization: the regex splits of byte-level BPE tokenizers, each written as a small
// hand-made scanner instead of a regex engine. A tokenizer.json names its regex as a
// string; split_pattern_from_regex() recognises the known ones by exact comparison.
//   Qwen2 / Qwen2.5 / Qwen3:  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}
//                             | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   Llama 3:                  the same with \p{N}{1,3}
//   GPT-2 (ByteLevel use_regex): 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+
//                             |\s+(?!\S)|\s+
// Semantics follow the regexes as Hugging Face tokenizers runs them (leftmost alternative
// first, greedy with backtracking), with \s = Unicode White_Space. The case-insensitive
// contractions fold ASCII letters only (as transformers.js does).
// Invalid UTF-8 bytes are classed as "other" (neither letter, number nor space).
// Deliberately not here: a general regex engine.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace razor {

enum class SplitPattern { Qwen2, Llama3, Gpt2 };

extern const char* const kQwen2Regex;
extern const char* const kLlama3Regex;
extern const char* const kGpt2Regex;

// Recognises a known regex; false for any other string.
bool split_pattern_from_regex(std::string_view regex, SplitPattern* out);
const char* split_pattern_regex(SplitPattern p);
const char* split_pattern_name(SplitPattern p);

// A piece of the input: bytes [begin, end).
struct Piece {
  uint32_t begin, end;
};

// Splits text into consecutive pieces covering all of it (the "Isolated" behaviour: every
// match and every gap between matches is a piece). Appends to `out`.
void pretokenize(SplitPattern p, std::string_view text, std::vector<Piece>& out);

}  // namespace razor
