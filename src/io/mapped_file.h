// Read-only memory-mapped files and a fast 64-bit content hash.
// MappedFile validates nothing about the contents; loaders check every offset against
// size() before touching the bytes (a truncated download must give an error, not SIGSEGV).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/checksum.h"  // hex64

namespace razor {

class MappedFile {
 public:
  // Maps `path` read-only; throws razor::Error naming the file when it cannot be opened.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Hint the kernel to read [off, off+len) ahead (madvise WILLNEED); safe on any range.
  void prefetch(size_t off, size_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace razor
