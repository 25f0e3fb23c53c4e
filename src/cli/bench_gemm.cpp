#include "cli/commands.h"
namespace razor {
int bench_gemm(int, char**) { return not_built("bench gemm", "fp32 GEMM (issue 2)"); }
}  // namespace razor
