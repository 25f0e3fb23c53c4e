#include "train/evaluate.h"

#include <algorithm>
#include <cmath>

#include "train/arith.h"

namespace razor {

PplResult eval_perplexity(const Model& m, const TokenShard& shard, int T, int64_t max_windows, int batch) {
  NoGradGuard ng;
  int64_t nwin = int64_t(data_sequence_count(shard, T));
  if (max_windows > 0 && nwin > max_windows) nwin = max_windows;
  PplResult r;
  double nll = 0;
  std::vector<int32_t> win(size_t(T) + 1);
  std::vector<uint8_t> mask(size_t(T) + 1);
  for (int64_t w0 = 0; w0 < nwin; w0 += batch) {
    int64_t B = std::min<int64_t>(batch, nwin - w0);
    std::vector<int32_t> ids(size_t(B * T)), targets(size_t(B * T));
    int64_t n = 0;  // targets counted: chat records score only their response tokens
    for (int64_t b = 0; b < B; ++b) {
      data_sequence(shard, T, uint64_t(w0 + b), win.data(), mask.data());
      for (int t = 0; t < T; ++t) {
        ids[size_t(b * T + t)] = win[size_t(t)];
        const bool target = mask[size_t(t) + 1] != 0;
        targets[size_t(b * T + t)] = target ? win[size_t(t) + 1] : -1;
        n += target;
      }
    }
    if (n == 0) continue;
    Var logits = m.forward(ids, B, T).logits;
    Var loss = cross_entropy(logits, targets);
    nll += double(loss.item()) * double(n);
    r.tokens += n;
  }
  // No window at all (a validation split shorter than one window): no figure, not ppl 1.
  r.mean_nll = r.tokens ? nll / double(r.tokens) : NAN;
  r.ppl = std::exp(r.mean_nll);
  return r;
}

std::string greedy_complete(const Model& m, const Tokenizer& tok, const std::string& prompt, int max_tokens,
                            bool document_start) {
  NoGradGuard ng;
  std::vector<int32_t> ids;
  const int32_t eos = tok.eos_id();
  if (document_start && eos >= 0) ids.push_back(eos);
  tok.encode_append(prompt, ids);
  std::vector<int32_t> gen;
  const int64_t V = m.cfg.vocab_size;
  for (int i = 0; i < max_tokens; ++i) {
    if (int64_t(ids.size()) >= m.cfg.max_position_embeddings) break;
    Var logits = m.forward(ids, 1, int64_t(ids.size())).logits;
    const float* last = logits.value().data() + (int64_t(ids.size()) - 1) * V;
    int32_t best = int32_t(std::max_element(last, last + V) - last);  // first maximum, as before
    if (best == eos) break;
    ids.push_back(best);
    gen.push_back(best);
    if (tok.decode(gen).find('\n') != std::string::npos) break;
  }
  return tok.decode(gen);
}

GreedyCompleteFn greedy_completer(const Model& m, const Tokenizer& tok, bool document_start) {
  return [&m, &tok, document_start](const std::string& prompt, int max_tokens) {
    return greedy_complete(m, tok, prompt, max_tokens, document_start);
  };
}

double eval_arith_accuracy(const Model& m, const Tokenizer& tok, int k, uint64_t seed) {
  return eval_arith(greedy_completer(m, tok), seed, k).accuracy();
}

}  // namespace razor
