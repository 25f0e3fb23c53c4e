// Thread settings: one place that decides how many OpenMP threads razor uses.
#pragma once

namespace razor {

// Threads razor's parallel regions use (default: OMP_NUM_THREADS or the core count).
int num_threads();
// Set the thread count (n >= 1). More threads than cores is allowed (tests use it for
// uneven work splits); the command line goes through set_threads_for_cores instead.
void set_num_threads(int n);
// Cores this process may run on (its CPU affinity mask, else the online count), at least 1.
int available_cores();
// What `--threads N` does: N threads, but at most available_cores(). OpenMP's barriers spin,
// so every thread beyond the cores makes each barrier wait for a descheduled thread (the
// default student's decode at 10 threads on 2 cores: 127 tokens/s against ~5,000 at 2).
// Returns the count set; the caller reports it when it differs from n.
int set_threads_for_cores(int n);
// Seconds since an arbitrary epoch (monotonic clock).
double now_seconds();

}  // namespace razor
