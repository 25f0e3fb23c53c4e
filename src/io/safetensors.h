// safetensors: reader (mmap, validated) and writer (atomic: temporary name + rename).
//
// File layout (https://github.com/huggingface/safetensors): u64 little-endian header length
// N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {...}}, then the data region; offsets are relative to its start.
// The reader checks everything against the file size before touching data: the header
// length, every tensor's dtype, shape (overflow-safe element count), byte size and offsets,
// and that no two tensors overlap. Holes between tensors are tolerated (the Python library
// rejects them; razor's writer never produces them). __metadata__ is kept but not used.
// Data is read only through explicit conversions to f32 Tensors (F32, F16, BF16, F64).
// Errors name the file and the tensor.
// Deliberately not here: tensor naming (nn/model), sharded index files (nn/model).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/json.h"
#include "io/mapped_file.h"

namespace razor {

enum class StDType { BOOL, U8, I8, F8_E4M3, F8_E5M2, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

// "F32" etc.; element size in bytes.
const char* st_dtype_name(StDType t);
size_t st_dtype_size(StDType t);
// False when s is not a safetensors dtype name.
bool st_dtype_parse(const std::string& s, StDType* out);

struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data region
  int64_t numel() const;
};

class SafeTensorsReader {
 public:
  // Maps and validates the whole header; throws razor::Error naming the file (and tensor).
  explicit SafeTensorsReader(const std::string& path);
  ~SafeTensorsReader();
  SafeTensorsReader(const SafeTensorsReader&) = delete;
  SafeTensorsReader& operator=(const SafeTensorsReader&) = delete;

  const std::string& path() const { return path_; }
  // Tensors in header order.
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  const StTensorInfo* find(const std::string& name) const;  // nullptr when absent
  const Json& metadata() const { return metadata_; }

  // The tensor converted to f32 (F32/F16/BF16/F64; other dtypes are an error naming it).
  Tensor read(const std::string& name) const;
  // Converts into dst; dst's shape must equal the stored shape (error names both).
  void read_into(const std::string& name, Tensor& dst) const;
  // Raw bytes of a tensor (already validated to lie inside the file).
  const uint8_t* raw(const StTensorInfo& t) const { return data_ + t.begin; }

 private:
  void convert(const StTensorInfo& t, float* dst) const;
  std::string path_;
  std::vector<StTensorInfo> tensors_;
  Json metadata_;
  std::shared_ptr<MappedFile> map_;
  const uint8_t* data_ = nullptr;  // start of the data region
};

// Collects tensors (f32 values) and writes them as F32 or BF16. The data region starts at a
// 64-byte aligned file offset (the header is padded with spaces, as the format allows) and
// tensors are packed back to back in the order added.
class SafeTensorsWriter {
 public:
  // The tensor's data must stay alive until write() returns (no copy is made).
  void add(const std::string& name, const Tensor& t, StDType dtype = StDType::F32);
  // Like add, with an explicit shape (any rank) over `count` floats.
  void add_raw(const std::string& name, const float* data, const std::vector<int64_t>& shape,
               StDType dtype = StDType::F32);
  void set_metadata(const std::string& key, const std::string& value);
  // Writes path atomically (temporary file, fsync, rename): a failure leaves any previous
  // file intact.
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    const float* data;
    std::vector<int64_t> shape;
    StDType dtype;
  };
  std::vector<Entry> entries_;
  std::vector<std::pair<std::string, std::string>> metadata_{{"format", "pt"}};
};

}  // namespace razor
