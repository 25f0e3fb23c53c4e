// Sampling, UTF-8 streaming and the generation loop.
#include "infer/generate.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/threads.h"
#include "io/tokenizer.h"

namespace razor {

void SamplerOptions::validate() const {
  RZ_CHECK(std::isfinite(temp) && temp >= 0.0f, "--temp: must be >= 0 (0 = greedy), got %g", double(temp));
  RZ_CHECK(top_k >= 0, "--top-k: must be >= 0 (0 = no cut), got %d", top_k);
  RZ_CHECK(top_p > 0.0f && top_p <= 1.0f, "--top-p: must be in (0, 1], got %g", double(top_p));
}

Sampler::Sampler(const SamplerOptions& o, int64_t V) : o_(o), V_(V), rng_(o.seed) {
  o.validate();
  idx_.resize(size_t(V));
  p_.resize(size_t(V));
}

int32_t Sampler::sample(const float* z) {
  if (o_.temp == 0.0f) {
    int32_t best = 0;
    for (int64_t v = 1; v < V_; ++v)
      if (z[v] > z[best]) best = int32_t(v);
    return best;
  }
  for (int64_t v = 0; v < V_; ++v) idx_[size_t(v)] = int32_t(v);
  // Highest logits first; ties by lower id, so the order is deterministic.
  auto higher = [z](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
  const int64_t k = o_.top_k > 0 ? std::min<int64_t>(o_.top_k, V_) : V_;
  std::partial_sort(idx_.begin(), idx_.begin() + k, idx_.end(), higher);
  const float mx = z[idx_[0]];
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += (p_[size_t(i)] = std::exp((z[idx_[size_t(i)]] - mx) / o_.temp));
  // Nucleus: the smallest prefix whose mass reaches top_p.
  int64_t n = k;
  if (o_.top_p < 1.0f) {
    double c = 0;
    for (int64_t i = 0; i < k; ++i) {
      c += p_[size_t(i)] / sum;
      if (c >= double(o_.top_p)) {
        n = i + 1;
        break;
      }
    }
  }
  double mass = 0;
  for (int64_t i = 0; i < n; ++i) mass += p_[size_t(i)];
  const double r = double(rng_.uniform()) * mass;
  double c = 0;
  for (int64_t i = 0; i < n; ++i) {
    c += p_[size_t(i)];
    if (r < c) return idx_[size_t(i)];
  }
  return idx_[size_t(n - 1)];
}

namespace {

// Length of the UTF-8 sequence a lead byte starts (0: not a lead byte).
int utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return 2;
  if (c >= 0xe0 && c <= 0xef) return 3;
  if (c >= 0xf0 && c <= 0xf4) return 4;
  return 0;
}

}  // namespace

// Length of the well-formed UTF-8 sequence at s[i] (1..4), 0 when it is invalid, or -1 when it
// is a valid prefix cut off by the end of s.
int utf8_seq(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const int len = utf8_len(c);
  if (len <= 1) return len;
  for (int k = 1; k < len; ++k) {
    if (i + size_t(k) >= s.size()) return -1;
    const unsigned char d = static_cast<unsigned char>(s[i + size_t(k)]);
    // Second-byte ranges exclude overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4).
    const unsigned char lo = k > 1 ? 0x80 : c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    const unsigned char hi = k > 1 ? 0xbf : c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (d < lo || d > hi) return 0;
  }
  return len;
}

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes.data(), bytes.size());
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const int n = utf8_seq(pending_, i);
    if (n < 0) break;  // wait for the rest of this character
    if (n == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD for a byte that cannot start or continue a character
      ++i;
    } else {
      out.append(pending_, i, size_t(n));
      i += size_t(n);
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_seq(s, i);
    if (n <= 0) return false;
    i += size_t(n);
  }
  return true;
}
std::string chat_prompt(const std::string& prompt) {
  return "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n";
}

std::string latest_student(const std::string& runs_dir) {
  DIR* d = opendir(runs_dir.c_str());
  if (!d) return "";
  std::string best;
  struct timespec best_t = {0, 0};
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string p = runs_dir + "/" + name + "/student.razor";
    struct stat st;
    if (stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (best.empty() || st.st_mtim.tv_sec > best_t.tv_sec ||
        (st.st_mtim.tv_sec == best_t.tv_sec && st.st_mtim.tv_nsec > best_t.tv_nsec)) {
      best = p;
      best_t = st.st_mtim;
    }
  }
  closedir(d);
  return best;
}

GenerateStats generate(Engine& e, const Tokenizer& tok, const std::vector<int32_t>& prompt, int64_t n, Sampler& s,
                       const std::vector<int32_t>& eos, const std::function<void(const std::string&)>& on_text) {
  RZ_CHECK(!prompt.empty(), "generate: the prompt encodes to no tokens");
  GenerateStats st;
  st.prompt_tokens = int64_t(prompt.size());
  RZ_CHECK(e.pos() + st.prompt_tokens + n <= e.max_context(),
           "generate: prompt (%lld tokens) + %lld new tokens exceed the context limit of %lld",
           (long long)st.prompt_tokens, (long long)n, (long long)e.max_context());
  double t0 = now_seconds();
  const float* z = e.forward(prompt.data(), st.prompt_tokens);
  st.prefill_seconds = now_seconds() - t0;
  Utf8Stream out;
  t0 = now_seconds();
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = s.sample(z);
    if (std::find(eos.begin(), eos.end(), id) != eos.end()) {
      st.stopped_at_eos = true;
      break;
    }
    ++st.generated;
    const std::string text = out.push(id >= tok.vocab_size() || tok.is_special(id) ? std::string() : tok.token_bytes(id));
    if (!text.empty()) on_text(text);
    if (i + 1 < n) z = e.decode(id);
  }
  st.decode_seconds = now_seconds() - t0;
  const std::string rest = out.flush();
  if (!rest.empty()) on_text(valid_utf8(rest) ? rest : "\xef\xbf\xbd");  // a dangling partial character: U+FFFD
  return st;
}

}  // namespace razor
