// Small helpers used across folders (one definition each): suffix test, align-up.
// Deliberately not here: anything with a file format or a model in it.
#pragma once
#include <string>

namespace razor {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// x rounded up to a multiple of a (a > 0, x >= 0).
template <class T>
constexpr T align_up(T x, T a) {
  return (x + a - 1) / a * a;
}

}  // namespace razor
