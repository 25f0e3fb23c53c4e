// Evaluation of a packed `.razor` model with the inference engine (integer kernels, int8 KV
// cache): the same figures as train/evaluate.h gives for a latent checkpoint, so `razor eval`
// and `razor score` on a `.razor` file can be held against the fake-quant path (NUMERICS.md §10).
// Deliberately not here: the engine itself (infer/engine.h).
#pragma once
#include <cstdint>
#include <vector>

#include "infer/pack.h"
#include "io/tokenizer.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/shards.h"

namespace razor {

// prepare_data (train/data.h) with the tokenizer stored inside the packed model: it is written
// once to <cache_dir>/tokenizer-<hash>.json (content-addressed) and the shards are cached as usual.
PreparedData prepare_data_packed(const std::string& data, const PackedModel& m,
                                 const std::string& cache_dir = "data/cache");

// Perplexity over the first max_windows (0 = all) windows of T+1 tokens, exactly the windows
// eval_perplexity reads; each window is one prefill from an empty context.
PplResult packed_perplexity(const PackedModel& m, const TokenShard& shard, int T, int64_t max_windows = 0);

// log p(ids[t+1] | ids[..t]) for every t (one prefill), in double from the engine's logits.
std::vector<double> packed_next_token_logprobs(const PackedModel& m, const std::vector<int32_t>& ids);

// Greedy continuation with the KV cache (prefill the prompt, then one decode per token); same
// stopping rules and document start as train/evaluate.h's greedy_complete.
GreedyCompleteFn packed_greedy_completer(const PackedModel& m, const Tokenizer& tok, bool document_start = true);

}  // namespace razor
