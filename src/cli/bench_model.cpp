#include "cli/commands.h"
namespace razor {
int bench_model(int, char**) { return not_built("bench", "inference engine (issue 8)"); }
}  // namespace razor
