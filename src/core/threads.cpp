#include "core/threads.h"

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

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace razor
