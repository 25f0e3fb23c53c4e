// Tensor: float32, contiguous, row-major, up to 4 dims, 64-byte aligned storage.
//
// A Tensor is a cheap handle: copying it shares the buffer (like a view). clone() copies
// the data. view_of() makes a tensor over a slice of another buffer, which is how the flat
// parameter / gradient / optimizer buffers hand out named views (llm.c style).
// Storage conversion to bf16 / fp16 lives in core/half.h; this file is compute-only f32.
//
// Shape letters used in comments across razor (one set, defined here):
//   B batch, T time (sequence), C channels (hidden size), H attention heads,
//   K key/value heads, D head dim, F FFN (intermediate) dim, V vocabulary,
//   L layers, G quantization group size, N a flattened row count (B*T).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace razor {

constexpr int kMaxDims = 4;
constexpr size_t kAlign = 64;

// 64-byte aligned allocation, freed with aligned_free. Sizes are rounded up to 64 bytes.
void* aligned_alloc64(size_t bytes);
void aligned_free(void* p);

// The dims of a file's tensor (any rank, as a file states them) for messages: "[4096, 1024]".
std::string shape_str(const std::vector<int64_t>& dims);

struct Shape {
  int nd = 0;
  int64_t d[kMaxDims] = {1, 1, 1, 1};
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);
  int64_t numel() const;
  int64_t operator[](int i) const;  // negative i counts from the back
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[2, 3, 4]"
};

// p[0, n) = 0, with the OpenMP threads sharing large fills (Tensor::zeros, gradient buffers).
void zero_floats(float* p, int64_t n);

class Tensor {
 public:
  Tensor() = default;
  // New uninitialised / zero-filled tensors.
  static Tensor empty(const Shape& s);
  static Tensor zeros(const Shape& s);
  static Tensor full(const Shape& s, float v);
  static Tensor from(const Shape& s, const std::vector<float>& values);
  // A tensor over external memory kept alive by `owner` (may be null: caller keeps it alive).
  static Tensor view_of(float* ptr, const Shape& s, std::shared_ptr<void> owner = nullptr);

  bool defined() const { return ptr_ != nullptr || shape_.numel() == 0; }
  const Shape& shape() const { return shape_; }
  int dim() const { return shape_.nd; }
  int64_t size(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  float* data() { return ptr_; }
  const float* data() const { return ptr_; }
  float& operator[](int64_t i) { return ptr_[i]; }
  float operator[](int64_t i) const { return ptr_[i]; }

  // Same buffer, new shape (numel must match).
  Tensor reshape(const Shape& s) const;
  // Rows [start, start+len) of the first dim, sharing the buffer.
  Tensor rows(int64_t start, int64_t len) const;
  Tensor clone() const;
  void fill(float v);
  void zero() { fill(0.0f); }
  void copy_from(const Tensor& src);  // shapes must have equal numel
  std::vector<float> to_vector() const;
  std::string shape_str() const { return shape_.str(); }

 private:
  std::shared_ptr<void> owner_;
  float* ptr_ = nullptr;
  Shape shape_;
};

// Throws razor::Error "<op>: shape mismatch: a [..] vs b [..]" when shapes differ.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);

}  // namespace razor
