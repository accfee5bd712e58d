// TLS for the load generator's connections: one client context per run and a
// handshake per connection, done before the connection reaches its worker so
// that its cost stays out of the measured interval. After the handshake the
// connection reads and writes through SSL_read/SSL_write on its own
// non-blocking socket (client_connection.h); the codecs see plaintext only.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "common/non_copyable.h"

namespace ringcache::loadgen {

// Longest a handshake may take (same bound as the TCP connect), so that a
// server that accepts but never answers ends the run instead of hanging it.
inline constexpr int tls_handshake_ms_max = 5000;

struct ssl_free_deleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using ssl_handle = std::unique_ptr<SSL, ssl_free_deleter>;

class tls_client_context : NonCopyable {
 public:
  tls_client_context() = default;
  ~tls_client_context();

  // An empty `ca_file` means: do not verify the server (a benchmark against a
  // throwaway certificate). Returns false with a message in `error`.
  bool open(const std::string& ca_file, std::string& error);

  // Handshakes on connected non-blocking socket `fd` (not taken over), waiting
  // at most tls_handshake_ms_max; `host` is checked against the certificate
  // when a CA was given. Returns the session, or null with a message.
  ssl_handle connect(int fd, const std::string& host, std::string& error) const;

 private:
  SSL_CTX* context_ = nullptr;
  bool verify_ = false;
};

// OpenSSL's error queue as one line (emptied), for messages.
std::string take_tls_errors();

}  // namespace ringcache::loadgen
