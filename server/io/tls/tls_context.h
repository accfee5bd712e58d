// TlsContext: the daemon's TLS server settings (--tls-cert, --tls-key,
// --tls-ca, --tls-verify-clients; docs/command_line.md), one OpenSSL
// SSL_CTX shared by every worker. Each connection gets its own SSL from it
// (tls_channel.h); OpenSSL never sees a socket.
//
// The settings follow memcached's defaults: TLS 1.2 at least (1.3 is
// negotiated whenever the client offers it), OpenSSL's default ciphers, no
// server-side session cache, no renegotiation. With --tls-verify-clients a
// client must present a certificate that chains to --tls-ca, or the
// handshake fails.
//
// reload() (SIGHUP, main.cc) builds a new SSL_CTX from the same files and swaps it
// in: connections open keep the context they started with (an SSL holds a
// reference to its SSL_CTX), the next one gets the new certificate. The
// mutex guards only that pointer swap and SSL_new(); files are read outside it.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>

namespace ringcache::server {

struct TlsSettings {
  std::string cert_file;  // PEM, the server's certificate chain (leaf first)
  std::string key_file;   // PEM, its private key
  int key_fd = -1;        // >= 0: the key is read from this descriptor instead (tls_key_fd.h)
  std::string ca_file;    // PEM trust anchors; empty: none
  bool verify_clients = false;  // require a client certificate signed by ca_file
};

class TlsContext {
 public:
  // The context, or nullptr and `error` saying which file is wrong and why.
  static std::unique_ptr<TlsContext> create(const TlsSettings& settings, std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A server-side SSL of the current context, or nullptr (out of memory).
  SSL* new_ssl() const;
  // Reads the files again; on success the next connections use them. On
  // failure (error set) the current context stays.
  bool reload(std::string& error);

  const TlsSettings& settings() const { return settings_; }
  // One line for the log: the certificate's subject and expiry.
  std::string describe() const;

 private:
  TlsContext(TlsSettings settings, SSL_CTX* ctx) : settings_(std::move(settings)), ctx_(ctx) {}

  const TlsSettings settings_;
  mutable std::mutex mutex_;
  SSL_CTX* ctx_;
};

// The last OpenSSL error of this thread as text (and the queue cleared), or
// `fallback` when there is none.
std::string take_openssl_error(const char* fallback);

}  // namespace ringcache::server
