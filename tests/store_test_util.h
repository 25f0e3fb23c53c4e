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
