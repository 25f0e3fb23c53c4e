// Hashes the teacher store records: identity hashes (teacher checkpoint, tokenizer) and
// shard checksums. The algorithms live in core/checksum.h (fnv1a64, Hash64 / hash64,
// hash64_file); this header adds the manifest's hex text form.
#pragma once
#include <cstdint>
#include <string>

#include "core/checksum.h"

namespace razor {

// 16 lowercase hex digits, and back (throws razor::Error naming `what` on bad text).
inline std::string hash_hex(uint64_t h) { return hex64(h); }
uint64_t parse_hash_hex(const std::string& s, const char* what);

}  // namespace razor
