// TlsContext: the daemon's TLS settings (--tls-cert, --tls-key, --tls-ca,
// --tls-verify-clients; docs/command_line.md), one OpenSSL SSL_CTX shared
// by every worker and, on a replicating node, a second one for the
// replication thread's outgoing links (replication/peer_link.h). Each
// connection gets its own SSL from them (tls_channel.h); OpenSSL never
// sees a socket.
//
// The settings follow memcached's defaults: TLS 1.2 at least (1.3 is
// negotiated whenever the client offers it), OpenSSL's default ciphers, no
// server-side session cache, no renegotiation. With --tls-ca the server
// asks every client for a certificate: one that does not chain to --tls-ca
// fails the handshake, none at all is accepted unless --tls-verify-clients
// (replication then refuses the connection's hello: incoming_stream.h).
//
// The client context (peer_links) presents the same certificate and key
// and verifies the peer's chain against --tls-ca; the peer's host name is
// sent as SNI but not checked against the certificate: every certificate
// --tls-ca signed is a member of the mesh (docs/replication.md, "TLS").
//
// reload() (SIGHUP, main.cc) builds new SSL_CTXs from the same files and
// swaps them in: connections and links open keep the context they started
// with (an SSL holds a reference to its SSL_CTX), the next ones get the new
// certificate. The mutex guards only the pointer swap and SSL_new(); files
// are read outside it.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>

#include "common/non_copyable.h"

namespace ringcache::server {

struct TlsSettings {
  std::string cert_file;  // PEM, the server's certificate chain (leaf first)
  std::string key_file;   // PEM, its private key
  int key_fd = -1;        // >= 0: the key is read from this descriptor instead (tls_key_fd.h)
  std::string ca_file;    // PEM trust anchors; empty: none
  bool verify_clients = false;  // require a client certificate signed by ca_file
  bool peer_links = false;      // also a client context for replication links (needs ca_file)
};

// What these settings lack before any file is read (a --tls-ca that
// verify_clients or peer_links needs), as a sentence for the operator, or
// nullptr. The command line asks it first (server/options.cc, to exit with
// status 2); create() asks again for its other callers.
const char* tls_settings_problem(const TlsSettings& settings);

class TlsContext : NonCopyable {
 public:
  // The context, or nullptr and `error` saying which file is wrong and why.
  static std::unique_ptr<TlsContext> create(const TlsSettings& settings, std::string& error);
  ~TlsContext();

  // A server-side SSL of the current context, or nullptr (out of memory).
  SSL* new_ssl() const;
  // A client-side SSL for a replication link to `host` (its SNI), or
  // nullptr (out of memory, or no peer_links). Free it with SSL_free, or
  // hand it to a TlsChannel.
  SSL* new_client_ssl(const std::string& host) const;
  // Reads the files again; on success the next connections use them. On
  // failure (error set) the current context stays.
  bool reload(std::string& error);

  const TlsSettings& settings() const { return settings_; }
  // One line for the log: the certificate's subject and expiry.
  std::string describe() const;

 private:
  TlsContext(TlsSettings settings, SSL_CTX* ctx, SSL_CTX* client_ctx)
      : settings_(std::move(settings)), ctx_(ctx), client_ctx_(client_ctx) {}

  const TlsSettings settings_;
  mutable std::mutex mutex_;
  SSL_CTX* ctx_;
  SSL_CTX* client_ctx_;  // nullptr without peer_links
};

// The last OpenSSL error of this thread as text (and the queue cleared), or
// `fallback` when there is none.
std::string take_openssl_error(const char* fallback);

// Why the peer's certificate of a handshake that failed did not verify
// ("certificate verify failed: unable to get local issuer certificate"), or
// take_openssl_error(fallback) when verification was not the cause.
std::string tls_failure_reason(const SSL* ssl, const char* fallback);

}  // namespace ringcache::server
