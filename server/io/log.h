// Logging: one line per event on stderr (docs/command_line.md).
//
// Each line is formatted into a bounded buffer and written with a single
// write(2), so lines from different worker threads never interleave.
// Per-connection events are logged only with -v (log_debug).
#pragma once

#include <cstddef>

namespace ringcache::server {

// Longest line written; longer messages are cut (and end with "...").
inline constexpr size_t log_line_bytes_max = 1024;

void log_set_verbose(bool verbose);
bool log_verbose();

// Start-up, shutdown and fatal errors: always written.
void log_info(const char* format, ...) __attribute__((format(printf, 1, 2)));
// Per-connection events: written only with -v.
void log_debug(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace ringcache::server
