#include "core/log.h"

#include <atomic>
#include <cstdarg>

namespace razor {

namespace {
std::atomic<FILE*> g_sink{stderr};
}  // namespace

void set_log_sink(FILE* f) { g_sink.store(f); }
FILE* log_sink() { return g_sink.load(); }

void log_note(const char* fmt, ...) {
  FILE* f = g_sink.load();
  if (!f) return;
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(f, fmt, ap);
  va_end(ap);
  std::fflush(f);
}

}  // namespace razor
