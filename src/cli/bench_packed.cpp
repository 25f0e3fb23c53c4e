#include "cli/commands.h"
namespace razor {
int bench_packed(int, char**) { return not_built("bench gemv", "packed kernels (issue 7)"); }
}  // namespace razor
