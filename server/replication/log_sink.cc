#include "server/replication/log_sink.h"

#include <cstdarg>
#include <cstdio>

namespace ringcache::replication {

void emit(LogSink sink, const char* format, ...) {
  if (sink == nullptr) return;
  char line[log_sink_line_bytes_max];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  sink(line);
}

}  // namespace ringcache::replication
