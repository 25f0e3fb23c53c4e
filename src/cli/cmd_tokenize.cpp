#include "cli/commands.h"

namespace razor {

int cmd_tokenize(int, char**) { return not_built("tokenize", "tokenizer (issue 3)"); }

}  // namespace razor
