#include "server/io/tls/tls_key_fd.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "common/non_copyable.h"
#include "server/io/tls/tls_context.h"

namespace ringcache::server {
namespace {

// Zeroes the key's bytes on every path out, then frees them.
class CleansedBuffer : NonCopyable {
 public:
  explicit CleansedBuffer(std::size_t size) : bytes_(size) {}
  ~CleansedBuffer() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }
  char* data() { return bytes_.data(); }

 private:
  std::vector<char> bytes_;
};

std::string fd_error(int fd, const std::string& what) { return "--tls-key-fd " + std::to_string(fd) + ": " + what; }

}  // namespace

bool use_private_key_fd(SSL_CTX* ctx, int fd, std::string& error) {
  struct stat info{};
  if (::fstat(fd, &info) != 0) {
    error = fd_error(fd, errno == EBADF ? "not an open file descriptor" : std::string("fstat: ") + std::strerror(errno));
    return false;
  }
  if (!S_ISREG(info.st_mode)) {
    error = fd_error(fd, "not a regular file (the PEM private key must be one)");
    return false;
  }
  if (info.st_size <= 0 || static_cast<std::size_t>(info.st_size) > tls_key_bytes_max) {
    error = fd_error(fd, "file size " + std::to_string(info.st_size) + " bytes is not that of a PEM key (1-" +
                             std::to_string(tls_key_bytes_max) + ")");
    return false;
  }
  // One byte more than the size: a file grown since fstat shows up as too long.
  const std::size_t capacity = static_cast<std::size_t>(info.st_size) + 1;
  CleansedBuffer buffer(capacity);
  std::size_t length = 0;
  while (length < capacity) {
    const ssize_t got = ::pread(fd, buffer.data() + length, capacity - length, static_cast<off_t>(length));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      error = fd_error(fd, std::string("read: ") + std::strerror(errno));
      return false;
    }
    if (got == 0) break;
    length += static_cast<std::size_t>(got);
    assert(length <= capacity && "pread returned more than it was asked for");
  }
  if (length == 0 || length > tls_key_bytes_max) {
    error = fd_error(fd, "the file changed size while being read");
    return false;
  }
  assert(length > 0 && length <= tls_key_bytes_max);
  ERR_clear_error();
  BIO* bio = BIO_new_mem_buf(buffer.data(), static_cast<int>(length));
  if (bio == nullptr) {
    error = fd_error(fd, take_openssl_error("out of memory"));
    return false;
  }
  // No passphrase callback: an encrypted key fails here instead of prompting.
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    error = fd_error(fd, take_openssl_error("not a PEM private key"));
    return false;
  }
  const int used = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (used != 1) {
    // OpenSSL compares the key with the certificate as it installs it.
    const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    error = fd_error(fd, (mismatch ? "the key does not belong to the certificate of --tls-cert (" : "(") +
                             take_openssl_error("OpenSSL refused the key") + ")");
    return false;
  }
  return true;
}

}  // namespace ringcache::server
