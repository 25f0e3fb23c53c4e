#include "core/checksum.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace razor {

std::string hex64(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[size_t(i)] = digits[v & 15];
  return s;
}

bool parse_hex64(const std::string& s, uint64_t* out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    v = (v << 4) | uint64_t(d);
  }
  *out = v;
  return true;
}

namespace {
constexpr uint64_t kPrime = kFnv1a64Prime;
constexpr uint64_t kOffset = kFnv1a64Offset;
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];  // little-endian on every host
  return v;
}
}  // namespace

Hash64::Hash64() {
  for (int i = 0; i < 4; ++i) lane_[i] = kOffset + uint64_t(i) * 0x9e3779b97f4a7c15ull;
}

void Hash64::update(const void* data, size_t n) {
  // An empty span may come as (nullptr, 0) (an empty vector's data()); memcpy from null is
  // undefined even for 0 bytes.
  if (n == 0) return;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  total_ += n;
  if (buf_len_ > 0) {
    size_t take = std::min(n, size_t(32) - buf_len_);
    std::memcpy(buf_ + buf_len_, p, take);
    buf_len_ += take;
    p += take;
    n -= take;
    if (buf_len_ < 32) return;
    for (int i = 0; i < 4; ++i) lane_[i] = (lane_[i] ^ load_le64(buf_ + 8 * i)) * kPrime;
    buf_len_ = 0;
  }
  uint64_t a = lane_[0], b = lane_[1], c = lane_[2], d = lane_[3];
  for (; n >= 32; n -= 32, p += 32) {
    a = (a ^ load_le64(p)) * kPrime;
    b = (b ^ load_le64(p + 8)) * kPrime;
    c = (c ^ load_le64(p + 16)) * kPrime;
    d = (d ^ load_le64(p + 24)) * kPrime;
  }
  lane_[0] = a, lane_[1] = b, lane_[2] = c, lane_[3] = d;
  std::memcpy(buf_, p, n);
  buf_len_ = n;
}

uint64_t Hash64::digest() const {
  // Fold the lanes, then the unaligned tail bytes and the length, byte-wise FNV-1a.
  uint64_t h = kOffset;
  for (int i = 0; i < 4; ++i) {
    uint8_t w[8];
    for (int k = 0; k < 8; ++k) w[k] = uint8_t(lane_[i] >> (8 * k));
    h = fnv1a64(w, 8, h);
  }
  h = fnv1a64(buf_, buf_len_, h);
  uint8_t len[8];
  for (int k = 0; k < 8; ++k) len[k] = uint8_t(total_ >> (8 * k));
  return fnv1a64(len, 8, h);
}

uint64_t hash64(const void* data, size_t n) {
  Hash64 h;
  h.update(data, n);
  return h.digest();
}

uint64_t hash64_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  std::vector<uint8_t> buf(1 << 20);
  Hash64 h;
  size_t got;
  while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) h.update(buf.data(), got);
  bool err = std::ferror(f);
  std::fclose(f);
  if (err) fail("%s: read error", path.c_str());
  return h.digest();
}

uint64_t parse_hex64(const std::string& s, const char* what) {
  uint64_t v = 0;
  if (!parse_hex64(s, &v)) fail("%s: expected 16 hex digits, got '%s'", what, s.c_str());
  return v;
}

}  // namespace razor
