// The authenticated replication handshake (server/replication/handshake.h):
// golden bytes, MACs pinned against an independent HMAC-SHA256 (Python's
// hmac module computed the expected values), decoders cut at every byte,
// the secret file's checks, and an IncomingStream that authenticates.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "repl_test_util.h"
#include "server/replication/handshake.h"
#include "tests/replication/wire_harness.h"

using namespace repl_test;

namespace {

using ringcache::replication::test::hex;

template <size_t N>
std::string hex(const std::array<unsigned char, N>& bytes) {
  return hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), N));
}

template <size_t N>
std::string_view view(const std::array<unsigned char, N>& bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), N);
}

PeerSecret test_secret() {
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(i));
  return PeerSecret(bytes);
}

AuthTranscript test_transcript() {
  AuthTranscript t;
  t.initiator_id = "node-a";
  t.acceptor_id = "node-b";
  for (size_t i = 0; i < auth_nonce_bytes; ++i) {
    t.initiator_nonce[i] = static_cast<unsigned char>(0xA0 + (i % 16));
    t.acceptor_nonce[i] = static_cast<unsigned char>(7 * i);
  }
  return t;
}

// A file in a fresh temporary directory, removed with it.
struct TempFile {
  TempFile() {
    char pattern[] = "/tmp/ringcache-secret-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    dir = pattern;
    path = dir + "/secret";
  }
  ~TempFile() {
    (void)::unlink(path.c_str());
    (void)::rmdir(dir.c_str());
  }
  void write(const std::string& bytes, mode_t mode) {
    (void)::unlink(path.c_str());
    std::ofstream(path, std::ios::binary) << bytes;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
  }
  std::string dir;
  std::string path;
};

}  // namespace

TEST_CASE("HMAC-SHA256 proofs are pinned, and bound to the role, both ids and both nonces") {
  const PeerSecret secret = test_secret();
  const AuthTranscript t = test_transcript();
  CHECK(hex(auth_mac(secret, AuthRole::initiator, t)) ==
        "5d83c34676912b428b1c2357d732f39f10ceaa1ca772fe5c01af20137de7022f");
  CHECK(hex(auth_mac(secret, AuthRole::acceptor, t)) ==
        "09e1bbfd03214094c5b3dae73269f798b8005cd46e76a85259a65847d4d752e4");
  AuthTranscript other = t;
  other.initiator_id = "node-c";
  CHECK(auth_mac(secret, AuthRole::initiator, other) != auth_mac(secret, AuthRole::initiator, t));
  other = t;
  other.acceptor_nonce[31] ^= 1;
  CHECK(auth_mac(secret, AuthRole::initiator, other) != auth_mac(secret, AuthRole::initiator, t));
  // Swapping the ids is not the same transcript (lengths are part of it).
  other = t;
  std::swap(other.initiator_id, other.acceptor_id);
  CHECK(auth_mac(secret, AuthRole::acceptor, other) != auth_mac(secret, AuthRole::acceptor, t));
  const AuthMac mac = auth_mac(secret, AuthRole::initiator, t);
  CHECK(auth_mac_matches(mac, view(mac)));
  CHECK(!auth_mac_matches(mac, view(mac).substr(0, 31)));
  std::string flipped(view(mac));
  flipped[17] ^= 0x40;
  CHECK(!auth_mac_matches(mac, flipped));
}

TEST_CASE("nonces are fresh") {
  AuthNonce a{}, b{};
  REQUIRE(make_auth_nonce(a));
  REQUIRE(make_auth_nonce(b));
  CHECK(a != b);
}

TEST_CASE("golden bytes: hello v1 and v2, challenge, response") {
  std::string out;
  append_hello_v1(out, "n1");
  CHECK(hex(out) == "c8" "00000013" + hex("RINGCACHE-REPL/1 n1"));
  const AuthTranscript t = test_transcript();
  out.clear();
  append_hello_v2(out, "n1", t.initiator_nonce);
  CHECK(hex(out) == "c8" "00000054" + hex("RINGCACHE-REPL/2 n1 ") + hex(hex(t.initiator_nonce)));
  out.clear();
  const AuthMac mac = auth_mac(test_secret(), AuthRole::acceptor, t);
  append_challenge(out, "node-b", t.acceptor_nonce, mac);
  CHECK(hex(out) == "d0" "00000006" + hex("node-b") + hex(t.acceptor_nonce) + hex(mac));
  out.clear();
  append_response(out, mac);
  CHECK(hex(out) == "d1" + hex(mac));
}

TEST_CASE("parse_hello: v1 and v2 with valid ids and nonces only") {
  Hello h;
  CHECK(parse_hello("RINGCACHE-REPL/1 node-7", h) == HelloStatus::ok);
  CHECK(h.version == HelloVersion::v1);
  CHECK(h.node_id == "node-7");
  CHECK(parse_hello("RINGCACHE-REPL/1node", h) == HelloStatus::bad_prefix);
  CHECK(parse_hello("RINGCACHE-REPL/3 node", h) == HelloStatus::bad_prefix);
  CHECK(parse_hello("", h) == HelloStatus::bad_prefix);
  CHECK(parse_hello("RINGCACHE-REPL/1 ", h) == HelloStatus::bad_node_id);
  CHECK(parse_hello("RINGCACHE-REPL/1 a b", h) == HelloStatus::bad_node_id);
  CHECK(parse_hello(std::string("RINGCACHE-REPL/1 a\0b", 20), h) == HelloStatus::bad_node_id);
  CHECK(parse_hello("RINGCACHE-REPL/1 " + std::string(65, 'x'), h) == HelloStatus::bad_node_id);
  CHECK(parse_hello("RINGCACHE-REPL/1 " + std::string(64, 'x'), h) == HelloStatus::ok);
  const std::string nonce_hex(64, 'f');
  const std::string v2 = "RINGCACHE-REPL/2 n2 " + nonce_hex;  // h views into it
  CHECK(parse_hello(v2, h) == HelloStatus::ok);
  CHECK(h.version == HelloVersion::v2);
  CHECK(h.node_id == "n2");
  CHECK(h.nonce[0] == 0xff);
  CHECK(h.nonce[31] == 0xff);
  CHECK(parse_hello("RINGCACHE-REPL/2 n2", h) == HelloStatus::bad_nonce);
  CHECK(parse_hello("RINGCACHE-REPL/2 n2 " + nonce_hex.substr(1), h) == HelloStatus::bad_nonce);
  CHECK(parse_hello("RINGCACHE-REPL/2 n2 " + nonce_hex + "0", h) == HelloStatus::bad_nonce);
  CHECK(parse_hello("RINGCACHE-REPL/2 n2 " + std::string(63, '0') + "g", h) == HelloStatus::bad_nonce);
  CHECK(parse_hello("RINGCACHE-REPL/2  " + nonce_hex, h) == HelloStatus::bad_node_id);
}

TEST_CASE("handshake decoders: need_more on every prefix, the same result whole") {
  const AuthTranscript t = test_transcript();
  const AuthMac mac = auth_mac(test_secret(), AuthRole::acceptor, t);
  std::string challenge_bytes;
  append_challenge(challenge_bytes, "node-b", t.acceptor_nonce, mac);
  for (size_t cut = 0; cut < challenge_bytes.size(); ++cut) {
    Challenge c;
    size_t used = 99;
    CHECK(decode_challenge(std::string_view(challenge_bytes).substr(0, cut), c, used) == HandshakeStatus::need_more);
    CHECK(used == 0);
  }
  Challenge c;
  size_t used = 0;
  const std::string with_tail = challenge_bytes + "tail";
  CHECK(decode_challenge(with_tail, c, used) == HandshakeStatus::ok);
  CHECK(used == challenge_bytes.size());
  CHECK(c.acceptor_id == "node-b");
  CHECK(c.nonce == t.acceptor_nonce);
  CHECK(c.mac == mac);
  CHECK(decode_challenge(std::string(1, '\x6f'), c, used) == HandshakeStatus::refused);
  CHECK(decode_challenge(std::string(1, '\xc9'), c, used) == HandshakeStatus::bad);
  std::string long_id = challenge_bytes;
  long_id[4] = 65;  // id length 65
  CHECK(decode_challenge(long_id, c, used) == HandshakeStatus::bad);
  std::string empty_id = challenge_bytes;
  empty_id[4] = 0;
  CHECK(decode_challenge(empty_id, c, used) == HandshakeStatus::bad);
  std::string space_id = challenge_bytes;
  space_id[7] = ' ';
  CHECK(decode_challenge(space_id, c, used) == HandshakeStatus::bad);

  std::string response_bytes_seen;
  append_response(response_bytes_seen, mac);
  for (size_t cut = 0; cut < response_bytes_seen.size(); ++cut) {
    AuthMac m{};
    CHECK(decode_response(std::string_view(response_bytes_seen).substr(0, cut), m, used) ==
          HandshakeStatus::need_more);
  }
  AuthMac m{};
  CHECK(decode_response(response_bytes_seen, m, used) == HandshakeStatus::ok);
  CHECK(m == mac);
  CHECK(used == response_bytes);
  CHECK(decode_response(std::string(1, '\xc9'), m, used) == HandshakeStatus::bad);
  CHECK(decode_auth_ok("", used) == HandshakeStatus::need_more);
  CHECK(decode_auth_ok("\x65", used) == HandshakeStatus::ok);
  CHECK(decode_auth_ok("\x6f", used) == HandshakeStatus::refused);
  CHECK(decode_auth_ok("\xcb", used) == HandshakeStatus::bad);
}

TEST_CASE("the secret file: exact bytes, 32-4096 of them, ours or root's, not readable by others") {
  TempFile file;
  PeerSecret secret;
  std::string error;
  const std::string bytes = std::string(40, 'k') + "\n";
  file.write(bytes, 0600);
  CHECK(load_peer_secret(file.path, secret, error) == SecretFileStatus::ok);
  CHECK(secret.bytes() == bytes);
  file.write(bytes, 0640);
  CHECK(load_peer_secret(file.path, secret, error) == SecretFileStatus::ok);
  file.write(bytes, 0604);
  CHECK(load_peer_secret(file.path, secret, error) == SecretFileStatus::readable_by_others);
  CHECK(error.find("chmod 600") != std::string::npos);
  CHECK(error.find("kkkk") == std::string::npos);  // never the secret
  file.write(bytes, 0602);
  CHECK(load_peer_secret(file.path, secret, error) == SecretFileStatus::readable_by_others);
  file.write(std::string(31, 'k'), 0600);
  CHECK(load_peer_secret(file.path, secret, error) == SecretFileStatus::too_short);
  CHECK(error.find("at least 32") != std::string::npos);
  file.write(std::string(4097, 'k'), 0600);
  CHECK(load_peer_secret(file.path, secret, error) == SecretFileStatus::too_long);
  CHECK(load_peer_secret(file.dir, secret, error) == SecretFileStatus::not_regular);
  CHECK(load_peer_secret(file.dir + "/missing", secret, error) == SecretFileStatus::cannot_open);
  if (::geteuid() == 0) {
    file.write(bytes, 0600);
    REQUIRE(::chown(file.path.c_str(), 65534, 65534) == 0);
    CHECK(load_peer_secret(file.path, secret, error) == SecretFileStatus::wrong_owner);
    CHECK(error.find("uid 65534") != std::string::npos);
  }
}

namespace {

// An acceptor's stream after a v2 hello from "node-a" with a known nonce.
struct Authenticating {
  explicit Authenticating(StreamFixture& f, const PeerSecret& initiator_secret) : fixture(f) {
    f.config.secret = std::make_shared<const PeerSecret>(test_secret());
    f.config.node_id = "node-b";
    hello.version = HelloVersion::v2;
    hello.node_id = "node-a";
    hello.nonce = test_transcript().initiator_nonce;
    stream = IncomingStream::challenge(f.context(), f.thread, hello, "127.0.0.1:5000", challenge_bytes);
    Challenge c;
    size_t used = 0;
    REQUIRE(decode_challenge(challenge_bytes, c, used) == HandshakeStatus::ok);
    transcript.initiator_id = "node-a";
    transcript.acceptor_id = c.acceptor_id;
    transcript.initiator_nonce = hello.nonce;
    transcript.acceptor_nonce = c.nonce;
    acceptor_proven = auth_mac_matches(auth_mac(initiator_secret, AuthRole::acceptor, transcript), view(c.mac));
    append_response(response, auth_mac(initiator_secret, AuthRole::initiator, transcript));
  }
  StreamFixture& fixture;
  Hello hello;
  std::unique_ptr<IncomingStream> stream;
  std::string challenge_bytes;
  AuthTranscript transcript;
  bool acceptor_proven = false;
  std::string response;
};

}  // namespace

TEST_CASE("an acceptor applies nothing until the proof is right, then answers AUTH_OK and streams") {
  StreamFixture f;
  Authenticating a(f, test_secret());
  CHECK(a.acceptor_proven);
  CHECK(!a.stream->authenticated());
  CHECK(!a.stream->at_frame_boundary());
  CHECK(f.counters.streams.get() == 0);
  const std::string frames = put_frame("k", "v", make_version(1000, 5));
  std::string reply;
  size_t used = 0;
  // The proof in pieces, then frames in the same read.
  CHECK(a.stream->feed(std::string_view(a.response).substr(0, 10), reply, used) == StreamStatus::ok);
  CHECK(reply.empty());
  CHECK(a.stream->feed(a.response.substr(10) + frames, reply, used) == StreamStatus::ok);
  CHECK(reply == std::string(1, static_cast<char>(auth_ok_byte)));
  CHECK(a.stream->authenticated());
  CHECK(f.counters.streams.get() == 1);
  CHECK(get_string(f.thread, "k") == "v");
  CHECK(f.counters.auth_failures.get() == 0);
}

TEST_CASE("a wrong secret, a replayed proof or frames instead of a proof are refused with EINVAL") {
  std::string other(32, 'x');
  for (int attempt = 0; attempt < 3; ++attempt) {
    StreamFixture f;
    LogCapture::clear();
    Authenticating a(f, attempt == 0 ? PeerSecret(other) : test_secret());
    std::string sent = a.response;
    if (attempt == 0) CHECK(!a.acceptor_proven);  // the initiator would stop here too
    if (attempt == 1) {
      // A proof recorded from another connection: that acceptor's nonce was another.
      StreamFixture g;
      Authenticating earlier(g, test_secret());
      sent = earlier.response;
      CHECK(sent != a.response);
    }
    if (attempt == 2) sent = put_frame("k", "forged", make_version(1000, 5));
    std::string reply;
    size_t used = 0;
    CHECK(a.stream->feed(sent + put_frame("k2", "forged", make_version(1000, 5)), reply, used) == StreamStatus::close);
    CHECK(reply == std::string(1, static_cast<char>(refusal_byte)));
    CHECK(!get_string(f.thread, "k"));
    CHECK(!get_string(f.thread, "k2"));
    CHECK(f.counters.auth_failures.get() == 1);
    CHECK(f.counters.streams.get() == 0);
    CHECK(LogCapture::contains("127.0.0.1:5000"));
    reply.clear();
    CHECK(a.stream->feed(put_frame("k3", "v", make_version(1000, 5)), reply, used) == StreamStatus::close);
    CHECK(reply.empty());
  }
}
