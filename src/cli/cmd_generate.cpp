#include "cli/commands.h"

namespace razor {

int cmd_generate(int, char**) { return not_built("generate", "inference engine (issue 8)"); }

}  // namespace razor
