#include "distill/hash.h"

#include "core/error.h"

namespace razor {

uint64_t parse_hash_hex(const std::string& s, const char* what) {
  uint64_t v = 0;
  if (!parse_hex64(s, &v)) fail("%s: expected 16 hex digits, got '%s'", what, s.c_str());
  return v;
}

}  // namespace razor
