// The authenticated replication handshake (docs/replication.md §2, "Hello
// and authentication"): what travels before the first frame of a stream,
// encoded and decoded as pure functions of bytes, and the MACs that bind it.
//
// With a peer secret on both nodes (--peer-secret-file), the node that opens
// the connection (the initiator, which will send its writes) and the node
// that accepts it (the acceptor, which will apply them) prove to each other
// that they hold the secret before a single frame is applied:
//
//   initiator -> acceptor  HELLO     | 200 | field "RINGCACHE-REPL/2 <initiator id> <nonce_i: 64 hex>" |
//   acceptor -> initiator  CHALLENGE | 208 | field <acceptor id> | nonce_a[32] | mac_a[32] |
//   initiator -> acceptor  RESPONSE  | 209 | mac_i[32] |
//   acceptor -> initiator  AUTH_OK   | 101 |                  then the stream (MESH, RESYNC_BEGIN, ...)
//
//   mac_x = HMAC-SHA256(secret, label_x || u8 len(initiator id) || initiator id
//                                        || u8 len(acceptor id) || acceptor id || nonce_i || nonce_a)
//   label_a = "RINGCACHE-REPL/2 acceptor", label_i = "RINGCACHE-REPL/2 initiator"
//
// - Each side contributes a fresh 32-byte random nonce (RAND_bytes), so a
//   recorded handshake replayed on a new connection fails: the other side's
//   nonce differs.
// - Each MAC covers both node ids, so a proof made for one pair of nodes is
//   worth nothing for another, and a distinct label per role, so a proof
//   cannot be reflected back to the node that made it.
// - MACs are compared with CRYPTO_memcmp (constant time); the secret never
//   leaves PeerSecret and is never logged.
// - Any other reply, a wrong MAC, or the unauthenticated v1 hello makes the
//   acceptor answer the one byte EINVAL (111) and close.
// What this does not do: protect the stream after the handshake. Someone who
// can intercept and alter the traffic between two nodes can still tamper with
// it; against that, run the mesh over a private network (or TLS, when added).
//
// Without a secret, the v1 hello "RINGCACHE-REPL/1 <node id>" is followed by
// the stream directly, and the acceptor admits it only from the addresses the
// --peer names resolve to (replicator.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/non_copyable.h"
#include "server/replication/secret_file.h"

namespace ringcache::replication {

inline constexpr size_t auth_nonce_bytes = 32;
inline constexpr size_t auth_mac_bytes = 32;  // HMAC-SHA256
inline constexpr size_t peer_secret_bytes_min = 32;
inline constexpr size_t peer_secret_bytes_max = 4096;

using AuthNonce = std::array<unsigned char, auth_nonce_bytes>;
using AuthMac = std::array<unsigned char, auth_mac_bytes>;

inline constexpr std::string_view hello_v1_prefix = "RINGCACHE-REPL/1 ";
inline constexpr std::string_view hello_v2_prefix = "RINGCACHE-REPL/2 ";

// Handshake bytes that are not stream frames.
inline constexpr uint8_t challenge_opcode = 208;
inline constexpr uint8_t response_opcode = 209;
inline constexpr uint8_t auth_ok_byte = 101;      // the client protocol's OK
inline constexpr uint8_t refusal_byte = 111;      // the client protocol's EINVAL

// The shared secret, loaded from --peer-secret-file. Move-only; its bytes are
// wiped when it goes.
class PeerSecret : NonCopyable {
 public:
  PeerSecret() = default;
  explicit PeerSecret(std::string_view bytes);
  ~PeerSecret();
  PeerSecret(PeerSecret&& other) noexcept;
  PeerSecret& operator=(PeerSecret&& other) noexcept;

  bool empty() const { return bytes_.empty(); }
  std::string_view bytes() const { return bytes_; }

 private:
  void wipe();
  std::string bytes_;
};

// Reads the secret: the file's bytes, exactly (a trailing newline is part of
// the secret, so every node must get the same file). On failure, `error`
// says why in a sentence fit for the start-up log (never the secret).
SecretFileStatus load_peer_secret(const std::string& path, PeerSecret& secret, std::string& error);

enum class AuthRole : uint8_t { initiator, acceptor };

// Both ids and both nonces of one handshake.
struct AuthTranscript {
  std::string_view initiator_id;
  std::string_view acceptor_id;
  AuthNonce initiator_nonce{};
  AuthNonce acceptor_nonce{};
};

// The proof `role` sends. Throws std::runtime_error if libcrypto fails
// (it does not for a valid key and input).
AuthMac auth_mac(const PeerSecret& secret, AuthRole role, const AuthTranscript& transcript);
// Constant-time comparison of a received MAC with the expected one.
bool auth_mac_matches(const AuthMac& expected, std::string_view received);
// A fresh nonce from libcrypto's CSPRNG; false if it cannot give one.
bool make_auth_nonce(AuthNonce& nonce);

// ---------------------------------------------------------------- hello

enum class HelloVersion : uint8_t { v1, v2 };

enum class HelloStatus : uint8_t {
  ok,
  bad_prefix,   // neither "RINGCACHE-REPL/1 " nor "RINGCACHE-REPL/2 "
  bad_node_id,  // empty, too long, or with spaces or control bytes
  bad_nonce,    // v2 without " " and 64 hex digits after the id
};
const char* hello_status_text(HelloStatus status);

struct Hello {
  HelloVersion version = HelloVersion::v1;
  std::string_view node_id;  // a view into the parsed field
  AuthNonce nonce{};         // v2 only
};

// Parses a hello field (the bytes after 200 and its length).
HelloStatus parse_hello(std::string_view field, Hello& hello);

// Node ids: 1-64 printable ASCII characters without spaces (server/options).
inline constexpr size_t node_id_bytes_max = 64;
bool is_valid_node_id(std::string_view id);

void append_hello_v1(std::string& out, std::string_view node_id);
void append_hello_v2(std::string& out, std::string_view node_id, const AuthNonce& nonce);

// ---------------------------------------------------------------- challenge, response

// The most bytes a challenge occupies; what a reader must buffer at most.
inline constexpr size_t challenge_bytes_max = 1 + 4 + node_id_bytes_max + auth_nonce_bytes + auth_mac_bytes;
inline constexpr size_t response_bytes = 1 + auth_mac_bytes;

void append_challenge(std::string& out, std::string_view acceptor_id, const AuthNonce& nonce,
                      const AuthMac& mac);
void append_response(std::string& out, const AuthMac& mac);

enum class HandshakeStatus : uint8_t {
  need_more,  // a prefix of a valid message: read more (input holds fewer than the max bytes)
  ok,         // a whole message; `consumed` bytes were it
  refused,    // the other side answered EINVAL: it refused us
  bad,        // anything else: close
};

struct Challenge {
  std::string_view acceptor_id;  // a view into the input
  AuthNonce nonce{};
  AuthMac mac{};
};

// What the initiator reads after its v2 hello. `input` is every byte read so
// far on the connection; the result never depends on how they were split.
HandshakeStatus decode_challenge(std::string_view input, Challenge& challenge, size_t& consumed);
// What the acceptor reads after its challenge.
HandshakeStatus decode_response(std::string_view input, AuthMac& mac, size_t& consumed);
// What the initiator reads after its response: AUTH_OK.
HandshakeStatus decode_auth_ok(std::string_view input, size_t& consumed);

}  // namespace ringcache::replication
