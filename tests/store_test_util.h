// A teacher-store layout small enough to build by hand, shared by the store's hardening tests
// and its fuzz target (fuzz/fuzz_store_shard.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "distill/store.h"

namespace razor {

// T 4, one layer, C 4, V 9, top-3 log-probs, 2 sequences per shard; the default dtypes.
inline StoreInfo tiny_store_info() {
  StoreInfo info;
  info.teacher_hash = 0x1234;
  info.tokenizer_hash = 0x5678;
  info.seq_len = 4;
  info.num_layers = 1;
  info.hidden_size = 4;
  info.vocab_size = 9;
  info.top_k = 3;
  info.shard_sequences = 2;
  return info;
}

// A store layout with every size and dtype given (teacher "test-teacher", fixed hashes).
inline StoreInfo test_store_info(int64_t T, int64_t L, int64_t C, int64_t V, HiddenDtype hd, LogitStorage ls,
                                 int64_t K, LogpDtype lp = LogpDtype::F32, int64_t S = 2) {
  StoreInfo i;
  i.teacher_id = "test-teacher";
  i.teacher_hash = 0x1111222233334444ull;
  i.tokenizer_hash = 0x5555666677778888ull;
  i.seq_len = T, i.num_layers = L, i.hidden_size = C, i.vocab_size = V;
  i.hidden_dtype = hd, i.logits = ls, i.top_k = K, i.logp_dtype = lp, i.shard_sequences = S;
  return i;
}

// Raw teacher outputs for one sequence, as a test writes them into a store.
struct RawSeq {
  std::vector<int32_t> ids;                // [T+1]
  std::vector<uint8_t> mask;               // [T+1]
  std::vector<std::vector<float>> hidden;  // L+1 x [T, C]
  std::vector<float> logits;               // [T, V]
  std::vector<const float*> taps() const {
    std::vector<const float*> p;
    for (const auto& h : hidden) p.push_back(h.data());
    return p;
  }
};

}  // namespace razor
