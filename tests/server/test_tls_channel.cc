// io/tls: the context's start-up checks and the channel on memory only,
// against an OpenSSL client on memory BIOs in the same test: the handshake
// in steps, plaintext both ways, replies encrypted in bounded rounds (a
// pinned value is never taken whole), a plaintext first byte, the
// pre-handshake cap, an altered record; and two channels against each other,
// the client role of a replication link and a server asking for its
// certificate: mutual verification, acceptance by the session ticket, and
// the refusals both ways. Keys and certificates are made in-process into a
// temporary directory (self-signed: a.pem is its own CA).
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

// Two channels, a link's client side and a server's, and the wire between them.
class Link {
 public:
  Link(const TlsContext& client_ctx, const TlsContext& server_ctx)
      : client(client_ctx.new_client_ssl("node.example"), TlsRole::client), server(server_ctx.new_ssl()) {}

  // Moves ciphertext both ways (and plaintext into the `*_got`) until nothing moves.
  void run() {
    for (int i = 0; i < 16; ++i) {
      const bool moved = step(client, server, client_got) | step(server, client, server_got);
      if (!moved) return;
    }
    FAIL("the channels never settled");
  }

  TlsChannel client;
  TlsChannel server;
  std::string client_got;
  std::string server_got;

 private:
  // Reads `from` (which may queue handshake messages), then sends its ciphertext to `to`.
  static bool step(TlsChannel& from, TlsChannel& to, std::string& from_got) {
    char buf[tls_record_plain_bytes_max];
    TlsRead read;
    while ((read = from.read(buf, sizeof(buf))).bytes > 0) from_got.append(buf, read.bytes);
    bool moved = false;
    while (true) {
      const std::string_view c = from.ciphertext();
      if (c.empty()) return moved;
      to.push(c);
      from.sent(c.size());
      moved = true;
    }
  }
};

std::unique_ptr<TlsContext> node_context(const TestFiles& files, const char* cert, const char* ca) {
  std::string error;
  TlsSettings s = settings(files.path(std::string(cert) + ".pem"), files.path(std::string(cert) + ".key"),
                           files.path(std::string(ca) + ".pem"));
  s.peer_links = true;
  auto ctx = TlsContext::create(s, error);
  REQUIRE_MESSAGE(ctx, error);
  return ctx;
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

TEST_CASE("TlsContext: replication links need --tls-ca; the client side exists only for them") {
  const TestFiles files;
  std::string error;
  TlsSettings s = settings(files.path("a.pem"), files.path("a.key"));
  s.peer_links = true;
  CHECK_FALSE(TlsContext::create(s, error));
  CHECK(error.find("TLS with --peer needs --tls-ca") != std::string::npos);
  const auto plain = context(files);
  CHECK(plain->new_client_ssl("x") == nullptr);
  const auto node = node_context(files, "a", "a");
  SSL* ssl = node->new_client_ssl("127.0.0.1");
  REQUIRE(ssl != nullptr);
  CHECK(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == nullptr);  // no SNI for an address
  SSL_free(ssl);
  ssl = node->new_client_ssl("node.example");
  REQUIRE(ssl != nullptr);
  CHECK(std::string(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) == "node.example");
  SSL_free(ssl);
  // SIGHUP: both sides rebuilt.
  REQUIRE(node->reload(error));
  ssl = node->new_client_ssl("node.example");
  CHECK(ssl != nullptr);
  SSL_free(ssl);
}

TEST_CASE("TlsChannel client role: mutual verification, accepted once the ticket arrives") {
  const TestFiles files;
  const auto node = node_context(files, "a", "a");
  Link link(*node, *node);
  CHECK(link.client.handshaking());
  link.run();
  REQUIRE(link.client.state() == TlsState::open);
  REQUIRE(link.server.state() == TlsState::open);
  CHECK(link.client.version() == TLS1_3_VERSION);
  // Each side presented its certificate and the other verified it.
  CHECK(link.client.peer_verified());
  CHECK(link.server.peer_verified());
  // The server's ticket came back: it took our certificate.
  CHECK(link.client.peer_accepted());

  // A hello-sized message, then a queue, from the client in bounded rounds.
  const std::string hello("\xc8hello");
  size_t done = 0;
  REQUIRE(link.client.wants_plaintext());
  REQUIRE(link.client.encrypt(hello, done));
  CHECK(done == hello.size());
  CHECK(link.client.has_output());
  (void)link.client.ciphertext();
  CHECK_FALSE(link.client.wants_plaintext());  // until that ciphertext is sent
  link.run();
  CHECK(link.server_got == hello);
  CHECK(link.client.wants_plaintext());
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("TlsChannel client role: refused both ways, never accepted") {
  const TestFiles files;
  // A link between two nodes after it ran: `client` presents client_cert
  // and trusts client_ca, the server likewise. (An SSL keeps its context.)
  const auto linked = [&](const char* client_cert, const char* client_ca, const char* server_cert,
                          const char* server_ca) {
    auto link = std::make_unique<Link>(*node_context(files, client_cert, client_ca),
                                       *node_context(files, server_cert, server_ca));
    link->run();
    return link;
  };
  // The client presents b (self-signed, not trusted by the server's CA a):
  // it finished its side of the TLS 1.3 handshake, then read the alert.
  const auto refused_client = linked("b", "a", "a", "a");
  CHECK(refused_client->server.state() == TlsState::failed);
  CHECK_FALSE(refused_client->server.peer_verified());
  CHECK(refused_client->server.error().find("certificate verify failed") != std::string::npos);
  CHECK_FALSE(refused_client->client.peer_accepted());
  CHECK(refused_client->client.state() == TlsState::failed);
  CHECK(refused_client->client.error().find("alert") != std::string::npos);
  // The server presents b, which the client's CA a did not sign.
  const auto refused_server = linked("a", "a", "b", "b");
  CHECK(refused_server->client.state() == TlsState::failed);
  CHECK_FALSE(refused_server->client.established());
  CHECK(refused_server->client.error().rfind("certificate verify failed: ", 0) == 0);
  CHECK(refused_server->server.state() == TlsState::failed);
}

TEST_CASE("TlsChannel client role: no first-byte check, the handshake cap still holds") {
  const TestFiles files;
  const auto node = node_context(files, "a", "a");
  TlsChannel channel(node->new_client_ssl("x"), TlsRole::client);
  char buf[64];
  CHECK(channel.read(buf, sizeof(buf)).bytes == 0);  // queues the ClientHello
  CHECK(channel.has_output());
  // Not a TLS record: OpenSSL's own error, not the server's not_tls.
  channel.push("\x6f not a server hello, far too long to be anything else");
  (void)channel.read(buf, sizeof(buf));
  CHECK(channel.state() == TlsState::failed);
  TlsChannel capped(node->new_client_ssl("x"), TlsRole::client);
  (void)capped.read(buf, sizeof(buf));
  const std::string junk(tls_handshake_bytes_max + 1, '\x16');
  capped.push(junk);
  CHECK(capped.state() == TlsState::failed);
  CHECK(capped.error().find("tls_handshake_bytes_max") != std::string::npos);
  ERR_clear_error();
}
