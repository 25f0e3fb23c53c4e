// Containers for kernel files compiled with instruction-set flags (*_avx2.cpp, *_avx512.cpp,
// *_neon.cpp, *_dotprod.cpp) and the headers only they include.
//
// A template instantiated in such a file (std::vector<float>::assign, say) is compiled with
// that file's instructions, and with external linkage the linker keeps one copy for the whole
// program, possibly that one: attention_kv8_avx512.cpp's copy of vector<float>::_M_fill_assign,
// with AVX-512 stores, served `razor bench` on an AVX2-only CPU in the sanitizer build (SIGILL).
// IsaVector's allocator lives in an unnamed namespace, so every instantiation that names it has
// internal linkage: each file keeps its own copy and no other file can be handed it.
// Inline functions of shared headers called from those files are `always_inline` for the same
// reason (RowCursor, gemm_detail::Scratch).
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace razor {
namespace {  // NOLINT: internal linkage on purpose, see above

template <class T>
struct IsaLocalAlloc {
  using value_type = T;
  IsaLocalAlloc() = default;
  template <class U>
  IsaLocalAlloc(const IsaLocalAlloc<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, size_t) { ::operator delete(p); }
  template <class U>
  bool operator==(const IsaLocalAlloc<U>&) const { return true; }
  template <class U>
  bool operator!=(const IsaLocalAlloc<U>&) const { return false; }
};

template <class T>
using IsaVector = std::vector<T, IsaLocalAlloc<T>>;

}  // namespace
}  // namespace razor
