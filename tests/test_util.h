// Small helpers every suite wants: the message of a call that must throw razor::Error, and a
// substring check. Fixtures with a domain (temp dirs and tiny models: model_test_util.h; GGUF
// images: gguf_test_util.h) live in their own headers.
#pragma once
#include <doctest/doctest.h>

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

// Checks that f throws razor::Error and that its message contains `part`.
template <class F>
void check_throws_containing(F&& f, const std::string& part) {
  bool threw = false;
  try {
    f();
  } catch (const Error& e) {
    threw = true;
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(part) != std::string::npos);
  }
  CHECK_MESSAGE(threw, "expected an error containing '" << part << "'");
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace razor
