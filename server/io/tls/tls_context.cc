#include "server/io/tls/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "server/io/tls/tls_channel.h"
#include "server/io/tls/tls_key_fd.h"

namespace ringcache::server {
namespace {

// A readable regular file, or false and why (OpenSSL's own messages for a
// missing file are less plain than strerror's).
bool check_readable(const std::string& path, const char* option, std::string& error) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    error = std::string(option) + " " + path + ": " + std::strerror(errno);
    return false;
  }
  std::fclose(file);
  return true;
}

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

// A context of `method` with the settings both sides share: the version
// floor, no renegotiation, and the certificate and key of `settings`
// (which the server presents, and a replication link as its client
// certificate), trusting --tls-ca if given. nullptr and error otherwise.
CtxPtr build_common(const SSL_METHOD* method, const TlsSettings& settings, std::string& error) {
  CtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) {
    error = "TLS: " + take_openssl_error("cannot create an OpenSSL context");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Renegotiation only lets the other side make us do handshakes again.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // An idle connection gives its record buffers back.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), settings.cert_file.c_str()) != 1) {
    error = "--tls-cert " + settings.cert_file + ": " + take_openssl_error("not a PEM certificate");
    return nullptr;
  }
  if (settings.key_fd >= 0) {
    if (!use_private_key_fd(ctx.get(), settings.key_fd, error)) return nullptr;
  } else if (SSL_CTX_use_PrivateKey_file(ctx.get(), settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL compares the key with the certificate as it loads it.
    if (ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
      error = "--tls-key " + settings.key_file + ": " + take_openssl_error("not a PEM private key");
      return nullptr;
    }
  }
  if (ERR_peek_last_error() != 0 || SSL_CTX_check_private_key(ctx.get()) != 1) {
    error = "--tls-key " + settings.key_file + " does not belong to the certificate of --tls-cert " +
            settings.cert_file + " (" + take_openssl_error("key mismatch") + ")";
    return nullptr;
  }
  if (!settings.ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), settings.ca_file.c_str(), nullptr) != 1) {
    error = "--tls-ca " + settings.ca_file + ": " + take_openssl_error("no PEM certificate in it");
    return nullptr;
  }
  return ctx;
}

// The server context from the files of `settings`, or nullptr and error.
CtxPtr build(const TlsSettings& settings, std::string& error) {
  ERR_clear_error();
  if (!check_readable(settings.cert_file, "--tls-cert", error) ||
      (settings.key_fd < 0 && !check_readable(settings.key_file, "--tls-key", error)) ||
      (!settings.ca_file.empty() && !check_readable(settings.ca_file, "--tls-ca", error))) {
    return nullptr;
  }
  CtxPtr ctx = build_common(TLS_server_method(), settings, error);
  if (!ctx) return nullptr;
  // As memcached by default: no session cache shared between the workers.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  // At least one TLS 1.3 ticket (OpenSSL's default is two): a replication
  // link takes it as the sign its certificate was accepted (tls_channel.h).
  if (SSL_CTX_get_num_tickets(ctx.get()) == 0) SSL_CTX_set_num_tickets(ctx.get(), 1);
  if (!settings.ca_file.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.ca_file.c_str());
    if (names == nullptr) {
      error = "--tls-ca " + settings.ca_file + ": " + take_openssl_error("no CA names in it");
      return nullptr;
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);
    // Asked of every client, required only with --tls-verify-clients; one
    // presented that does not verify fails the handshake either way.
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | (settings.verify_clients ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       nullptr);
  }
  ERR_clear_error();
  return ctx;
}

// The replication links' client context, or nullptr and error (after
// build() checked the files).
CtxPtr build_client(const TlsSettings& settings, std::string& error) {
  assert(settings.peer_links && !settings.ca_file.empty());
  CtxPtr ctx = build_common(TLS_client_method(), settings, error);
  if (!ctx) return nullptr;
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  // Sessions are never resumed; the callback only notes that a TLS 1.3
  // ticket arrived (TlsChannel::peer_accepted), and is called only with a
  // client cache mode on.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx.get(), &tls_client_session_ticket);
  ERR_clear_error();
  return ctx;
}

// Both contexts of `settings` (the client one only with peer_links).
bool build_all(const TlsSettings& settings, CtxPtr& server, CtxPtr& client, std::string& error) {
  server = build(settings, error);
  if (!server) return false;
  if (settings.peer_links) {
    client = build_client(settings, error);
    if (!client) return false;
  }
  return true;
}

}  // namespace

std::string take_openssl_error(const char* fallback) {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

std::string tls_failure_reason(const SSL* ssl, const char* fallback) {
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    ERR_clear_error();
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  return take_openssl_error(fallback);
}

const char* tls_settings_problem(const TlsSettings& settings) {
  if (settings.verify_clients && settings.ca_file.empty()) {
    return "--tls-verify-clients needs --tls-ca (the CA that signs client certificates)";
  }
  if (settings.peer_links && settings.ca_file.empty()) {
    return "TLS with --peer needs --tls-ca (the CA that signs the certificates of the mesh's nodes): "
           "replication links verify each other's certificates";
  }
  return nullptr;
}

std::unique_ptr<TlsContext> TlsContext::create(const TlsSettings& settings, std::string& error) {
  if (const char* problem = tls_settings_problem(settings); problem != nullptr) {
    error = problem;
    return nullptr;
  }
  CtxPtr ctx;
  CtxPtr client;
  if (!build_all(settings, ctx, client, error)) return nullptr;
  return std::unique_ptr<TlsContext>(new TlsContext(settings, ctx.release(), client.release()));
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
  SSL_CTX_free(client_ctx_);
}

SSL* TlsContext::new_ssl() const {
  const std::lock_guard lock(mutex_);
  return SSL_new(ctx_);
}

SSL* TlsContext::new_client_ssl(const std::string& host) const {
  SSL* ssl = nullptr;
  {
    const std::lock_guard lock(mutex_);
    if (client_ctx_ == nullptr) return nullptr;
    ssl = SSL_new(client_ctx_);
  }
  if (ssl == nullptr) return nullptr;
  // SNI carries host names only (RFC 6066 §3), never an address literal.
  in6_addr address{};
  const bool literal = ::inet_pton(AF_INET, host.c_str(), &address) == 1 ||
                       ::inet_pton(AF_INET6, host.c_str(), &address) == 1;
  if (!literal && !host.empty() && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
    SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  return ssl;
}

bool TlsContext::reload(std::string& error) {
  CtxPtr fresh;
  CtxPtr fresh_client;
  if (!build_all(settings_, fresh, fresh_client, error)) return false;
  SSL_CTX* old = nullptr;
  SSL_CTX* old_client = nullptr;
  {
    const std::lock_guard lock(mutex_);
    old = ctx_;
    ctx_ = fresh.release();
    old_client = client_ctx_;
    client_ctx_ = fresh_client.release();
  }
  // Connections and links still using them hold their own reference.
  SSL_CTX_free(old);
  SSL_CTX_free(old_client);
  return true;
}

std::string TlsContext::describe() const {
  const std::lock_guard lock(mutex_);
  X509* cert = SSL_CTX_get0_certificate(ctx_);
  if (cert == nullptr) return "no certificate";
  char subject[256] = "?";
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
  std::string text = std::string("certificate ") + subject;
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio != nullptr && ASN1_TIME_print(bio, not_after) == 1) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    text += ", valid until " + std::string(data, static_cast<size_t>(size));
  }
  BIO_free(bio);
  if (X509_cmp_current_time(not_after) < 0) text += " (EXPIRED: clients will refuse it)";
  ERR_clear_error();
  return text;
}

}  // namespace ringcache::server
