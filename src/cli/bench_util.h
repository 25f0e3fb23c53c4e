// Timing helpers shared by the benchmark commands (bench_packed.cpp, bench_model.cpp).
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

#include "core/threads.h"

namespace razor {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs f until at least min_reps runs and min_seconds have passed (at most max_reps);
// returns the median seconds per run.
template <class F>
double time_median(F f, int min_reps, double min_seconds, int max_reps) {
  f();  // warm-up: page faults, caches, thread pool
  std::vector<double> t;
  const double start = now_seconds();
  while (int(t.size()) < max_reps && (int(t.size()) < min_reps || now_seconds() - start < min_seconds)) {
    const double t0 = now_seconds();
    f();
    t.push_back(now_seconds() - t0);
  }
  return median(t);
}

// Streaming read bandwidth (bytes/s) over `bytes` of memory with the current thread count
// (defined in bench_packed.cpp).
double read_bandwidth(size_t bytes);

}  // namespace razor
