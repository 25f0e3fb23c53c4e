// Text generation on the packed engine: the sampler (temperature, top-k, top-p, seeded), a
// UTF-8 stream that releases only complete characters, the Qwen chat template, and the
// default-model lookup (newest runs/*/student.razor).
// Deliberately not here: the forward (infer/engine.h), the command line (cli/cmd_generate.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/rng.h"
#include "infer/engine.h"

namespace razor {

class Tokenizer;

struct SamplerOptions {
  float temp = 0.8f;   // 0: greedy
  int top_k = 40;      // 0: whole vocabulary
  float top_p = 0.95f; // 1: no nucleus cut
  uint64_t seed = 0;
  void validate() const;  // throws naming the option
};

// Samples from logits [V]. Buffers are sized once; sampling allocates nothing.
class Sampler {
 public:
  Sampler(const SamplerOptions& o, int64_t V);
  int32_t sample(const float* logits);

 private:
  SamplerOptions o_;
  int64_t V_;
  Rng rng_;
  std::vector<int32_t> idx_;
  std::vector<float> p_;
};

// Feeds raw token bytes; returns the longest prefix that ends on a complete UTF-8 character
// (a partial multi-byte sequence is held until its continuation arrives).
class Utf8Stream {
 public:
  std::string push(std::string_view bytes);
  std::string flush();  // whatever is pending (possibly invalid: the caller decides)

 private:
  std::string pending_;
};

// Whether s is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view s);
// Qwen ChatML: "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n".
std::string chat_prompt(const std::string& prompt);
// Newest (by modification time) runs/*/student.razor under `runs_dir`; "" when none.
std::string latest_student(const std::string& runs_dir = "runs");

struct GenerateStats {
  int64_t prompt_tokens = 0, generated = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  bool stopped_at_eos = false;
};

// Prefills the prompt, then samples up to n tokens, calling on_text with each complete piece
// of UTF-8 text as it is produced. Stops at any id in eos (not printed).
GenerateStats generate(Engine& e, const Tokenizer& tok, const std::vector<int32_t>& prompt, int64_t n, Sampler& s,
                       const std::vector<int32_t>& eos, const std::function<void(const std::string&)>& on_text);

}  // namespace razor
