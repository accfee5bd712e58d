// Formats a line for a LogSink (replication_config.h). The replication code
// does not depend on the daemon's logger; the daemon passes its own sinks.
#pragma once

#include "server/replication/replication_config.h"

namespace ringcache::replication {

inline constexpr size_t log_sink_line_bytes_max = 512;

// Does nothing when sink is nullptr.
void emit(LogSink sink, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace ringcache::replication
