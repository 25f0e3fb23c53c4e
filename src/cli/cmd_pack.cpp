#include "cli/commands.h"

namespace razor {

int cmd_pack(int, char**) { return not_built("pack", "packed format (issue 7)"); }

}  // namespace razor
