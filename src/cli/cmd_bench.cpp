// `razor bench`: dispatches to the kernel benchmarks (`bench gemm`, `bench gemv`,
// `bench qgemm`) or, with no kind, benchmarks a whole model.
#include <cstring>

#include "cli/commands.h"

namespace razor {

int cmd_bench(int argc, char** argv) {
  if (argc >= 2 && !std::strcmp(argv[1], "gemm")) return bench_gemm(argc - 1, argv + 1);
  if (argc >= 2 && (!std::strcmp(argv[1], "gemv") || !std::strcmp(argv[1], "qgemm")))
    return bench_packed(argc, argv);
  return bench_model(argc, argv);
}

}  // namespace razor
