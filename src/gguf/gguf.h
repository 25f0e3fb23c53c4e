// GGUF v3 container: a writer and a bounds-checked, memory-mapped reader.
//
// File layout (all little-endian; "str" = u64 byte length + UTF-8 bytes, no terminator):
//   u32 magic "GGUF"   u32 version (3)   u64 tensor_count   u64 kv_count
//   kv_count   x { str key, u32 value_type, value }          value: see GgufValueType;
//                                                            array = u32 elem_type, u64 n, n values
//   tensor_count x { str name, u32 n_dims, u64 ne[n_dims] (ne[0] = innermost = row length),
//                    u32 ggml_type, u64 offset (relative to the data section, aligned) }
//   zero padding up to a multiple of `general.alignment` (u32, default 32)
//   data section: each tensor's blocks, rows of ne[0] elements, padded to the alignment
//
// This file knows the container and the byte size of each ggml type; it knows nothing about
// models (src/gguf/export) or about what the blocks mean (src/gguf/blocks).
// The writer lays tensors out contiguously in insertion order (llama.cpp's loader insists on
// that) and writes to a temporary name, fsyncs and renames, so a failed export never leaves a
// half-written file under the final name.
// The reader validates everything it touches against the file size before touching it: counts
// are checked against the bytes that remain (a forged count of 2^60 fails at once instead of
// allocating), as are string lengths, array sizes, dimensions, type ids, offsets, alignment and
// tensor extents; every error names the file and the key or tensor at fault.
// Deliberately not here: GGUF v1/v2 (v2 differs only in 32-bit counts; llama.cpp writes v3),
// big-endian files, nested arrays (llama.cpp rejects them too).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/mapped_file.h"

namespace razor {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);

// ggml tensor type ids (the numbers are the file format; see docs/gguf.md).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 8,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

// Elements per block and bytes per block of a ggml type id; false for an id razor does not
// know. Known: every type llama.cpp writes to files (F32 .. TQ2_0, MXFP4), so that the reader
// can list real models; razor decodes only the ones in GgmlType.
bool ggml_type_size(uint32_t type, int64_t* block_elems, int64_t* block_bytes);
const char* ggml_type_name(uint32_t type);  // "Q4_0", ... or "type#N"
inline const char* ggml_type_name(GgmlType t) { return ggml_type_name(uint32_t(t)); }
// Bytes of a tensor with dims ne (ne[0] a multiple of the block size); RZ_ASSERTs known type.
uint64_t ggml_nbytes(GgmlType type, const std::vector<int64_t>& ne);

// One metadata value. Scalars live in u / i / f / s; arrays in ints / floats / strings with
// array_type saying the element type (integers and bools go to ints, float32/64 to floats).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint32;
  GgufValueType array_type = GgufValueType::kUint8;
  uint64_t u = 0;  // kUint8/16/32/64, kBool (0/1)
  int64_t i = 0;   // kInt8/16/32/64
  double f = 0;    // kFloat32/64
  std::string s;   // kString
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  static GgufValue u8(uint8_t v);
  static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v);
  static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue i64(int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue str(std::string v);
  // Arrays: elem must be an integer / bool type for array_ints, float32/64 for array_floats.
  static GgufValue array_ints(GgufValueType elem, std::vector<int64_t> v);
  static GgufValue array_floats(GgufValueType elem, std::vector<double> v);
  static GgufValue array_strings(std::vector<std::string> v);

  uint64_t array_size() const;
  bool operator==(const GgufValue& o) const;
  std::string str_short() const;  // for reports: "u32 28", "array[str] x 151936", ...
};

class GgufWriter {
 public:
  // alignment: a power of two; anything but 32 is recorded as general.alignment (u32).
  explicit GgufWriter(uint32_t alignment = 32);
  // Sets a key (replacing an earlier value in place, keeping the order of first insertion).
  void set(const std::string& key, GgufValue v);
  const GgufValue* find(const std::string& key) const;
  // Adds a tensor. ne: ne[0] first (row length), at most 4 dims; bytes.size() must equal
  // ggml_nbytes(type, ne). Names must be unique and shorter than 64 bytes (llama.cpp's limit).
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes);
  size_t tensor_count() const { return tensors_.size(); }
  // Writes the whole file atomically (temporary name, fsync, rename). Errors name `path`.
  void write(const std::string& path) const;
  // The bytes write() would put in the file (tests; small files only).
  std::vector<uint8_t> serialize() const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> header() const;  // up to the start of the data section (padded)
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ne[0] = row length
  uint32_t type = 0;        // ggml type id (a known one: see ggml_type_size)
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // inside the mapping
  int64_t numel() const;
  int64_t rows() const { return ne.empty() ? 1 : numel() / ne[0]; }
};

class GgufFile {
 public:
  // Maps and validates a file; throws razor::Error "<path>: ..." on any defect.
  static GgufFile open(const std::string& path);
  // Validates an in-memory image (kept alive by `owner` when given); `source` names it in errors.
  static GgufFile parse(const uint8_t* data, size_t size, const std::string& source,
                        std::shared_ptr<const void> owner = nullptr);

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  // Typed getters: throw "<file>: key '<key>': missing" / "... is <type>, expected <type>".
  const GgufValue& at(const std::string& key) const;
  uint32_t get_u32(const std::string& key) const;
  float get_f32(const std::string& key) const;
  const std::string& get_str(const std::string& key) const;
  bool get_bool(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  const GgufTensorInfo& tensor(const std::string& name) const;  // throws naming the tensor

 private:
  std::string source_;
  std::shared_ptr<const void> owner_;
  uint32_t version_ = 0, alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace razor
