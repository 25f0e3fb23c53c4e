// MPI implementation of core/dist.h (MPI_COMM_WORLD). Compiled only by `make MPI=1` /
// CMake -DRAZOR_MPI=ON; the default build filters every *_mpi.cpp out.
#include "core/dist.h"

#if RAZOR_MPI
// C API only: the deprecated C++ bindings add nothing and warn under -Wextra.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/error.h"

namespace razor {

namespace {

void finalize_at_exit() {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}

void ensure_init() {
  int ok = 0;
  MPI_Initialized(&ok);
  if (ok) return;
  int provided = 0;
  // FUNNELED: OpenMP threads compute, only the main thread talks to MPI.
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  std::atexit(finalize_at_exit);
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("MPI %s failed: %.*s", what, len, msg);
}

// Bucket of 4 Mi elements (16 MiB of floats): large enough to reach link bandwidth, small
// enough that several buckets are in flight at once (non-blocking reductions, one wait).
constexpr size_t kBucket = size_t(1) << 22;

template <typename T>
void allreduce(T* x, size_t n, MPI_Datatype type, MPI_Op op) {
  ensure_init();
  if (n == 0) return;
  std::vector<MPI_Request> req;
  for (size_t off = 0; off < n; off += kBucket) {
    req.emplace_back();
    check(MPI_Iallreduce(MPI_IN_PLACE, x + off, int(std::min(kBucket, n - off)), type, op, MPI_COMM_WORLD,
                         &req.back()),
          "allreduce");
  }
  check(MPI_Waitall(int(req.size()), req.data(), MPI_STATUSES_IGNORE), "allreduce wait");
}

}  // namespace

bool dist_is_mpi() { return true; }

int dist_rank() {
  ensure_init();
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int dist_size() {
  ensure_init();
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

void dist_barrier() {
  ensure_init();
  check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

void dist_allreduce_sum(float* x, size_t n) { allreduce(x, n, MPI_FLOAT, MPI_SUM); }
void dist_allreduce_sum(double* x, size_t n) { allreduce(x, n, MPI_DOUBLE, MPI_SUM); }
void dist_allreduce_max(double* x, size_t n) { allreduce(x, n, MPI_DOUBLE, MPI_MAX); }

void dist_broadcast(void* data, size_t bytes, int root) {
  ensure_init();
  char* p = static_cast<char*>(data);
  for (size_t off = 0; off < bytes; off += kBucket)
    check(MPI_Bcast(p + off, int(std::min(kBucket, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
}

void dist_abort(int code) {
  int ok = 0, done = 0;
  MPI_Initialized(&ok);
  MPI_Finalized(&done);
  int size = 1;
  if (ok && !done) MPI_Comm_size(MPI_COMM_WORLD, &size);
  // One rank failing while the others wait in a collective would hang the job.
  if (ok && !done && size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace razor
#endif
