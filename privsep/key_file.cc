#include "privsep/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>

#include "privsep/status_text.h"

namespace ringcache::privsep {
namespace {

// One text per key_file_status, in the enum's order (key_file.h).
constexpr const char* key_file_status_texts[] = {
    "ok",
    "cannot open it",
    "not a regular file",
    "the file is empty",
    "the file is larger than a PEM private key can be (64 KiB)",
    "fstat failed",
};

key_file_result failure(key_file_status status, int fd, int error_number = 0) {
  if (fd >= 0) close(fd);
  return key_file_result{status, -1, error_number};
}

}  // namespace

const char* describe(key_file_status status) {
  return status_text<key_file_status::system_error>(key_file_status_texts, status, "unknown key_file_status");
}

key_file_result open_key_file(const std::string& path) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return failure(key_file_status::open_failed, -1, errno);
  struct stat info{};
  if (fstat(fd, &info) != 0) return failure(key_file_status::system_error, fd, errno);
  if (!S_ISREG(info.st_mode)) return failure(key_file_status::not_regular_file, fd);
  if (info.st_size == 0) return failure(key_file_status::empty, fd);
  if (static_cast<std::size_t>(info.st_size) > key_file_bytes_max) return failure(key_file_status::too_large, fd);
  assert(fd >= 0 && S_ISREG(info.st_mode));
  return key_file_result{key_file_status::ok, fd, 0};
}

}  // namespace ringcache::privsep
