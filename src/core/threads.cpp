#include "core/threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace razor {

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1) fail("--threads: must be at least 1 (got %d)", n);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

int set_threads_for_cores(int n) {
  if (n < 1) fail("--threads: must be at least 1 (got %d)", n);
  const int used = std::min(n, available_cores());
  set_num_threads(used);
  return used;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace razor
