#include "server/replication/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cassert>
#include <cstring>
#include <stdexcept>

#include "server/replication/wire.h"

namespace ringcache::replication {
namespace {

constexpr std::string_view label_initiator = "RINGCACHE-REPL/2 initiator";
constexpr std::string_view label_acceptor = "RINGCACHE-REPL/2 acceptor";
constexpr char hex_digits[] = "0123456789abcdef";
constexpr size_t nonce_hex_bytes = 2 * auth_nonce_bytes;

static_assert(hello_v2_prefix.size() + node_id_bytes_max + 1 + nonce_hex_bytes <= hello_bytes_max);
static_assert(hello_v1_prefix.size() == hello_v2_prefix.size());

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_field(std::string& out, std::string_view bytes) {
  char length[field_length_bytes];
  put_be(length, bytes.size(), field_length_bytes);
  out.append(length, field_length_bytes);
  out.append(bytes);
}

template <size_t N>
void append_array(std::string& out, const std::array<unsigned char, N>& bytes) {
  out.append(reinterpret_cast<const char*>(bytes.data()), N);
}

template <size_t N>
void copy_array(std::array<unsigned char, N>& dst, std::string_view src) {
  assert(src.size() >= N);
  std::memcpy(dst.data(), src.data(), N);
}

}  // namespace

// ---------------------------------------------------------------- PeerSecret

PeerSecret::PeerSecret(std::string_view bytes) : bytes_(bytes) {}

PeerSecret::~PeerSecret() { wipe(); }

PeerSecret::PeerSecret(PeerSecret&& other) noexcept { *this = std::move(other); }

PeerSecret& PeerSecret::operator=(PeerSecret&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_.swap(other.bytes_);
  }
  return *this;
}

void PeerSecret::wipe() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
  bytes_.clear();
}

SecretFileStatus load_peer_secret(const std::string& path, PeerSecret& secret, std::string& error) {
  const SecretFileRules rules{"--peer-secret-file", peer_secret_bytes_min, peer_secret_bytes_max,
                              "a secret needs at least " + std::to_string(peer_secret_bytes_min) +
                                  " random bytes (head -c 32 /dev/urandom > FILE)",
                              " (and use a new secret if others could have read it)"};
  std::string bytes;
  const SecretFileStatus status = read_secret_file(path, rules, bytes, error);
  if (status != SecretFileStatus::ok) return status;
  secret = PeerSecret(bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return SecretFileStatus::ok;
}

// ---------------------------------------------------------------- MACs

AuthMac auth_mac(const PeerSecret& secret, AuthRole role, const AuthTranscript& transcript) {
  assert(!secret.empty());
  assert(is_valid_node_id(transcript.initiator_id));
  assert(is_valid_node_id(transcript.acceptor_id));
  std::string message;
  message.reserve(label_acceptor.size() + 2 + 2 * node_id_bytes_max + 2 * auth_nonce_bytes);
  message.append(role == AuthRole::initiator ? label_initiator : label_acceptor);
  message.push_back(static_cast<char>(transcript.initiator_id.size()));
  message.append(transcript.initiator_id);
  message.push_back(static_cast<char>(transcript.acceptor_id.size()));
  message.append(transcript.acceptor_id);
  append_array(message, transcript.initiator_nonce);
  append_array(message, transcript.acceptor_nonce);
  AuthMac mac{};
  unsigned int length = 0;
  const std::string_view key = secret.bytes();
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(), &length) == nullptr ||
      length != mac.size()) {
    throw std::runtime_error("HMAC-SHA256 failed in libcrypto");
  }
  return mac;
}

bool auth_mac_matches(const AuthMac& expected, std::string_view received) {
  if (received.size() != expected.size()) return false;
  return CRYPTO_memcmp(expected.data(), received.data(), expected.size()) == 0;
}

bool make_auth_nonce(AuthNonce& nonce) { return RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) == 1; }

// ---------------------------------------------------------------- hello

bool is_valid_node_id(std::string_view id) {
  if (id.empty() || id.size() > node_id_bytes_max) return false;
  for (const char c : id) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

const char* hello_status_text(HelloStatus status) {
  switch (status) {
    case HelloStatus::ok:
      return "ok";
    case HelloStatus::bad_prefix:
      return "hello is neither RINGCACHE-REPL/1 nor RINGCACHE-REPL/2";
    case HelloStatus::bad_node_id:
      return "hello carries an invalid node id";
    case HelloStatus::bad_nonce:
      return "RINGCACHE-REPL/2 hello without a 64-digit hex nonce";
  }
  return "unknown hello status";
}

HelloStatus parse_hello(std::string_view field, Hello& hello) {
  const std::string_view prefix = field.substr(0, hello_v1_prefix.size());
  if (prefix == hello_v1_prefix) {
    hello.version = HelloVersion::v1;
    hello.node_id = field.substr(hello_v1_prefix.size());
    return is_valid_node_id(hello.node_id) ? HelloStatus::ok : HelloStatus::bad_node_id;
  }
  if (prefix != hello_v2_prefix) return HelloStatus::bad_prefix;
  hello.version = HelloVersion::v2;
  const std::string_view rest = field.substr(hello_v2_prefix.size());
  const size_t space = rest.find(' ');
  hello.node_id = rest.substr(0, space);
  if (!is_valid_node_id(hello.node_id)) return HelloStatus::bad_node_id;
  if (space == std::string_view::npos) return HelloStatus::bad_nonce;
  const std::string_view hex = rest.substr(space + 1);
  if (hex.size() != nonce_hex_bytes) return HelloStatus::bad_nonce;
  for (size_t i = 0; i < auth_nonce_bytes; ++i) {
    const int high = hex_value(hex[2 * i]);
    const int low = hex_value(hex[2 * i + 1]);
    if (high < 0 || low < 0) return HelloStatus::bad_nonce;
    hello.nonce[i] = static_cast<unsigned char>(high << 4 | low);
  }
  assert(hello.version == HelloVersion::v2);
  assert(!(hello.node_id.size() > node_id_bytes_max));
  return HelloStatus::ok;
}

void append_hello_v1(std::string& out, std::string_view node_id) {
  assert(is_valid_node_id(node_id));
  out.push_back(static_cast<char>(WireOp::hello));
  append_field(out, std::string(hello_v1_prefix) + std::string(node_id));
}

void append_hello_v2(std::string& out, std::string_view node_id, const AuthNonce& nonce) {
  assert(is_valid_node_id(node_id));
  std::string field(hello_v2_prefix);
  field.append(node_id);
  field.push_back(' ');
  for (const unsigned char byte : nonce) {
    field.push_back(hex_digits[byte >> 4]);
    field.push_back(hex_digits[byte & 15]);
  }
  assert(field.size() <= hello_bytes_max);
  out.push_back(static_cast<char>(WireOp::hello));
  append_field(out, field);
}

// ---------------------------------------------------------------- challenge, response

void append_challenge(std::string& out, std::string_view acceptor_id, const AuthNonce& nonce,
                      const AuthMac& mac) {
  assert(is_valid_node_id(acceptor_id));
  out.push_back(static_cast<char>(challenge_opcode));
  append_field(out, acceptor_id);
  append_array(out, nonce);
  append_array(out, mac);
}

void append_response(std::string& out, const AuthMac& mac) {
  out.push_back(static_cast<char>(response_opcode));
  append_array(out, mac);
}

HandshakeStatus decode_challenge(std::string_view input, Challenge& challenge, size_t& consumed) {
  consumed = 0;
  if (input.empty()) return HandshakeStatus::need_more;
  const auto first = static_cast<uint8_t>(input[0]);
  if (first == refusal_byte) return HandshakeStatus::refused;
  if (first != challenge_opcode) return HandshakeStatus::bad;
  if (input.size() < 1 + field_length_bytes) return HandshakeStatus::need_more;
  const uint64_t id_bytes = get_be(input.data() + 1, field_length_bytes);
  if (id_bytes == 0 || id_bytes > node_id_bytes_max) return HandshakeStatus::bad;
  const size_t total = 1 + field_length_bytes + id_bytes + auth_nonce_bytes + auth_mac_bytes;
  assert(total <= challenge_bytes_max);
  if (input.size() < total) return HandshakeStatus::need_more;
  const std::string_view id = input.substr(1 + field_length_bytes, id_bytes);
  if (!is_valid_node_id(id)) return HandshakeStatus::bad;
  assert(!(input.size() < 1 + field_length_bytes + id_bytes + auth_nonce_bytes + auth_mac_bytes));
  challenge.acceptor_id = id;
  copy_array(challenge.nonce, input.substr(1 + field_length_bytes + id_bytes));
  copy_array(challenge.mac, input.substr(1 + field_length_bytes + id_bytes + auth_nonce_bytes));
  consumed = total;
  return HandshakeStatus::ok;
}

HandshakeStatus decode_response(std::string_view input, AuthMac& mac, size_t& consumed) {
  consumed = 0;
  if (input.empty()) return HandshakeStatus::need_more;
  if (static_cast<uint8_t>(input[0]) != response_opcode) return HandshakeStatus::bad;
  if (input.size() < response_bytes) return HandshakeStatus::need_more;
  copy_array(mac, input.substr(1));
  consumed = response_bytes;
  return HandshakeStatus::ok;
}

HandshakeStatus decode_auth_ok(std::string_view input, size_t& consumed) {
  consumed = 0;
  if (input.empty()) return HandshakeStatus::need_more;
  const auto first = static_cast<uint8_t>(input[0]);
  if (first == refusal_byte) return HandshakeStatus::refused;
  if (first != auth_ok_byte) return HandshakeStatus::bad;
  consumed = 1;
  return HandshakeStatus::ok;
}

}  // namespace ringcache::replication
