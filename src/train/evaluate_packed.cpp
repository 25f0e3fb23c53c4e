#include "train/evaluate_packed.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/checksum.h"
#include "core/error.h"
#include "core/vmath.h"
#include "io/file_util.h"
#include "infer/engine.h"

namespace razor {


PreparedData prepare_data_packed(const std::string& data, const PackedModel& m, const std::string& cache_dir) {
  RZ_CHECK(!m.tokenizer_json.empty(), "packed model: it has no tokenizer.json (pack it from a checkpoint with one)");
  make_dirs(cache_dir);
  const std::string tok = cache_dir + "/tokenizer-" + hex64(hash64(m.tokenizer_json.data(), m.tokenizer_json.size())) + ".json";
  if (!path_exists(tok)) write_file_atomic(tok, m.tokenizer_json);
  return prepare_data(data, tok, cache_dir);
}

PplResult packed_perplexity(const PackedModel& m, const TokenShard& shard, int T, int64_t max_windows) {
  int64_t nwin = int64_t(data_sequence_count(shard, T));
  if (max_windows > 0 && nwin > max_windows) nwin = max_windows;
  Engine e(m, T, T);
  const int64_t V = m.cfg.vocab_size;
  std::vector<int32_t> win(size_t(T) + 1);
  std::vector<uint8_t> mask(size_t(T) + 1);
  PplResult r;
  double nll = 0;
  for (int64_t w = 0; w < nwin; ++w) {
    data_sequence(shard, T, uint64_t(w), win.data(), mask.data());  // chat: response tokens only
    e.reset();
    const float* z = e.forward(win.data(), T, /*all_logits=*/true);
    for (int t = 0; t < T; ++t) {
      if (!mask[size_t(t) + 1]) continue;
      nll -= log_prob_at(z + int64_t(t) * V, V, win[size_t(t) + 1]);
      ++r.tokens;
    }
  }
  r.mean_nll = r.tokens ? nll / double(r.tokens) : NAN;
  r.ppl = std::exp(r.mean_nll);
  return r;
}

std::vector<double> packed_next_token_logprobs(const PackedModel& m, const std::vector<int32_t>& ids) {
  RZ_CHECK(ids.size() >= 2, "score: need at least 2 token ids, got %zu", ids.size());
  const int64_t n = int64_t(ids.size());
  Engine e(m, n, std::min<int64_t>(n, 256));
  const float* z = e.forward(ids.data(), n, /*all_logits=*/true);
  const int64_t V = m.cfg.vocab_size;
  std::vector<double> lp(size_t(n - 1));
  for (int64_t t = 0; t + 1 < n; ++t) lp[size_t(t)] = log_prob_at(z + t * V, V, ids[size_t(t + 1)]);
  return lp;
}

GreedyCompleteFn packed_greedy_completer(const PackedModel& m, const Tokenizer& tok, bool document_start) {
  auto engine = std::make_shared<Engine>(m);
  return [&m, &tok, engine, document_start](const std::string& prompt, int max_tokens) {
    std::vector<int32_t> ids;
    const int32_t eos = tok.eos_id();
    if (document_start && eos >= 0) ids.push_back(eos);
    tok.encode_append(prompt, ids);
    std::vector<int32_t> gen;
    if (ids.empty() || int64_t(ids.size()) >= engine->max_context()) return std::string();
    const int64_t V = m.cfg.vocab_size;
    engine->reset();
    const float* z = engine->forward(ids.data(), int64_t(ids.size()));
    for (int i = 0; i < max_tokens; ++i) {
      const int32_t best = int32_t(std::max_element(z, z + V) - z);  // first maximum, as greedy_complete
      if (best == eos) break;
      gen.push_back(best);
      if (tok.decode(gen).find('\n') != std::string::npos) break;
      if (engine->pos() + 1 >= engine->max_context()) break;
      z = engine->decode(best);
    }
    return tok.decode(gen);
  };
}

}  // namespace razor
