#include "cli/commands.h"

namespace razor {

int cmd_teacher(int, char**) { return not_built("teacher", "teacher store (issue 6)"); }

}  // namespace razor
