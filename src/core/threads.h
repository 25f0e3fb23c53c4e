// Thread settings: one place that decides how many OpenMP threads razor uses.
#pragma once

namespace razor {

// Threads razor's parallel regions use (default: OMP_NUM_THREADS or the core count).
int num_threads();
// Set the thread count (n >= 1). More threads than cores is allowed.
void set_num_threads(int n);
// Seconds since an arbitrary epoch (monotonic clock).
double now_seconds();

}  // namespace razor
