// Small helpers every suite wants: the message of a call that must throw razor::Error, and a
// substring check. Fixtures with a domain (temp dirs and tiny models: model_test_util.h; GGUF
// images: gguf_test_util.h) live in their own headers.
#pragma once
#include <string>

#include "core/error.h"

namespace razor {

// The message of the razor::Error that f throws; `none` when it throws nothing.
template <class F>
std::string error_of(F&& f, const char* none = "") {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return none;
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace razor
