// The library's one log sink: notes a library function prints while it works (fetching or
// tokenizing the corpus, resuming, run sizes) go to log_note, never straight to stderr. The
// CLI owns the sink (cli/main.cpp sets it); stderr until then, nullptr silences it.
// Deliberately not here: a command's results (stdout, printed by the CLI or the caller's
// FILE*), progress lines (train/metrics ProgressLine), errors (razor::Error).
#pragma once
#include <cstdio>

namespace razor {

void set_log_sink(FILE* f);
FILE* log_sink();
// printf-style line(s) to the sink (the caller ends them with '\n'); flushed.
void log_note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace razor
