// Serial implementation of core/dist.h: one process, collectives do nothing. Compiled in
// every build without RAZOR_MPI; the MPI build compiles dist_mpi.cpp instead.
#include "core/dist.h"

#if !RAZOR_MPI
namespace razor {

bool dist_is_mpi() { return false; }
int dist_rank() { return 0; }
int dist_size() { return 1; }
void dist_barrier() {}
void dist_allreduce_sum(float*, size_t) {}
void dist_allreduce_sum(double*, size_t) {}
void dist_allreduce_max(double*, size_t) {}
void dist_broadcast(void*, size_t, int) {}
void dist_abort(int) {}

}  // namespace razor
#endif
