// The packed-model container `.razor`: one mmap-able file.
//
//   bytes 0..63    fixed header (little-endian):
//                  0  magic "RAZORPK1"          8  u32 version (1)    12 u32 reserved (0)
//                  16 u64 json_len              24 u64 data_offset    32 u64 data_len
//                  40 u64 hash64(json)          48 u64 hash64(data)   56 u64 hash64(bytes 0..55)
//   64..           JSON header: {"tensors": [{"name","dtype","shape","offset","nbytes",...}], ...}
//                  plus whatever sections the writer adds ("config", "layout", ...)
//   data_offset    tensor data, each tensor 64-byte aligned, offsets relative to data_offset
//
// The container knows nothing about models or kernels: tensors are named byte blobs with a
// dtype string and a shape. Opening validates the magic, version, every length and offset
// against the file size, and the three hashes, so a truncated or corrupted file is rejected
// with a message naming the file and what is wrong.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "io/mapped_file.h"

namespace razor {

struct RazorTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  uint64_t offset = 0, nbytes = 0;
  Json meta;  // the tensor's whole JSON entry
};

class RazorFileWriter {
 public:
  // Top-level JSON sections (e.g. "config", "layout"); "tensors" is reserved.
  void set(const std::string& key, Json value);
  // Copies the bytes. extra: further fields for the tensor's JSON entry (object or null).
  void add(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape, const void* data,
           size_t nbytes, Json extra = Json());
  // Writes to a temporary name, fsyncs and renames over `path`.
  void write(const std::string& path) const;

 private:
  Json sections_ = Json::object();
  struct Blob {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
    Json extra;
  };
  std::vector<Blob> blobs_;
};

class RazorFile {
 public:
  // verify_data: also check the data hash (reads every byte once).
  static RazorFile open(const std::string& path, bool verify_data = true);
  const Json& header() const { return header_; }
  const std::vector<RazorTensor>& tensors() const { return tensors_; }
  const RazorTensor* find(const std::string& name) const;
  // Throws naming the file and tensor when absent or when its dtype/size differ.
  const RazorTensor& get(const std::string& name, const std::string& dtype, uint64_t nbytes) const;
  const uint8_t* data(const RazorTensor& t) const { return file_->data() + data_offset_ + t.offset; }
  const std::string& path() const { return file_->path(); }
  uint64_t file_size() const { return file_->size(); }
  std::shared_ptr<MappedFile> mapped() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  Json header_;
  std::vector<RazorTensor> tensors_;
  uint64_t data_offset_ = 0;
};

}  // namespace razor
