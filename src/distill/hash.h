// Hashes for the teacher store: identity hashes (teacher checkpoint, tokenizer) and shard
// checksums. Named distill/hash.h on purpose: other modules may keep their own checksum
// helpers; this one defines exactly what the store format records.
//  - fnv1a64: the standard 64-bit FNV-1a over bytes (offset 0xcbf29ce484222325, prime
//    0x100000001b3). Simple and well known; about 1 byte per cycle.
//  - Hash64 / hash64: "razor-hash64", FNV-1a's xor-multiply step applied to 64-bit
//    little-endian words in 4 independent lanes (about 4x faster on big shards), the lanes
//    folded with the length at the end. Not a cryptographic hash: it detects truncation and
//    corruption, not tampering. Streaming updates give the same digest as one call on the
//    concatenated bytes, however the input is split.
// Deliberately not here: anything about the store layout (distill/store.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace razor {

uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull);

class Hash64 {
 public:
  Hash64();
  void update(const void* data, size_t n);
  uint64_t digest() const;  // does not change the state; more updates may follow

 private:
  uint64_t lane_[4];
  uint8_t buf_[32];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

uint64_t hash64(const void* data, size_t n);
// hash64 of a whole file's bytes (streamed); throws razor::Error naming the file.
uint64_t hash64_file(const std::string& path);

// 16 lowercase hex digits, and back (throws razor::Error naming `what` on bad text).
std::string hash_hex(uint64_t h);
uint64_t parse_hash_hex(const std::string& s, const char* what);

}  // namespace razor
