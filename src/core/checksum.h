// Checksums for the files razor writes: FNV-1a 64 (byte-wise, streaming).
// FNV-1a is not cryptographic; it detects truncation, bit rot and foreign files, which is
// all a local training/deployment file needs. Deliberately not here: file IO.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace razor {

constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnv1a64Prime = 0x100000001b3ull;

// Continues an FNV-1a 64 hash over `n` bytes; start with kFnv1a64Offset.
inline uint64_t fnv1a64(const void* data, size_t n, uint64_t h = kFnv1a64Offset) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnv1a64Prime;
  }
  return h;
}

// "razor-hash64": FNV-1a's xor-multiply step over 64-bit little-endian words in 4
// independent lanes (about 4x faster than byte-wise FNV-1a), the lanes folded with the
// length at the end. Streaming updates give the same digest however the input is split.
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

// 16 lowercase hex digits, as checksums appear in JSON manifests.
std::string hex64(uint64_t v);
// Parses hex64() output; returns false on anything else.
bool parse_hex64(const std::string& s, uint64_t* out);
// The same, throwing razor::Error "<what>: expected 16 hex digits, got '<s>'" on bad text.
uint64_t parse_hex64(const std::string& s, const char* what);

}  // namespace razor
