// io/tls: the context's start-up checks and the channel on memory only,
// against an OpenSSL client on memory BIOs in the same test: the handshake
// in steps, plaintext both ways, replies encrypted in bounded rounds (a
// pinned value is never taken whole), a plaintext first byte, the
// pre-handshake cap, an altered record. Keys and certificates are made
// in-process into a temporary directory.
#include <doctest/doctest.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "server/io/output_queue.h"
#include "server/io/tls/tls_channel.h"
#include "server/io/tls/tls_context.h"

using namespace ringcache::server;

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};

// A self-signed EC certificate and its key in files of a temporary directory.
class TestFiles {
 public:
  TestFiles() {
    char pattern[] = "/tmp/ringcache-tls-unit-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    dir_ = pattern;
    write_pair("a");
    write_pair("b");
  }
  ~TestFiles() {
    for (const char* name : {"a.pem", "a.key", "b.pem", "b.key", "junk"}) ::unlink(path(name).c_str());
    ::rmdir(dir_.c_str());
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  void write_pair(const std::string& name) {
    std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
    REQUIRE(key);
    std::unique_ptr<X509, X509Free> cert(X509_new());
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* subject = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1,
                               -1, 0);
    X509_set_issuer_name(cert.get(), subject);
    REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
    std::FILE* f = std::fopen(path(name + ".pem").c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_X509(f, cert.get());
    std::fclose(f);
    f = std::fopen(path(name + ".key").c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
  }

  std::string dir_;
};

class BytesPin final : public PinnedValue {
 public:
  explicit BytesPin(std::string bytes) : bytes_(std::move(bytes)) {}
  uint64_t size() const override { return bytes_.size(); }
  std::string_view chunk(uint64_t offset) const override { return std::string_view(bytes_).substr(offset); }

 private:
  std::string bytes_;
};

// An OpenSSL client on memory BIOs, and the wire between it and a channel.
class Pair {
 public:
  explicit Pair(const TlsContext& context) : channel(context.new_ssl()) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    REQUIRE(ctx_ != nullptr);
    client_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(client_, in_, out_);
    SSL_set_connect_state(client_);
  }
  ~Pair() {
    SSL_free(client_);
    SSL_CTX_free(ctx_);
  }

  // Client bytes to the channel, and the channel's plaintext into `received`.
  void to_server() {
    std::string wire = take(out_);
    channel.push(wire);
    char buf[tls_record_plain_bytes_max];
    while (true) {
      const TlsRead read = channel.read(buf, sizeof(buf));
      if (read.handshake_finished) handshakes++;
      if (read.bytes == 0) break;
      received.append(buf, read.bytes);
    }
  }
  // The channel's ciphertext to the client, in sends of `chunk` bytes.
  size_t to_client(size_t chunk = 1 << 20) {
    size_t total = 0;
    while (true) {
      const std::string_view c = channel.ciphertext();
      if (c.empty()) return total;
      const size_t n = std::min(c.size(), chunk);
      BIO_write(in_, c.data(), static_cast<int>(n));
      channel.sent(n);
      total += n;
    }
  }
  void handshake() {
    for (int i = 0; i < 4 && !SSL_is_init_finished(client_); ++i) {
      SSL_do_handshake(client_);
      to_server();
      to_client();
    }
    SSL_do_handshake(client_);
    REQUIRE(SSL_is_init_finished(client_));
    REQUIRE(channel.state() == TlsState::open);
  }
  void client_write(std::string_view text) {
    REQUIRE(SSL_write(client_, text.data(), static_cast<int>(text.size())) == static_cast<int>(text.size()));
  }
  std::string client_read() {
    std::string got;
    char buf[16384];
    int n = 0;
    while ((n = SSL_read(client_, buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
    ERR_clear_error();
    return got;
  }
  std::string client_wire() { return take(out_); }

  TlsChannel channel;
  std::string received;
  int handshakes = 0;

 private:
  static std::string take(BIO* bio) {
    std::string bytes(BIO_ctrl_pending(bio), '\0');
    if (!bytes.empty()) BIO_read(bio, bytes.data(), static_cast<int>(bytes.size()));
    return bytes;
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* client_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

TlsSettings settings(std::string cert, std::string key, std::string ca = "", bool verify_clients = false) {
  TlsSettings s;
  s.cert_file = std::move(cert);
  s.key_file = std::move(key);
  s.ca_file = std::move(ca);
  s.verify_clients = verify_clients;
  return s;
}

std::unique_ptr<TlsContext> context(const TestFiles& files) {
  std::string error;
  auto ctx = TlsContext::create(settings(files.path("a.pem"), files.path("a.key")), error);
  REQUIRE_MESSAGE(ctx, error);
  return ctx;
}

}  // namespace

TEST_CASE("TlsContext: start-up errors name the option and the file") {
  const TestFiles files;
  std::string error;
  CHECK_FALSE(TlsContext::create(settings(files.path("a.pem"), files.path("missing")), error));
  CHECK(error == "--tls-key " + files.path("missing") + ": No such file or directory");
  CHECK_FALSE(TlsContext::create(settings(files.path("a.pem"), files.path("b.key")), error));
  CHECK(error.find("does not belong to the certificate of --tls-cert") != std::string::npos);
  CHECK_FALSE(TlsContext::create(settings(files.path("a.key"), files.path("a.key")), error));
  CHECK(error.rfind("--tls-cert " + files.path("a.key") + ": ", 0) == 0);
  CHECK_FALSE(TlsContext::create(settings(files.path("a.pem"), files.path("a.key"), files.path("a.key")), error));
  CHECK(error.rfind("--tls-ca " + files.path("a.key") + ": ", 0) == 0);
  CHECK_FALSE(TlsContext::create(settings(files.path("a.pem"), files.path("a.key"), "", true), error));
  CHECK(error.find("--tls-verify-clients needs --tls-ca") != std::string::npos);
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("TlsChannel: handshake, requests in, replies out in bounded rounds") {
  const TestFiles files;
  const auto ctx = context(files);
  Pair pair(*ctx);
  CHECK(pair.channel.handshaking());
  CHECK_FALSE(pair.channel.wants_plaintext());
  pair.handshake();
  CHECK(pair.handshakes == 1);
  CHECK(pair.channel.established());
  CHECK(pair.channel.version() == TLS1_3_VERSION);

  pair.client_write("get k\r\n");
  pair.to_server();
  CHECK(pair.received == "get k\r\n");

  // A reply with a pinned value four rounds long.
  const std::string value(4 * tls_encrypt_bytes_max + 123, 'v');
  OutputQueue out;
  out.append("VALUE k 0 262267\r\n");
  out.append_pinned(std::make_unique<BytesPin>(value));
  out.append("\r\nEND\r\n");
  const uint64_t total = out.pending_bytes();
  std::string reply;
  int rounds = 0;
  while (!out.empty()) {
    REQUIRE(pair.channel.wants_plaintext());
    const uint64_t before = out.pending_bytes();
    REQUIRE(pair.channel.encrypt(out));
    CHECK(before - out.pending_bytes() <= tls_encrypt_bytes_max);
    CHECK(before - out.pending_bytes() > 0);
    ++rounds;
    // Until its ciphertext is handed over, no new round starts.
    CHECK(pair.channel.has_output());
    (void)pair.channel.ciphertext();
    CHECK_FALSE(pair.channel.wants_plaintext());
    pair.to_client(1000);  // short sends
    reply += pair.client_read();
  }
  CHECK(rounds == 5);
  CHECK(out.pins() == 0);
  CHECK(reply.size() == total);
  CHECK(reply == "VALUE k 0 262267\r\n" + value + "\r\nEND\r\n");
  CHECK_FALSE(pair.channel.has_output());

  CHECK(pair.channel.close_notify());
  CHECK_FALSE(pair.channel.close_notify());
  CHECK(pair.to_client() > 0);
}

TEST_CASE("TlsChannel: a plaintext first byte fails it with nothing to send") {
  const TestFiles files;
  const auto ctx = context(files);
  TlsChannel channel(ctx->new_ssl());
  channel.push("get k\r\n");
  CHECK(channel.state() == TlsState::not_tls);
  char buf[64];
  CHECK(channel.read(buf, sizeof(buf)).bytes == 0);
  CHECK_FALSE(channel.has_output());
}

TEST_CASE("TlsChannel: at most tls_handshake_bytes_max before the handshake completes") {
  const TestFiles files;
  const auto ctx = context(files);
  TlsChannel channel(ctx->new_ssl());
  // A ClientHello that claims 100000 bytes, in records of 16 KiB.
  const std::string record("\x16\x03\x01\x40\x00", 5);
  std::string body(16384, '\0');
  body[0] = 1;
  body[1] = static_cast<char>(100000 >> 16);
  body[2] = static_cast<char>((100000 >> 8) & 0xff);
  body[3] = static_cast<char>(100000 & 0xff);
  char buf[64];
  size_t pushed = 0;
  for (int i = 0; i < 5 && channel.state() == TlsState::handshaking; ++i) {
    channel.push(record + body);
    pushed += record.size() + body.size();
    (void)channel.read(buf, sizeof(buf));
    std::fill(body.begin(), body.end(), '\0');
  }
  CHECK(channel.state() == TlsState::failed);
  CHECK(pushed > tls_handshake_bytes_max);
  CHECK(pushed <= tls_handshake_bytes_max + record.size() + body.size());
  CHECK(channel.error().find("tls_handshake_bytes_max") != std::string::npos);
}

TEST_CASE("TlsChannel: an altered record fails it and queues an alert") {
  const TestFiles files;
  const auto ctx = context(files);
  Pair pair(*ctx);
  pair.handshake();
  pair.client_write("set k 0 0 1\r\nv\r\n");
  std::string wire = pair.client_wire();
  wire[wire.size() - 3] ^= 0x55;
  pair.channel.push(wire);
  char buf[64];
  CHECK(pair.channel.read(buf, sizeof(buf)).bytes == 0);
  CHECK(pair.channel.state() == TlsState::failed);
  CHECK_FALSE(pair.channel.wants_plaintext());
  CHECK(pair.channel.has_output());  // the bad_record_mac alert
  CHECK(ERR_peek_error() == 0);
}
