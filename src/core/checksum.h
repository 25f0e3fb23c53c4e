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

// 16 lowercase hex digits, as checksums appear in JSON manifests.
std::string hex64(uint64_t v);
// Parses hex64() output; returns false on anything else.
bool parse_hex64(const std::string& s, uint64_t* out);

}  // namespace razor
