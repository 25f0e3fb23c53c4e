#include "cli/commands.h"

namespace razor {

int cmd_export(int, char**) { return not_built("export", "GGUF export (issue 9)"); }

}  // namespace razor
