#include "server/replication/peer_link.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "server/io/value_copy.h"
#include "server/replication/handshake.h"
#include "server/replication/log_sink.h"
#include "server/replication/wire.h"

namespace ringcache::replication {
namespace {

constexpr size_t input_discard_bytes = 256;

}  // namespace

PeerLink::Received PeerLink::receive(int fd, char* buffer, size_t size, ssize_t& n) {
  assert(size > 0);
  do {
    n = ::recv(fd, buffer, size, 0);
  } while (n < 0 && errno == EINTR);
  if (n > 0) return Received::bytes;
  if (n == 0) return Received::closed;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return Received::drained;
  return Received::failed;
}

PeerLink::PeerLink(PeerAddress address, size_t index, uint64_t epoll_tag, LinkShared& shared,
                   PeerResolver* resolver)
    : address_(std::move(address)),
      index_(index),
      epoll_tag_(epoll_tag),
      shared_(shared),
      resolver_(resolver),
      backoff_ms_(shared.config.tuning.backoff_ms_min) {
  assert((resolver_ == nullptr) == is_numeric_host(address_.host));
}

PeerLink::~PeerLink() { close_socket(); }

int64_t PeerLink::deadline_ms() const {
  switch (state_) {
    case LinkState::waiting:
      return next_attempt_ms_;
    case LinkState::resolving:
      // Or sooner: the resolver wakes the replication thread when its answer is in.
      return resolve_started_ms_ + shared_.config.tuning.connect_timeout_ms;
    case LinkState::connecting:
      return connect_started_ms_ + shared_.config.tuning.connect_timeout_ms;
    case LinkState::securing:
      return tls_started_ms_ + shared_.config.tls_handshake_ms_max;
    case LinkState::authenticating:
      return handshake_started_ms_ + shared_.config.tuning.handshake_timeout_ms;
    case LinkState::streaming:
      return no_deadline_ms;
  }
  return no_deadline_ms;
}

uint64_t PeerLink::queued_bytes() const {
  if (state_ != LinkState::streaming) return 0;
  return shared_.log.end() - cursor_ + pending_.unsent_bytes();
}

void PeerLink::tick(int64_t now_ms) {
  if (state_ == LinkState::waiting && now_ms >= next_attempt_ms_) {
    start_attempt(now_ms);
  } else if (state_ == LinkState::resolving) {
    check_resolver(now_ms);
    if (state_ == LinkState::resolving &&
        now_ms - resolve_started_ms_ >= shared_.config.tuning.connect_timeout_ms) {
      fail_attempt("cannot resolve: no answer within " +
                       std::to_string(shared_.config.tuning.connect_timeout_ms) + " ms, still asking",
                   now_ms);
    }
  } else if (state_ == LinkState::connecting &&
             now_ms - connect_started_ms_ >= shared_.config.tuning.connect_timeout_ms) {
    close_socket();
    ++address_index_;
    if (address_index_ < addresses_.size()) {
      try_next_address(now_ms);
    } else {
      fail_attempt("connect timed out", now_ms);
    }
  } else if (state_ == LinkState::securing && now_ms - tls_started_ms_ >= shared_.config.tls_handshake_ms_max) {
    fail_tls("not done within --tls-handshake-timeout", now_ms);
  } else if (state_ == LinkState::authenticating &&
             now_ms - handshake_started_ms_ >= shared_.config.tuning.handshake_timeout_ms) {
    fail_attempt("it did not complete the authentication in time", now_ms, not_authenticated);
  }
}

void PeerLink::start_attempt(int64_t now_ms) {
  // Resolved again at every attempt: the peer's address may have changed.
  if (resolver_ != nullptr) {
    resolver_->ask();
    state_ = LinkState::resolving;
    resolve_started_ms_ = now_ms;
    return;
  }
  std::string error;
  if (!resolve_peer_address(address_, addresses_, error)) {
    fail_attempt("cannot resolve: " + error, now_ms);
    return;
  }
  on_resolved(now_ms);
}

void PeerLink::check_resolver(int64_t now_ms) {
  assert(state_ == LinkState::resolving);
  assert(resolver_ != nullptr);
  std::string error;
  switch (resolver_->take(addresses_, error)) {
    case PeerResolver::Answer::pending:
      return;
    case PeerResolver::Answer::failed:
      fail_attempt("cannot resolve: " + error, now_ms);
      return;
    case PeerResolver::Answer::resolved:
      on_resolved(now_ms);
      return;
  }
}

void PeerLink::on_resolved(int64_t now_ms) {
  assert(!addresses_.empty());
  assert(!(addresses_.size() > peer_addresses_max));
  shared_.allowlist.update(index_, addresses_);
  address_index_ = 0;
  try_next_address(now_ms);
}

void PeerLink::try_next_address(int64_t now_ms) {
  assert(fd_ < 0);
  std::string error;
  while (address_index_ < addresses_.size()) {
    const ResolvedAddress& target = addresses_[address_index_];
    fd_ = ::socket(target.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd_ < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      ++address_index_;
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = epoll_tag_;
    if (::epoll_ctl(shared_.epoll_fd, EPOLL_CTL_ADD, fd_, &ev) != 0) {
      error = std::string("epoll_ctl: ") + std::strerror(errno);
      close_socket();
      ++address_index_;
      continue;
    }
    const int rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&target.address), target.length);
    if (rc == 0 || errno == EINPROGRESS) {
      state_ = LinkState::connecting;
      connect_started_ms_ = now_ms;
      writable_ = false;
      // Completion (even an immediate one) arrives as EPOLLOUT.
      return;
    }
    error = format_address(target) + ": " + std::strerror(errno);
    close_socket();
    ++address_index_;
  }
  fail_attempt(error.empty() ? "no address to try" : error, now_ms);
}

void PeerLink::fail_attempt(const std::string& reason, int64_t now_ms, const char* what) {
  rejoining_ = false;
  close_socket();
  pending_.clear();
  std::string().swap(handshake_in_);
  state_ = LinkState::waiting;
  next_attempt_ms_ = now_ms + backoff_ms_;
  if (reason != last_failure_) {
    emit(shared_.config.info, "replication: peer %s %s (%s); retrying with backoff up to %lld ms",
         address_.text().c_str(), what, reason.c_str(),
         static_cast<long long>(shared_.config.tuning.backoff_ms_max));
    last_failure_ = reason;
  } else {
    emit(shared_.config.debug, "replication: peer %s still %s (%s)", address_.text().c_str(), what,
         reason.c_str());
  }
  backoff_ms_ = std::min(backoff_ms_ * 2, shared_.config.tuning.backoff_ms_max);
}

void PeerLink::close_socket() {
  if (fd_ >= 0) {
    // Closing removes it from the epoll set (no other descriptor shares it).
    ::close(fd_);
    fd_ = -1;
  }
  tls_.reset();
  writable_ = false;
}

void PeerLink::on_socket_event(uint32_t events, int64_t now_ms) {
  if (state_ == LinkState::connecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int error = 0;
    socklen_t length = sizeof(error);
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error == 0 && (events & (EPOLLERR | EPOLLHUP)) == 0) {
      on_connected(now_ms);
      return;
    }
    const std::string reason =
        format_address(addresses_[address_index_]) + ": " + std::strerror(error != 0 ? error : ECONNREFUSED);
    close_socket();
    ++address_index_;
    if (address_index_ < addresses_.size()) {
      try_next_address(now_ms);
    } else {
      fail_attempt(reason, now_ms);
    }
    return;
  }
  if (state_ == LinkState::securing) {
    read_tls_handshake(now_ms);
    return;
  }
  if (state_ == LinkState::authenticating) {
    if ((events & EPOLLOUT) != 0 && tls_ && !flush_tls(now_ms)) return;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read_handshake(now_ms);
    return;
  }
  if (state_ != LinkState::streaming) return;
  if ((events & EPOLLOUT) != 0) writable_ = true;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read_input(now_ms);
}

// The peer only ever writes to refuse us; anything read ends the link.
// With TLS, records with no plaintext (session tickets, key updates) are
// taken in passing, up to link_tls_input_bytes_max (peer_link_tls.cc);
// what they make TLS send goes out with the next pump().
void PeerLink::read_input(int64_t now_ms) {
  assert(state_ == LinkState::streaming);
  char buffer[input_discard_bytes];
  ssize_t n = 0;
  switch (receive_plain(buffer, sizeof(buffer), n)) {
    case Received::bytes:
      drop(static_cast<unsigned char>(buffer[0]) == refusal_byte
               ? "the peer refused our hello (see its log: replication off, or a node id clash)"
               : "the peer sent unexpected bytes",
           now_ms, false);
      return;
    case Received::closed:
      drop("the peer closed the connection", now_ms, false);
      return;
    case Received::drained:
      return;
    case Received::failed:
      drop(std::strerror(errno), now_ms, false);
      return;
    case Received::tls_failed:
      shared_.counters.tls_failures.add();
      drop("TLS: " + tls_->error(), now_ms, false);
      return;
  }
}

void PeerLink::on_connected(int64_t now_ms) {
  assert(fd_ >= 0);
  assert(state_ == LinkState::connecting);
  const int one = 1;
  // Frames are written in batches already; Nagle would only add lag.
  (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const unsigned timeout = shared_.config.tuning.tcp_user_timeout_ms;
  (void)::setsockopt(fd_, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
  if (shared_.config.tls != nullptr) {
    start_tls(now_ms);
    return;
  }
  on_secured(now_ms);
}

void PeerLink::on_secured(int64_t now_ms) {
  if (shared_.config.secret == nullptr) {
    append_hello_v1(pending_.tail_bytes(), shared_.config.node_id);
    start_streaming(now_ms);
    return;
  }
  if (!make_auth_nonce(nonce_)) {
    fail_attempt("no random nonce from libcrypto", now_ms);
    return;
  }
  state_ = LinkState::authenticating;
  handshake_started_ms_ = now_ms;
  proof_sent_ = false;
  handshake_in_.clear();
  std::string hello;
  append_hello_v2(hello, shared_.config.node_id, nonce_);
  if (!send_handshake_bytes(hello, now_ms)) return;
  // The challenge may already be there; the edge that announced it was
  // consumed with the connect's.
  read_handshake(now_ms);
}

void PeerLink::start_streaming(int64_t now_ms) {
  state_ = LinkState::streaming;
  rejoining_ = false;
  streaming_started_ms_ = now_ms;
  writable_ = true;
  last_failure_.clear();
  cursor_ = shared_.log.end();
  live_target_ = cursor_;
  stream_bytes_ = 0;
  append_mesh(pending_.tail_bytes(), static_cast<uint32_t>(shared_.config.peers.size()));
  shared_.counters.connects.add();
  shared_.counters.peers_connected.add();
  const char* tls = !tls_ ? "" : tls_->version() == TLS1_3_VERSION ? ", TLSv1.3" : ", TLSv1.2";
  emit(shared_.config.info, "replication: connected to peer %s (%s)%s%s",
       address_.text().c_str(), format_address(addresses_[address_index_]).c_str(), tls,
       shared_.config.secret != nullptr ? ", authenticated" : "");
  scanning_ = false;
  restart_resync(now_ms, 0);
}

void PeerLink::restart_resync(int64_t now_ms, uint64_t min_version) {
  if (state_ != LinkState::streaming) return;
  // A scan under way restarts from the first bucket: it must now also send
  // what it has passed, down to the lower of the two bounds.
  if (scanning_ && scan_min_version_ < min_version) min_version = scan_min_version_;
  if (min_version == 0) {
    emit(shared_.config.info, "replication: resync to peer %s started", address_.text().c_str());
  } else {
    emit(shared_.config.info, "replication: catch-up resync to peer %s started (versions from %llu)",
         address_.text().c_str(), static_cast<unsigned long long>(min_version));
  }
  // The copy starts once the current frame is out: a new RESYNC_BEGIN marks it.
  // The flush threshold in effect goes first: a peer that missed a
  // flush_all (away, or its FLUSH lost in a full handoff ring) hides what
  // it flushed, and the copy below it is refused instead of reviving it.
  if (const uint64_t flushed_below = shared_.store.flush_version(); flushed_below != 0) {
    append_flush(pending_.tail_bytes(), flushed_below, 0);
  }
  append_resync_begin(pending_.tail_bytes());
  scanning_ = true;
  scan_cursor_ = 0;
  scan_min_version_ = min_version;
  scan_items_ = 0;
  scan_started_ms_ = now_ms;
  resync_turn_ = true;
  shared_.counters.resyncs_started.add();
}

void PeerLink::cut(const char* reason, int64_t now_ms) {
  shared_.counters.queue_overflows.add();
  drop(reason, now_ms, true);
  rejoining_ = true;
}

void PeerLink::drop(const std::string& reason, int64_t now_ms, bool retry_now) {
  assert(state_ == LinkState::streaming);
  emit(shared_.config.info, "replication: peer %s dropped: %s (%llu bytes sent on this connection)",
       address_.text().c_str(), reason.c_str(), static_cast<unsigned long long>(stream_bytes_));
  close_socket();
  pending_.clear();
  scanning_ = false;
  shared_.counters.peers_connected.set(shared_.counters.peers_connected.get() - 1);
  state_ = LinkState::waiting;
  if (retry_now) {
    backoff_ms_ = shared_.config.tuning.backoff_ms_min;
    next_attempt_ms_ = now_ms;
  } else {
    // Only a link that lasted proves the peer healthy (stable_link_ms_min).
    if (now_ms - streaming_started_ms_ >= shared_.config.tuning.stable_link_ms_min) {
      backoff_ms_ = shared_.config.tuning.backoff_ms_min;
    }
    next_attempt_ms_ = now_ms + backoff_ms_;
    backoff_ms_ = std::min(backoff_ms_ * 2, shared_.config.tuning.backoff_ms_max);
  }
  last_failure_ = reason;
}

bool PeerLink::pump(size_t budget_bytes, int64_t now_ms) {
  size_t sent = 0;
  while (state_ == LinkState::streaming && writable_ && sent < budget_bytes) {
    Io io = Io::progress;
    // A live span in progress is finished first: pending bytes may only
    // follow a whole frame. With TLS, a round's ciphertext goes out before
    // the next round is encrypted.
    if (tls_ && tls_->has_output()) {
      io = after_write(send_ciphertext(), sent, now_ms);
    } else if (cursor_ < live_target_) {
      io = write_live(sent, now_ms);
    } else if (!pending_.empty()) {
      io = write_pending(sent, now_ms);
    } else if (!plan_next(now_ms)) {
      return false;
    }
    if (io != Io::progress) return false;
  }
  return state_ == LinkState::streaming && writable_;
}

// At a frame boundary with nothing pending: picks what to send next. False
// when there is nothing.
bool PeerLink::plan_next(int64_t now_ms) {
  const ReplicationLog& log = shared_.log;
  if (scanning_ && (resync_turn_ || cursor_ == log.end())) {
    scan_step(now_ms);
    resync_turn_ = false;
    return true;
  }
  if (cursor_ == log.end()) return false;
  const ReplicationLog::Span span = log.at(cursor_);
  if (span.lookup) {
    queue_lookup(span.bytes);
    cursor_ = span.end;
  } else {
    live_target_ = span.end;
  }
  resync_turn_ = true;
  return true;
}

void PeerLink::queue_item(std::string_view key, const store::ItemView& item, bool tombstone) {
  std::string& out = pending_.tail_bytes();
  if (tombstone) {
    append_del(out, key, item.version());
    return;
  }
  const PutMeta meta{item.version(), item.flags(), item.expires_at()};
  if (item.contiguous() && item.value_size() <= server::copy_value_bytes_max) {
    append_put(out, key, item.value(), meta);
    return;
  }
  append_put_head(out, key, item.value_size(), meta);
  pending_.append_pinned(item.pin());
}

void PeerLink::queue_lookup(std::string_view key) {
  // Absent now means deleted (its DEL follows in the log), evicted or
  // expired: nothing to send.
  (void)shared_.store.get(key, [&](const store::ItemView& item) { queue_item(key, item, false); });
}

void PeerLink::scan_step(int64_t now_ms) {
  const ReplicationTuning& tuning = shared_.config.tuning;
  for (uint64_t buckets = 0; buckets < resync_step_buckets_max; ++buckets) {
    const uint64_t next = shared_.store.scan(scan_cursor_, 1, [&](std::string_view key,
                                                                 const store::ItemView& item,
                                                                 bool tombstone) {
      if (item.version() < scan_min_version_) return;
      queue_item(key, item, tombstone);
      ++scan_items_;
      shared_.counters.resync_items.add();
    });
    if (next == 0) {
      scanning_ = false;
      append_resync_end(pending_.tail_bytes(), scan_items_);
      shared_.counters.resyncs_done.add();
      emit(shared_.config.info, "replication: resync to peer %s done: %llu items in %lld ms",
           address_.text().c_str(), static_cast<unsigned long long>(scan_items_),
           static_cast<long long>(now_ms - scan_started_ms_));
      return;
    }
    scan_cursor_ = next;
    if (pending_.unsent_bytes() >= tuning.resync_chunk_bytes || pending_.pins() >= tuning.resync_pins_max) {
      return;
    }
  }
}

PeerLink::Io PeerLink::after_write(ssize_t n, size_t& sent, int64_t now_ms) {
  if (n > 0) {
    sent += static_cast<size_t>(n);
    stream_bytes_ += static_cast<uint64_t>(n);
    shared_.counters.bytes_sent.add(static_cast<uint64_t>(n));
    return Io::progress;
  }
  if (n < 0 && errno == EINTR) return Io::progress;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    writable_ = false;
    return Io::blocked;
  }
  drop(n == 0 ? std::string("send made no progress") : std::string("send: ") + std::strerror(errno), now_ms,
       false);
  return Io::failed;
}

PeerLink::Io PeerLink::write_pending(size_t& sent, int64_t now_ms) {
  if (tls_) return after_encrypt(tls_->wants_plaintext() && tls_->encrypt(pending_), now_ms);
  const size_t count = pending_.gather(iov_, link_iov_max);
  assert(count > 0);
  msghdr msg{};
  msg.msg_iov = iov_;
  msg.msg_iovlen = count;
  const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  const Io io = after_write(n, sent, now_ms);
  if (n > 0) pending_.consume(static_cast<size_t>(n));
  return io;
}

PeerLink::Io PeerLink::write_live(size_t& sent, int64_t now_ms) {
  const ReplicationLog::Span span = shared_.log.at(cursor_);
  assert(!span.lookup);
  assert(live_target_ <= span.end);
  const std::string_view bytes = span.bytes.substr(0, live_target_ - cursor_);
  if (tls_) {
    size_t done = 0;
    const Io io = after_encrypt(tls_->wants_plaintext() && tls_->encrypt(bytes, done), now_ms);
    cursor_ += done;
    return io;
  }
  const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  const Io io = after_write(n, sent, now_ms);
  if (n > 0) cursor_ += static_cast<uint64_t>(n);
  return io;
}

}  // namespace ringcache::replication
