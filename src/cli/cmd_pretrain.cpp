#include "cli/commands.h"

namespace razor {

int cmd_pretrain(int, char**) { return not_built("pretrain", "model and training loop (issue 4)"); }

}  // namespace razor
