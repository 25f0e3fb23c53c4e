#include "cli/commands.h"

namespace razor {

int cmd_plan(int, char**) { return not_built("plan", "bit budgets (issue 11)"); }

}  // namespace razor
