#include "server/replication/secret_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringcache::replication {
namespace {

std::string file_error(const SecretFileRules& rules, const std::string& path, const std::string& what) {
  return rules.option + " " + path + ": " + what;
}

}  // namespace

SecretFileStatus read_secret_file(const std::string& path, const SecretFileRules& rules, std::string& bytes,
                                  std::string& error) {
  bytes.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    error = file_error(rules, path, std::strerror(errno));
    return SecretFileStatus::cannot_open;
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = file_error(rules, path, "not a regular file");
    return SecretFileStatus::not_regular;
  }
  // Root's files count as our own: systemd's credentials (LoadCredential=)
  // may be root's copies that the service's user reads through an ACL.
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    error = file_error(rules, path,
                       "owned by uid " + std::to_string(st.st_uid) + ", neither root nor the user ringcached runs as "
                       "(uid " + std::to_string(::geteuid()) + "); chown it to that user");
    return SecretFileStatus::wrong_owner;
  }
  if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
    error = file_error(rules, path, "readable or writable by others; chmod 600 it" + rules.exposed_hint);
    return SecretFileStatus::readable_by_others;
  }
  if (st.st_size < static_cast<off_t>(rules.bytes_min)) {
    error = file_error(rules, path, "holds " + std::to_string(st.st_size) + " bytes; " + rules.too_short);
    return SecretFileStatus::too_short;
  }
  if (st.st_size > static_cast<off_t>(rules.bytes_max)) {
    error = file_error(rules, path, "is larger than " + std::to_string(rules.bytes_max) + " bytes");
    return SecretFileStatus::too_long;
  }
  bytes.assign(static_cast<size_t>(st.st_size), '\0');
  size_t have = 0;
  while (have < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + have, bytes.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += static_cast<size_t>(n);
  }
  if (have != bytes.size()) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    bytes.clear();
    error = file_error(rules, path, "could not be read whole");
    return SecretFileStatus::read_failed;
  }
  return SecretFileStatus::ok;
}

}  // namespace ringcache::replication
