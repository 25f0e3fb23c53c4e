#include "cli/commands.h"

namespace razor {

int cmd_score(int, char**) { return not_built("score", "model (issue 4)"); }

}  // namespace razor
