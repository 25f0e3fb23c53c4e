#include "core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace razor {

void* aligned_alloc64(size_t bytes) {
  size_t n = (bytes + kAlign - 1) / kAlign * kAlign;
  if (n == 0) n = kAlign;
  void* p = std::aligned_alloc(kAlign, n);
  if (!p) fail("out of memory allocating %zu bytes", bytes);
  return p;
}

void aligned_free(void* p) { std::free(p); }

Shape::Shape(std::initializer_list<int64_t> dims) {
  RZ_ASSERT_MSG(dims.size() <= size_t(kMaxDims), "at most 4 dims");
  nd = int(dims.size());
  int i = 0;
  for (int64_t v : dims) d[i++] = v;
}

Shape::Shape(const std::vector<int64_t>& dims) {
  if (dims.size() > size_t(kMaxDims)) fail("tensor with %zu dims: razor supports at most 4", dims.size());
  nd = int(dims.size());
  for (int i = 0; i < nd; ++i) d[i] = dims[size_t(i)];
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < nd; ++i) n *= d[i];
  return n;
}

int64_t Shape::operator[](int i) const {
  if (i < 0) i += nd;
  RZ_ASSERT(i >= 0 && i < nd);
  return d[i];
}

bool Shape::operator==(const Shape& o) const {
  if (nd != o.nd) return false;
  for (int i = 0; i < nd; ++i)
    if (d[i] != o.d[i]) return false;
  return true;
}

std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < nd; ++i) {
    if (i) s += ", ";
    s += std::to_string(d[i]);
  }
  return s + "]";
}

Tensor Tensor::empty(const Shape& s) {
  for (int i = 0; i < s.nd; ++i)
    if (s.d[i] < 0) fail("tensor with negative dimension %s", s.str().c_str());
  Tensor t;
  t.shape_ = s;
  size_t bytes = size_t(s.numel()) * sizeof(float);
  float* p = static_cast<float*>(aligned_alloc64(bytes));
  t.owner_ = std::shared_ptr<void>(p, aligned_free);
  t.ptr_ = p;
  return t;
}

void zero_floats(float* p, int64_t n) {
  // Above 4 MiB the threads share the fill: one core's stores do not saturate the memory
  // (training's gradient buffers, issue 23). Inside a parallel region this is one thread's.
  constexpr int64_t kParallelZero = int64_t(1) << 20, kBlock = int64_t(1) << 16;
  if (n < kParallelZero) {
    if (n > 0) std::memset(p, 0, size_t(n) * sizeof(float));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < (n + kBlock - 1) / kBlock; ++b)
    std::memset(p + b * kBlock, 0, size_t(std::min(kBlock, n - b * kBlock)) * sizeof(float));
}

Tensor Tensor::zeros(const Shape& s) {
  Tensor t = empty(s);
  zero_floats(t.ptr_, s.numel());
  return t;
}

Tensor Tensor::full(const Shape& s, float v) {
  Tensor t = empty(s);
  t.fill(v);
  return t;
}

Tensor Tensor::from(const Shape& s, const std::vector<float>& values) {
  if (int64_t(values.size()) != s.numel())
    fail("Tensor::from: %zu values for shape %s", values.size(), s.str().c_str());
  Tensor t = empty(s);
  if (!values.empty()) std::memcpy(t.ptr_, values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::view_of(float* ptr, const Shape& s, std::shared_ptr<void> owner) {
  Tensor t;
  t.ptr_ = ptr;
  t.shape_ = s;
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::reshape(const Shape& s) const {
  if (s.numel() != numel())
    fail("reshape: cannot view %s (%lld elements) as %s", shape_.str().c_str(), (long long)numel(),
         s.str().c_str());
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::rows(int64_t start, int64_t len) const {
  RZ_ASSERT(shape_.nd >= 1);
  if (start < 0 || len < 0 || start + len > shape_.d[0])
    fail("rows: range [%lld, %lld) outside first dim of %s", (long long)start, (long long)(start + len),
         shape_.str().c_str());
  int64_t inner = shape_.d[0] ? numel() / shape_.d[0] : 0;
  Tensor t = *this;
  t.ptr_ = ptr_ + start * inner;
  t.shape_.d[0] = len;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_);
  if (numel()) std::memcpy(t.ptr_, ptr_, size_t(numel()) * sizeof(float));
  return t;
}

void Tensor::fill(float v) {
  int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) ptr_[i] = v;
}

void Tensor::copy_from(const Tensor& src) {
  if (src.numel() != numel())
    fail("copy: %s into %s", src.shape_str().c_str(), shape_str().c_str());
  if (numel()) std::memmove(ptr_, src.ptr_, size_t(numel()) * sizeof(float));
}

std::vector<float> Tensor::to_vector() const { return std::vector<float>(ptr_, ptr_ + numel()); }

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    fail("%s: shape mismatch: %s vs %s", op, a.shape_str().c_str(), b.shape_str().c_str());
}

}  // namespace razor
