#include "cli/commands.h"

namespace razor {

int cmd_quantize(int, char**) { return not_built("quantize", "quantizers (issue 5)"); }

}  // namespace razor
