#include "tls_client.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <arpa/inet.h>

#include <cassert>
#include <cerrno>
#include <cstring>

#include "monotonic_clock.h"

namespace ringcache::loadgen {

std::string take_tls_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown TLS error" : text;
}

tls_client_context::~tls_client_context() { SSL_CTX_free(context_); }

bool tls_client_context::open(const std::string& ca_file, std::string& error) {
  assert(context_ == nullptr);
  context_ = SSL_CTX_new(TLS_client_method());
  if (context_ == nullptr) {
    error = "cannot create a TLS context: " + take_tls_errors();
    return false;
  }
  SSL_CTX_set_min_proto_version(context_, TLS1_2_VERSION);
  // A partial SSL_write reports what left, like a short sendmsg(), and a retry
  // may pass the send queue's next bytes from wherever they now live.
  SSL_CTX_set_mode(context_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A server that closes without close_notify is reported as a closed
  // connection, as it is in plaintext.
  SSL_CTX_set_options(context_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(context_, ca_file.c_str(), nullptr) != 1) {
      error = "cannot load the CA file " + ca_file + ": " + take_tls_errors();
      return false;
    }
    SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
    verify_ = true;
  }
  return true;
}

ssl_handle tls_client_context::connect(int fd, const std::string& host, std::string& error) const {
  assert(context_ != nullptr);
  ERR_clear_error();
  ssl_handle ssl(SSL_new(context_));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    error = "cannot create a TLS session: " + take_tls_errors();
    return nullptr;
  }
  in6_addr numeric{};
  const bool is_address = inet_pton(AF_INET, host.c_str(), &numeric) == 1 ||
                          inet_pton(AF_INET6, host.c_str(), &numeric) == 1;
  if (!is_address) SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  if (verify_) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    const int set = is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                               : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    if (set != 1) {
      error = "cannot set the name to verify: " + take_tls_errors();
      return nullptr;
    }
  }
  SSL_set_connect_state(ssl.get());
  const std::uint64_t deadline_ns =
      monotonic_ns() + static_cast<std::uint64_t>(tls_handshake_ms_max) * 1'000'000;
  for (;;) {
    const int result = SSL_do_handshake(ssl.get());
    if (result == 1) return ssl;
    const int reason = SSL_get_error(ssl.get(), result);
    short wanted = 0;
    if (reason == SSL_ERROR_WANT_READ) {
      wanted = POLLIN;
    } else if (reason == SSL_ERROR_WANT_WRITE) {
      wanted = POLLOUT;
    } else if (reason == SSL_ERROR_SYSCALL && errno != 0) {
      error = std::string("TLS handshake failed: ") + std::strerror(errno);
      return nullptr;
    } else {
      const long verdict = SSL_get_verify_result(ssl.get());
      error = "TLS handshake failed: " + take_tls_errors();
      if (verdict != X509_V_OK) {
        error += std::string(" (certificate: ") + X509_verify_cert_error_string(verdict) + ")";
      }
      return nullptr;
    }
    const std::uint64_t now = monotonic_ns();
    if (now >= deadline_ns) {
      error = "TLS handshake did not finish within " + std::to_string(tls_handshake_ms_max) + " ms";
      return nullptr;
    }
    pollfd waiting{fd, wanted, 0};
    const int timeout_ms = static_cast<int>((deadline_ns - now + 999'999) / 1'000'000);
    if (poll(&waiting, 1, timeout_ms) < 0 && errno != EINTR) {
      error = std::string("poll failed during the TLS handshake: ") + std::strerror(errno);
      return nullptr;
    }
  }
}

}  // namespace ringcache::loadgen
