#include "cli/commands.h"

namespace razor {

int cmd_eval(int, char**) { return not_built("eval", "model (issue 4)"); }

}  // namespace razor
