#include "io/mapped_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

namespace razor {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("%s: cannot stat: %s", path.c_str(), std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("%s: is a directory, expected a file", path.c_str());
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size_t(st.st_size);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("%s: cannot map: %s", path.c_str(), std::strerror(e));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::prefetch(size_t off, size_t len) const {
  if (!data_ || off >= size_) return;
  if (len > size_ - off) len = size_ - off;
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  size_t start = off / page * page;
  madvise(const_cast<uint8_t*>(data_) + start, len + (off - start), MADV_WILLNEED);
}

static inline uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint64_t hash64(const void* data, size_t n, uint64_t seed) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  // Four independent lanes so the multiplies pipeline.
  uint64_t h[4] = {seed ^ 0x9E3779B97F4A7C15ull, seed + 0x632BE59BD9B4E019ull, ~seed, seed * 3 + 1};
  const uint64_t k = 0x9FB21C651E98DF25ull;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      h[l] = (h[l] ^ w) * k;
      h[l] ^= h[l] >> 29;
    }
  }
  uint64_t tail = 0;
  size_t rem = n - i;
  for (size_t j = 0; j < rem; ++j) {
    tail |= uint64_t(p[i + j]) << (8 * (j % 8));
    if (j % 8 == 7) {
      h[0] = mix(h[0] ^ tail);
      tail = 0;
    }
  }
  uint64_t r = mix(h[0] ^ tail) ^ mix(h[1] + 1) ^ mix(h[2] + 2) ^ mix(h[3] + 3) ^ mix(uint64_t(n));
  return r;
}

uint64_t hash_file(const std::string& path) {
  auto f = MappedFile::open(path);
  return hash64(f->data(), f->size());
}


}  // namespace razor
