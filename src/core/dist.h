// Distributed-process layer: the few collectives razor's data-parallel training and the
// parallel teacher dump need. The default build links the serial implementation (dist.cpp:
// one process, rank 0 of 1, every collective a no-op); `make MPI=1` (CMake -DRAZOR_MPI=ON)
// compiles dist_mpi.cpp instead, which maps them onto MPI_COMM_WORLD of Open MPI.
// MPI is initialised on first use (MPI_THREAD_FUNNELED: only the main thread calls MPI,
// OpenMP threads work inside each rank) and finalised at exit.
// Deliberately not here: what to reduce or when (train/qad.cpp, train/teacher_dump.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

namespace razor {

bool dist_is_mpi();           // true in an MPI build (even with one rank)
int dist_rank();              // 0-based rank of this process
int dist_size();              // number of ranks (1 without mpirun)
void dist_barrier();
// In-place element-wise sum over all ranks; every rank gets the same result. Large buffers
// are reduced in buckets (dist_mpi.cpp) so the transfers of one bucket overlap the next.
void dist_allreduce_sum(float* x, size_t n);
void dist_allreduce_sum(double* x, size_t n);
// In-place element-wise max over all ranks (used to check that ranks agree).
void dist_allreduce_max(double* x, size_t n);
// Copies `bytes` bytes from `root`'s buffer into every rank's buffer.
void dist_broadcast(void* data, size_t bytes, int root);
// Ends the whole job (every rank) after a fatal error on one rank; returns in a serial build.
void dist_abort(int code);

}  // namespace razor
