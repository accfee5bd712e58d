#include "server/io/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

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

// A context from the files of `settings`, or nullptr and error.
CtxPtr build(const TlsSettings& settings, std::string& error) {
  ERR_clear_error();
  if (!check_readable(settings.cert_file, "--tls-cert", error) ||
      (settings.key_fd < 0 && !check_readable(settings.key_file, "--tls-key", error)) ||
      (!settings.ca_file.empty() && !check_readable(settings.ca_file, "--tls-ca", error))) {
    return nullptr;
  }
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    error = "TLS: " + take_openssl_error("cannot create an OpenSSL context");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Renegotiation only lets a client make the server do handshakes again.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // An idle connection gives its record buffers back.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  // As memcached by default: no session cache shared between the workers.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
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
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), settings.ca_file.c_str(), nullptr) != 1) {
      error = "--tls-ca " + settings.ca_file + ": " + take_openssl_error("no PEM certificate in it");
      return nullptr;
    }
    if (settings.verify_clients) {
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.ca_file.c_str());
      if (names == nullptr) {
        error = "--tls-ca " + settings.ca_file + ": " + take_openssl_error("no CA names in it");
        return nullptr;
      }
      SSL_CTX_set_client_CA_list(ctx.get(), names);
    }
  }
  if (settings.verify_clients) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  ERR_clear_error();
  return ctx;
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

std::unique_ptr<TlsContext> TlsContext::create(const TlsSettings& settings, std::string& error) {
  if (settings.verify_clients && settings.ca_file.empty()) {
    error = "--tls-verify-clients needs --tls-ca (the CA that signs client certificates)";
    return nullptr;
  }
  CtxPtr ctx = build(settings, error);
  if (!ctx) return nullptr;
  return std::unique_ptr<TlsContext>(new TlsContext(settings, ctx.release()));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

SSL* TlsContext::new_ssl() const {
  const std::lock_guard lock(mutex_);
  return SSL_new(ctx_);
}

bool TlsContext::reload(std::string& error) {
  CtxPtr fresh = build(settings_, error);
  if (!fresh) return false;
  SSL_CTX* old = nullptr;
  {
    const std::lock_guard lock(mutex_);
    old = ctx_;
    ctx_ = fresh.release();
  }
  // Connections still using it hold their own reference.
  SSL_CTX_free(old);
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
