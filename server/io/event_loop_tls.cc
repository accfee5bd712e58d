// The event loop's TLS side (event_loop.h, "TLS"): ciphertext received is
// given to the connection's TlsChannel and its plaintext to the session;
// replies are encrypted in bounded rounds before they are sent; handshakes
// are listed oldest first so that a tick closes the stalled ones; the
// counters of handshakes and TLS connections. The rest of the loop only
// asks whether a connection has a channel.
#include <openssl/ssl.h>

#include <cassert>

#include "server/io/event_loop.h"
#include "server/io/log.h"
#include "server/io/tls/tls_channel.h"

namespace ringcache::server {

// Ciphertext received: into the channel, and whatever plaintext it gives,
// one record at a time, to feed() (which pauses and stashes as for a
// plaintext connection; a record's plaintext is never larger than its
// ciphertext, so the stash keeps its bound).
void EventLoop::feed_tls(Connection& c, std::string_view ciphertext) {
  TlsChannel& tls = *c.tls;
  tls.push(ciphertext);
  while (!c.closing && !c.close_after_reply()) {
    const TlsRead read = tls.read(tls_plaintext_.get(), tls_record_plain_bytes_max);
    if (read.handshake_finished) on_handshake_done(c);
    if (read.bytes == 0) break;
    feed(c, std::string_view(tls_plaintext_.get(), read.bytes));
  }
  if (c.closing) return;
  switch (tls.state()) {
    case TlsState::closed:
      c.peer_eof = true;  // close_notify: what came before it is still answered
      return;
    case TlsState::failed:
    case TlsState::not_tls:
      tls_failed(c);
      return;
    case TlsState::handshaking:
    case TlsState::open:
      return;
  }
}

// The channel failed: no more input; its alert (if any) is sent and the
// connection closed. A client that is not speaking TLS at all gets nothing.
void EventLoop::tls_failed(Connection& c) {
  TlsChannel& tls = *c.tls;
  assert(tls.state() == TlsState::failed || tls.state() == TlsState::not_tls);
  if (c.handshake_listed) unlist_handshake(c);
  if (!tls.established()) {
    // Counted in finalize(), with every other handshake that never finished.
    if (log_verbose()) {
      log_debug("worker %u: connection %u: TLS handshake failed: %s", index_, c.slot(), tls.error().c_str());
    }
  } else {
    log_info("worker %u: connection %u dropped: TLS: %s", index_, c.slot(), tls.error().c_str());
    counters_.connections_dropped.add();
  }
  // Replies not yet encrypted can no longer be.
  const size_t held_before = c.out.held_bytes();
  c.out.clear();
  held_bytes_ -= held_before;
  if (tls.state() == TlsState::not_tls) {
    begin_close(c, "not a TLS client");
    return;
  }
  c.close_after_flush = true;
  if (c.recv_armed && !c.recv_cancel_sent) {
    cancel_request(c, Op::recv);
    c.recv_cancel_sent = true;
  }
}

void EventLoop::on_handshake_done(Connection& c) {
  if (c.handshake_listed) unlist_handshake(c);
  const bool tls13 = c.tls->version() == TLS1_3_VERSION;
  (tls13 ? counters_.tls_handshakes_tls13 : counters_.tls_handshakes_tls12).add();
  (tls13 ? counters_.tls_connections_tls13 : counters_.tls_connections_tls12).add();
  if (log_verbose()) {
    log_debug("worker %u: connection %u: TLS handshake done (%s)", index_, c.slot(), tls13 ? "TLSv1.3" : "TLSv1.2");
  }
}

// Encrypts a round of the queue when the channel wants one, then sends the
// channel's ciphertext (handshake messages and alerts too).
void EventLoop::try_send_tls(Connection& c) {
  if (c.send_inflight || c.closing) return;
  TlsChannel& tls = *c.tls;
  // A session answers only plaintext it was given, so before the handshake
  // there is nothing to encrypt; after a failure the queue was dropped and
  // the session is fed nothing more (on_send does not resume it).
  assert(c.out.empty() || tls.established());
  assert(c.out.empty() || !c.close_after_flush);
  if (!c.out.empty() && tls.wants_plaintext()) {
    const size_t held_before = c.out.held_bytes();
    const bool encrypted = tls.encrypt(c.out);
    held_bytes_ = held_bytes_ - held_before + c.out.held_bytes();
    if (!encrypted) tls_failed(c);
  }
  const std::string_view ciphertext = tls.ciphertext();
  if (ciphertext.empty()) return;
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_send(sqe, c.fd(), ciphertext.data(), ciphertext.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::send, c.generation(), c.slot()}));
  c.send_inflight = true;
}

// TLS handshakes join at the tail when accepted, so the list stays in
// order of their deadlines.
void EventLoop::list_handshake(Connection& c) {
  assert(!c.handshake_listed && c.handshake_prev == nullptr && c.handshake_next == nullptr);
  c.handshake_listed = true;
  c.handshake_started_tick = tick_;
  c.handshake_prev = handshake_tail_;
  (handshake_tail_ != nullptr ? handshake_tail_->handshake_next : handshake_head_) = &c;
  handshake_tail_ = &c;
}

void EventLoop::unlist_handshake(Connection& c) {
  assert(c.handshake_listed);
  assert(c.handshake_prev != nullptr || handshake_head_ == &c);
  assert(c.handshake_next != nullptr || handshake_tail_ == &c);
  (c.handshake_prev != nullptr ? c.handshake_prev->handshake_next : handshake_head_) = c.handshake_next;
  (c.handshake_next != nullptr ? c.handshake_next->handshake_prev : handshake_tail_) = c.handshake_prev;
  c.handshake_prev = nullptr;
  c.handshake_next = nullptr;
  c.handshake_listed = false;
}

// Once a tick: closes the handshakes that have run for handshake_ticks_
// whole ticks (so at least tls_handshake_ms_max). Only the expired ones
// at the head are visited. One log line per tick sums them up.
void EventLoop::abort_stalled_handshakes() {
  uint64_t aborted = 0;
  while (handshake_head_ != nullptr && tick_ - handshake_head_->handshake_started_tick > handshake_ticks_) {
    Connection& c = *handshake_head_;
    unlist_handshake(c);
    if (c.closing) continue;
    ++aborted;
    counters_.tls_handshake_timeouts.add();
    begin_close(c, "TLS handshake not done in time");
    progress(c);  // may finalize c, which is no longer listed
  }
  if (aborted > 0) {
    log_info("worker %u: closed %llu connections whose TLS handshake took more than %llu ms "
             "(--tls-handshake-timeout; STATS TLS_HANDSHAKE_TIMEOUTS)",
             index_, static_cast<unsigned long long>(aborted),
             static_cast<unsigned long long>(shared_.tls_handshake_ms_max));
  }
}

}  // namespace ringcache::server
