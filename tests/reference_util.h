// What a test does when the independent reference it compares with is absent (the npm
// tokenizer, python3 with numpy, the built ./razor, a tools/ script). Outside CI it is skipped
// with a message that says how to get the reference; under CI=true (.ci/run) a missing
// reference fails the test, so CI can never be green with the comparison skipped.
#pragma once
#include <cstdlib>
#include <cstring>

#include <doctest/doctest.h>

namespace razor {

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::strcmp(ci, "true") == 0;
}

}  // namespace razor

// MSG is a stream expression: "what is missing" << " (how to get it)".
#define RAZOR_REFERENCE_MISSING(MSG)                                         \
  do {                                                                       \
    if (::razor::running_in_ci())                                            \
      FAIL_CHECK("reference missing under CI=true: " << MSG);                \
    else                                                                     \
      MESSAGE("SKIPPED: " << MSG);                                           \
  } while (0)
