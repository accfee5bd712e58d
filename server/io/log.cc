#include "server/io/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace ringcache::server {
namespace {

std::atomic<bool> verbose_enabled{false};

constexpr char log_prefix[] = "ringcached: ";

void write_line(const char* format, va_list args) {
  char line[log_line_bytes_max];
  constexpr size_t prefix_bytes = sizeof(log_prefix) - 1;
  std::memcpy(line, log_prefix, prefix_bytes);
  // Room is kept for the newline that ends every line.
  const size_t body_room = sizeof(line) - prefix_bytes - 1;
  const int written = std::vsnprintf(line + prefix_bytes, body_room, format, args);
  size_t length = prefix_bytes;
  if (written > 0) {
    if (static_cast<size_t>(written) < body_room) {
      length += static_cast<size_t>(written);
    } else {
      length += body_room - 1;  // vsnprintf kept one byte for its NUL
      std::memcpy(line + length - 3, "...", 3);
    }
  }
  line[length++] = '\n';
  const int saved_errno = errno;  // callers often log right before reading errno
  size_t done = 0;
  while (done < length) {
    const ssize_t n = ::write(STDERR_FILENO, line + done, length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // stderr closed or full: nowhere left to report it
    done += static_cast<size_t>(n);
  }
  errno = saved_errno;
}

}  // namespace

void log_set_verbose(bool verbose) { verbose_enabled.store(verbose, std::memory_order_relaxed); }

bool log_verbose() { return verbose_enabled.load(std::memory_order_relaxed); }

void log_info(const char* format, ...) {
  va_list args;
  va_start(args, format);
  write_line(format, args);
  va_end(args);
}

void log_debug(const char* format, ...) {
  if (!log_verbose()) return;
  va_list args;
  va_start(args, format);
  write_line(format, args);
  va_end(args);
}

}  // namespace ringcache::server
