// PeerLink's TLS (peer_link.h): the client side of a replication link's
// handshake and the encryption of what the link sends, kept apart from the
// link's plain life cycle so that peer_link.cc reads the same with or
// without --tls-cert. The channel is the clients' TlsChannel in its client
// role (server/io/tls/tls_channel.h): memory BIOs, this thread does the
// send and recv, nothing blocks.
#include <sys/socket.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "server/io/tls/tls_context.h"
#include "server/replication/peer_link.h"

namespace ringcache::replication {
namespace {

// One recv() of ciphertext: a whole TLS record and its header.
constexpr size_t tls_receive_bytes = server::tls_record_plain_bytes_max + 512;
constexpr const char* tls_not_done = "TLS handshake failed";

// Ciphertext a link takes from its peer after the TLS handshake, over the
// connection's life. The peer has little to say on this connection
// (peer_link.h): with a secret, a challenge and AUTH_OK (each under
// challenge_bytes_max); to refuse us, one byte. Everything else is TLS
// records without data: session tickets (a TLS 1.3 acceptor sends two,
// about 1.4 KiB with our certificate inside) or key updates. Each chunk of
// those keeps the replication thread, which serves every link and the
// handoff ring, reading until the socket is drained: a mesh member sending
// them without end would hold it as long as it liked. 64 KiB is over 40
// times what a legitimate peer sends; past it the link is dropped and
// retried with backoff (dropped, not paused: the socket is edge-triggered,
// and a read that stops before EAGAIN loses the edge).
constexpr uint64_t link_tls_input_bytes_max = 64 * 1024;

}  // namespace

PeerLink::Received PeerLink::receive_plain(char* buffer, size_t size, ssize_t& n) {
  if (!tls_) return receive(fd_, buffer, size, n);
  char ciphertext[tls_receive_bytes];
  while (true) {
    const server::TlsRead read = tls_->read(buffer, size);
    if (read.bytes > 0) {
      n = static_cast<ssize_t>(read.bytes);
      return Received::bytes;
    }
    switch (tls_->state()) {
      case server::TlsState::closed:
        return Received::closed;
      case server::TlsState::failed:
      case server::TlsState::not_tls:
        return Received::tls_failed;
      case server::TlsState::handshaking:
      case server::TlsState::open:
        break;
    }
    const Received received = receive(fd_, ciphertext, sizeof(ciphertext), n);
    if (received != Received::bytes) return received;
    push_ciphertext(std::string_view(ciphertext, static_cast<size_t>(n)));
  }
}

void PeerLink::push_ciphertext(std::string_view ciphertext) {
  assert(tls_->state() == server::TlsState::handshaking || tls_->state() == server::TlsState::open);
  // Before, the channel's own tls_handshake_bytes_max bounds what it takes.
  if (!tls_->established()) {
    assert(tls_input_bytes_ == 0);
    tls_->push(ciphertext);
    return;
  }
  // The link is dropped the first time the bound is passed.
  assert(!(tls_input_bytes_ > link_tls_input_bytes_max));
  tls_input_bytes_ += ciphertext.size();
  if (tls_input_bytes_ > link_tls_input_bytes_max) {
    // The bound, not the count, in the reason: fail_attempt() logs a streak
    // of the same reason once.
    tls_->abandon("the peer sent more than " + std::to_string(link_tls_input_bytes_max) +
                  " bytes of TLS records after the handshake, nearly all without data (session tickets, key "
                  "updates: link_tls_input_bytes_max)");
    return;
  }
  tls_->push(ciphertext);
}

void PeerLink::start_tls(int64_t now_ms) {
  SSL* ssl = shared_.config.tls->new_client_ssl(address_.host);
  if (ssl == nullptr) {
    fail_attempt(server::take_openssl_error("no memory for a TLS session"), now_ms, tls_not_done);
    return;
  }
  try {
    tls_ = std::make_unique<server::TlsChannel>(ssl, server::TlsRole::client);
  } catch (const std::bad_alloc&) {
    fail_attempt("no memory for a TLS session", now_ms, tls_not_done);
    return;
  }
  state_ = LinkState::securing;
  tls_started_ms_ = now_ms;
  tls_input_bytes_ = 0;
  // Queues the ClientHello and sends it.
  read_tls_handshake(now_ms);
}

void PeerLink::fail_tls(std::string reason, int64_t now_ms) {
  shared_.counters.tls_failures.add();
  fail_attempt(reason, now_ms, tls_not_done);
}

ssize_t PeerLink::send_ciphertext() {
  const std::string_view ciphertext = tls_->ciphertext();
  assert(!ciphertext.empty());
  ssize_t n = 0;
  do {
    n = ::send(fd_, ciphertext.data(), ciphertext.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n > 0) tls_->sent(static_cast<size_t>(n));
  return n;
}

bool PeerLink::flush_tls(int64_t now_ms) {
  assert(tls_);
  while (tls_->has_output()) {
    const ssize_t n = send_ciphertext();
    if (n > 0) continue;
    // The rest goes out on the EPOLLOUT edge that follows.
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    fail_attempt(std::string("TLS send: ") + (n < 0 ? std::strerror(errno) : "no progress"), now_ms);
    return false;
  }
  return true;
}

void PeerLink::read_tls_handshake(int64_t now_ms) {
  assert(state_ == LinkState::securing);
  char buffer[tls_receive_bytes];
  while (true) {
    // Moves the handshake on with what was pushed; no plaintext comes
    // before our hello.
    const server::TlsRead read = tls_->read(buffer, sizeof(buffer));
    // Our flights (ClientHello, certificate, Finished) and alerts.
    if (!flush_tls(now_ms)) return;
    if (tls_->state() == server::TlsState::failed || tls_->state() == server::TlsState::not_tls) {
      fail_tls(tls_->error(), now_ms);
      return;
    }
    if (tls_->state() == server::TlsState::closed) {
      fail_tls("the peer ended TLS (close_notify) during the handshake", now_ms);
      return;
    }
    if (read.bytes > 0) {
      fail_tls("the peer sent data before our hello", now_ms);
      return;
    }
    if (read.handshake_finished && !tls_->peer_verified()) {
      // SSL_VERIFY_PEER already failed any other handshake; checked again
      // because this is the mesh's trust boundary.
      fail_tls("the peer's certificate did not verify against --tls-ca", now_ms);
      return;
    }
    if (tls_->peer_accepted()) {
      on_secured(now_ms);
      return;
    }
    ssize_t n = 0;
    switch (receive(fd_, buffer, sizeof(buffer), n)) {
      case Received::bytes:
        // In TLS 1.3 the ticket we wait for comes after the handshake.
        push_ciphertext(std::string_view(buffer, static_cast<size_t>(n)));
        break;
      case Received::closed:
        fail_tls("the peer closed the connection during the TLS handshake (is it a TLS node? does it trust "
                 "our certificate's CA?)",
                 now_ms);
        return;
      case Received::drained:
        return;
      case Received::failed:
      case Received::tls_failed:
        fail_tls(std::string("TLS handshake: ") + std::strerror(errno), now_ms);
        return;
    }
  }
}

PeerLink::Io PeerLink::after_encrypt(bool ok, int64_t now_ms) {
  if (ok) return Io::progress;
  shared_.counters.tls_failures.add();
  drop("TLS: " + tls_->error(), now_ms, false);
  return Io::failed;
}

}  // namespace ringcache::replication
