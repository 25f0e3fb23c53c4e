// Model evaluation shared by pretrain, train, eval: validation perplexity over fixed windows
// of a token shard, and greedy arithmetic exact-match accuracy. Works on any Model (full
// precision, or fake-quant when quant hooks are installed).
#pragma once
#include <cstdint>
#include <string>

#include "io/tokenizer.h"
#include "nn/model.h"
#include "train/arith.h"
#include "train/shards.h"

namespace razor {

struct PplResult {
  double mean_nll = 0;  // nats per token
  double ppl = 0;
  int64_t tokens = 0;
};

// Perplexity over the first `max_windows` non-overlapping windows of T+1 tokens (0 = all),
// evaluated in batches of `batch` windows, no grad. On a records shard (chat data) the
// sequences are the records (data_sequence) and only masked-in targets count: a chat
// validation perplexity is over the response tokens alone.
PplResult eval_perplexity(const Model& m, const TokenShard& shard, int T, int64_t max_windows = 0, int batch = 8);

// Greedy continuation of `prompt` (up to max_tokens, stops at newline or EOS); full-sequence
// forwards (prompts are short). Returns the decoded continuation. document_start (the default,
// used by razor train, eval and pretrain alike): put the EOS id before the prompt, as every
// document starts in the training shards; false gives the bare prompt.
std::string greedy_complete(const Model& m, const Tokenizer& tok, const std::string& prompt, int max_tokens,
                            bool document_start = true);
GreedyCompleteFn greedy_completer(const Model& m, const Tokenizer& tok, bool document_start = true);

// Exact-match accuracy on k held-out arithmetic problems.
double eval_arith_accuracy(const Model& m, const Tokenizer& tok, int k = 200, uint64_t seed = 99);

}  // namespace razor
