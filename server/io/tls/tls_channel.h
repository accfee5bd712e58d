// TlsChannel: TLS between one connection's socket and its session, on
// memory only. The event loop keeps doing the recv and the send
// (event_loop.h); the channel takes the ciphertext received and gives back
// plaintext for the session, and takes the session's replies from the
// connection's OutputQueue and gives back ciphertext to send. OpenSSL works
// on two memory BIOs and never touches the socket, so nothing blocks and a
// handshake moves on one received chunk at a time.
//
// The same channel is the client side of a replication link
// (replication/peer_link.h, TlsRole::client): it starts the handshake, and
// its bounds are the same; the replication thread does the socket I/O.
//
// Bounds (each a reason to close, never to wait):
// - before the handshake is done, at most tls_handshake_bytes_max bytes
//   are accepted from the other side (a handshake flight with a certificate
//   chain is a few KiB); the event loop (and a PeerLink) also closes a
//   handshake not done within --tls-handshake-timeout;
// - on the server side, a first byte that cannot start a TLS handshake
//   record (a plaintext client) fails the channel with nothing to send:
//   the client gets no reply;
// - replies are encrypted in rounds of at most tls_encrypt_bytes_max
//   plaintext bytes, and a round starts only when the previous round's
//   ciphertext has been handed to the kernel: a large value pinned in the
//   store is encrypted straight from store memory, a chunk at a time, and
//   never copied whole; what the session queues meanwhile stays in the
//   OutputQueue, whose bounds pause the connection (connection.h);
// - ciphertext OpenSSL writes on its own (alerts, key updates, session
//   tickets) may pile up only to tls_pending_output_bytes_max while the
//   client does not read: then the channel fails.
#pragma once

#include <openssl/ssl.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/non_copyable.h"

namespace ringcache::server {

inline constexpr size_t tls_handshake_bytes_max = 64 * 1024;
inline constexpr size_t tls_encrypt_bytes_max = 64 * 1024;
// The largest plaintext of one TLS record: what one decryption step yields.
inline constexpr size_t tls_record_plain_bytes_max = 16 * 1024;
inline constexpr size_t tls_pending_output_bytes_max = 4 * tls_encrypt_bytes_max;
// ContentType handshake (RFC 8446 §5.1): every TLS connection starts with it.
inline constexpr uint8_t tls_handshake_record_type = 0x16;
// iovecs of a queue looked at per round of encryption.
inline constexpr size_t tls_encrypt_iov_max = 16;

enum class TlsRole : uint8_t { server, client };

enum class TlsState : uint8_t {
  handshaking,
  open,
  closed,       // the other side sent close_notify: no more input
  failed,       // a TLS error: send what is queued (an alert), then close
  not_tls,      // the first byte was not a TLS record: close, send nothing
};

// What read() gave.
struct TlsRead {
  size_t bytes = 0;                // plaintext bytes put in the buffer
  bool handshake_finished = false;  // this call completed the handshake
};

// The client context's new-session callback (SSL_CTX_sess_set_new_cb): a
// session ticket arrived on a client channel. Keeps no session (returns 0).
int tls_client_session_ticket(SSL* ssl, SSL_SESSION* session);

class TlsChannel : NonCopyable {
 public:
  // Takes ownership of `ssl` (non-null, from TlsContext::new_ssl, or
  // new_client_ssl for the client role). Throws std::bad_alloc when the
  // memory BIOs cannot be made. A client channel's first read() queues its
  // ClientHello.
  explicit TlsChannel(SSL* ssl, TlsRole role = TlsRole::server);
  ~TlsChannel();

  TlsState state() const { return state_; }
  bool handshaking() const { return state_ == TlsState::handshaking; }
  // The handshake completed (whatever happened after).
  bool established() const { return established_; }
  // Why the channel failed, for the log.
  const std::string& error() const { return error_; }
  // The other side presented a certificate and it chained to the trusted
  // CA (TlsContext's --tls-ca). Only then may a replication hello be taken.
  bool peer_verified() const;
  // The subject of the other side's certificate ("/CN=node1"), or "" without one.
  std::string peer_subject() const;
  // Client role: the server has accepted our certificate too. In TLS 1.2
  // the handshake ends only after the server checked it; in TLS 1.3 our
  // side is done first, and the server checks our certificate after: it
  // answers with an alert, or with its session ticket (which every
  // TlsContext server sends), the sign it took our certificate. Before
  // that, whatever we send may be thrown away unread.
  bool peer_accepted() const;

  // Ciphertext received. May fail the channel (not_tls, too many bytes
  // before the handshake is done, out of memory).
  void push(std::string_view ciphertext);
  // Decrypts (and moves the handshake on) into buf; bytes == 0 means no
  // plaintext until more ciphertext arrives, or the state changed.
  TlsRead read(char* buf, size_t capacity);

  // Whether a round of encryption may start: the handshake is done and
  // the previous round's ciphertext has been handed to the kernel.
  bool wants_plaintext() const;
  // Encrypts the first tls_encrypt_bytes_max bytes at most of `out` (a
  // queue with gather(iov, max) and consume(bytes): OutputQueue, a
  // replication PieceQueue) and drops them from it. False (the channel
  // failed) on an OpenSSL error.
  template <class Queue>
  bool encrypt(Queue& out) {
    struct iovec iov[tls_encrypt_iov_max];
    const size_t count = out.gather(iov, tls_encrypt_iov_max);
    size_t done = 0;
    if (!encrypt(iov, count, done)) return false;
    out.consume(done);
    return true;
  }
  // The same from `count` iovecs: `done` says how many bytes it took.
  bool encrypt(const struct iovec* iov, size_t count, size_t& done);
  // The same from one buffer.
  bool encrypt(std::string_view bytes, size_t& done) {
    const struct iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    return encrypt(&iov, 1, done);
  }
  // The ciphertext to send next (empty: nothing); stays valid and unchanged
  // until sent() accounts for it, whatever else the channel does meanwhile.
  std::string_view ciphertext();
  void sent(size_t bytes);
  // Ciphertext not yet handed to the kernel.
  bool has_output() const;
  // Queues close_notify once (the session ended the connection); true if it did.
  bool close_notify();
  // The owner gives up on the channel for a bound of its own (a
  // replication link's link_tls_input_bytes_max): failed, why as error().
  void abandon(std::string why);

  // TLS1_2_VERSION, TLS1_3_VERSION (once the handshake is done).
  int version() const { return SSL_version(ssl_); }

 private:
  void fail(TlsState state, std::string why);
  size_t pending_output() const;

  SSL* ssl_;
  const TlsRole role_;
  BIO* rbio_ = nullptr;  // ciphertext in; owned by ssl_
  BIO* wbio_ = nullptr;  // ciphertext out; owned by ssl_
  TlsState state_ = TlsState::handshaking;
  bool established_ = false;
  bool close_notify_sent_ = false;
  bool ticket_seen_ = false;  // client role: a TLS 1.3 session ticket arrived
  friend int tls_client_session_ticket(SSL* ssl, SSL_SESSION* session);
  uint64_t handshake_bytes_ = 0;
  // Ciphertext taken from wbio_ for the send in flight: wbio_ may grow
  // (and move) while the kernel reads this.
  std::unique_ptr<char[]> send_buffer_;
  size_t send_capacity_ = 0;
  size_t send_begin_ = 0;
  size_t send_end_ = 0;
  std::string error_;
};

}  // namespace ringcache::server
