#include "cli/commands.h"

namespace razor {

int cmd_train(int, char**) { return not_built("train", "distillation (issue 6)"); }

}  // namespace razor
