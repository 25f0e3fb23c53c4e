// Errors: the two channels of STYLE.md.
//  - razor::Error is a user error (bad file, option, tensor). It carries a message that
//    names the file / tensor / option at fault; main() prints it as `razor: error: ...`.
//  - RZ_ASSERT is an internal invariant: a failure is a bug in razor, reported with
//    file:line and aborted on. Never use it for anything a user's input can reach.
// Deliberately not here: logging, progress lines (src/cli).
#pragma once
#include <cstdarg>
#include <stdexcept>
#include <string>

namespace razor {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// printf-style formatting into a std::string.
std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Throws razor::Error with a printf-formatted message.
[[noreturn]] void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

[[noreturn]] void assert_failed(const char* expr, const char* file, int line, const char* msg);

}  // namespace razor

#define RZ_ASSERT(cond)                                                      \
  do {                                                                       \
    if (!(cond)) ::razor::assert_failed(#cond, __FILE__, __LINE__, nullptr); \
  } while (0)
#define RZ_ASSERT_MSG(cond, msg)                                            \
  do {                                                                      \
    if (!(cond)) ::razor::assert_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)
// User-facing check: throws razor::Error with the formatted message.
#define RZ_CHECK(cond, ...)                 \
  do {                                      \
    if (!(cond)) ::razor::fail(__VA_ARGS__); \
  } while (0)
