// PeerLink's authentication (peer_link.h, handshake.h): with a peer secret,
// the v2 hello out, the peer's challenge checked, our proof back, and the
// peer's AUTH_OK awaited before the link streams. Apart from the link's
// life cycle in peer_link.cc, as its TLS is in peer_link_tls.cc.
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "server/replication/handshake.h"
#include "server/replication/peer_link.h"

namespace ringcache::replication {

// Handshake messages are a few dozen bytes on a connection with nothing
// else in flight: they fit the socket buffer whole or the link has failed.
// (With TLS, what the socket does not take yet goes out on EPOLLOUT.)
bool PeerLink::send_handshake_bytes(const std::string& bytes, int64_t now_ms) {
  if (tls_) {
    assert(bytes.size() <= server::tls_encrypt_bytes_max);
    size_t done = 0;
    if (!tls_->wants_plaintext()) {
      fail_tls("TLS cannot take the handshake message yet (the peer reads nothing)", now_ms);
      return false;
    }
    if (!tls_->encrypt(bytes, done)) {
      fail_tls(tls_->error(), now_ms);
      return false;
    }
    assert(done == bytes.size());
    return flush_tls(now_ms);
  }
  ssize_t n = 0;
  do {
    n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(bytes.size())) return true;
  fail_attempt(std::string("cannot send the handshake: ") + (n < 0 ? std::strerror(errno) : "short write"), now_ms);
  return false;
}

void PeerLink::read_handshake(int64_t now_ms) {
  assert(state_ == LinkState::authenticating);
  // advance_handshake() fails a message that does not fit before this is reached again.
  assert(!(handshake_in_.size() > challenge_bytes_max));
  char buffer[challenge_bytes_max];
  while (state_ == LinkState::authenticating) {
    const size_t room = challenge_bytes_max - handshake_in_.size();
    // Room is never 0 here: advance_handshake() fails a message that does
    // not fit; one byte more is read to see such a message.
    ssize_t n = 0;
    switch (receive_plain(buffer, std::max<size_t>(room, 1), n)) {
      case Received::bytes:
        handshake_in_.append(buffer, static_cast<size_t>(n));
        if (!advance_handshake(now_ms)) return;
        break;
      case Received::tls_failed:
        // A TLS 1.3 peer refuses our certificate only after our handshake is done.
        fail_tls(tls_->error(), now_ms);
        return;
      case Received::closed:
        fail_attempt("the peer closed the connection during authentication", now_ms, not_authenticated);
        return;
      case Received::drained:
        return;
      case Received::failed:
        fail_attempt(std::string("authentication: ") + std::strerror(errno), now_ms);
        return;
    }
  }
}

bool PeerLink::advance_handshake(int64_t now_ms) {
  assert(state_ == LinkState::authenticating);
  const ReplicationConfig& config = shared_.config;
  size_t used = 0;
  HandshakeStatus status = HandshakeStatus::bad;
  if (!proof_sent_) {
    Challenge challenge;
    status = decode_challenge(handshake_in_, challenge, used);
    if (status == HandshakeStatus::ok) {
      AuthTranscript transcript;
      transcript.initiator_id = config.node_id;
      transcript.acceptor_id = challenge.acceptor_id;
      transcript.initiator_nonce = nonce_;
      transcript.acceptor_nonce = challenge.nonce;
      const std::string_view received(reinterpret_cast<const char*>(challenge.mac.data()), challenge.mac.size());
      if (challenge.acceptor_id == config.node_id) {
        fail_attempt("it has this node's own node id (is this node listed as its own peer?)", now_ms, not_authenticated);
        return false;
      }
      if (!auth_mac_matches(auth_mac(*config.secret, AuthRole::acceptor, transcript), received)) {
        shared_.counters.auth_failures.add();
        fail_attempt("it failed to prove the peer secret (not the same --peer-secret-file?)", now_ms, not_authenticated);
        return false;
      }
      std::string response;
      append_response(response, auth_mac(*config.secret, AuthRole::initiator, transcript));
      handshake_in_.erase(0, used);
      proof_sent_ = true;
      if (!send_handshake_bytes(response, now_ms)) return false;
      if (handshake_in_.empty()) return true;
      status = decode_auth_ok(handshake_in_, used);
    }
  } else {
    status = decode_auth_ok(handshake_in_, used);
  }
  switch (status) {
    case HandshakeStatus::need_more:
      if (handshake_in_.size() < challenge_bytes_max) return true;
      [[fallthrough]];
    case HandshakeStatus::bad:
      fail_attempt("it answered the authentication with unexpected bytes", now_ms, not_authenticated);
      return false;
    case HandshakeStatus::refused:
      if (proof_sent_) shared_.counters.auth_failures.add();
      fail_attempt(proof_sent_ ? "it refused our proof (not the same --peer-secret-file?)"
                               : "it refused our hello (see its log: no --peer-secret-file there, replication "
                                 "off, or a node id clash)",
                   now_ms, not_authenticated);
      return false;
    case HandshakeStatus::ok:
      break;
  }
  assert(proof_sent_);
  assert(used == 1);
  if (handshake_in_.size() != used) {
    fail_attempt("it sent bytes after AUTH_OK", now_ms, not_authenticated);
    return false;
  }
  std::string().swap(handshake_in_);
  start_streaming(now_ms);
  return true;
}

}  // namespace ringcache::replication
