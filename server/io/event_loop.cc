#include "server/io/event_loop.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <new>

#include "server/io/log.h"
#include "server/io/tls/tls_channel.h"

namespace ringcache::server {
namespace {

// Errors that only mean the peer went away: closed without a log line.
bool is_peer_gone(int err) {
  switch (err) {
    case ECONNRESET:
    case EPIPE:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENOTCONN:
      return true;
    default:
      return false;
  }
}

}  // namespace

EventLoop::EventLoop(uint32_t index, WorkerShared& shared)
    : index_(index), shared_(shared), counters_(shared.services.counters(index)) {}

EventLoop::~EventLoop() = default;

void EventLoop::run() {
  std::string error;
  bool ready = false;
  try {
    ready = setup(error);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!ready) {
    shared_.sync.report_failed(index_, error);
    return;
  }
  shared_.sync.report_ready(index_, ring_.fd());
  if (!shared_.sync.wait_start()) return;

  try {
    if (index_ == 0) {
      std::vector<Acceptor::Source> sources;
      for (const Listener& listener : shared_.listeners) {
        // A text socket is served only when the text port is on (main.cc).
        if (listener.kind == ListenerKind::binary || shared_.serve_text) {
          sources.push_back({listener.fd, listener.kind});
        }
      }
      std::vector<int> ring_fds;
      for (uint32_t i = 0; i < shared_.sync.workers(); ++i) ring_fds.push_back(shared_.sync.ring_fd(i));
      acceptor_ = std::make_unique<Acceptor>(ring_, std::move(sources), std::move(ring_fds), index_,
                                             [this](int fd, ListenerKind kind) { adopt(fd, kind); });
      acceptor_->start();
    }
    arm_stop_poll();
    arm_expire_timer();
    serve();
  } catch (const std::exception& e) {
    // Everything per connection is caught where it happens; reaching here
    // means the worker itself cannot go on.
    log_info("fatal: worker %u: %s", index_, e.what());
    shared_.sync.report_fatal();
  }
  shared_.sync.arrive_drained_and_wait();
  reap_late_handoffs();
  connections_.for_each([](Connection& c) { ::close(c.fd()); });
}

bool EventLoop::setup(std::string& error) {
  if (ring_.init(ring_sq_entries, error) != RingStatus::ok) return false;
  if (!buffers_.init(ring_.raw(), recv_buffer_group, recv_buffers_count, recv_buffer_bytes, error)) {
    return false;
  }
  assert(shared_.upload_idle_ms_max > 0);
  upload_idle_ticks_ = (shared_.upload_idle_ms_max + expire_interval_ms - 1) / expire_interval_ms;
  services_ = shared_.services.make(index_);
  if (shared_.tls != nullptr) {
    assert(shared_.tls_handshake_ms_max > 0);
    handshake_ticks_ = (shared_.tls_handshake_ms_max + expire_interval_ms - 1) / expire_interval_ms;
    tls_plaintext_ = std::make_unique_for_overwrite<char[]>(tls_record_plain_bytes_max);
  }
  log_debug("worker %u: io_uring mode %s, %u receive buffers of %u bytes", index_, ring_.mode(),
            recv_buffers_count, recv_buffer_bytes);
  return true;
}

void EventLoop::serve() {
  while (true) {
    const int ret = ring_.submit_and_wait();
    if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EBUSY && ret != -EAGAIN) {
      log_info("fatal: worker %u: io_uring_enter: %s", index_, std::strerror(-ret));
      shared_.sync.report_fatal();
      return;
    }
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(ring_.raw(), &cqe) == 0 && cqe != nullptr) {
      const uint64_t user_data = cqe->user_data;
      const int32_t res = cqe->res;
      const uint32_t flags = cqe->flags;
      io_uring_cqe_seen(ring_.raw(), cqe);
      dispatch(user_data, res, flags);
    }
    if (stopping_ && ring_.in_flight() == 0) return;
  }
}

void EventLoop::dispatch(uint64_t user_data, int32_t res, uint32_t flags) {
  const UserData data = unpack_user_data(user_data);
  // A msg_ring completion was submitted by another ring: not in our count.
  if (data.op != Op::handoff_received && (flags & IORING_CQE_F_MORE) == 0) ring_.complete_one();
  switch (data.op) {
    case Op::accept:
      assert(acceptor_);
      acceptor_->on_accept(data.slot, res, flags);
      return;
    case Op::accept_backoff:
      assert(acceptor_);
      acceptor_->on_backoff(data.slot, res);
      return;
    case Op::handoff_sent:
      assert(acceptor_);
      acceptor_->on_handoff_sent(static_cast<int>(data.slot), static_cast<ListenerKind>(data.generation), res);
      return;
    case Op::handoff_received:
      if (res < 0) {
        log_info("worker %u: bad connection hand-over: %s", index_, std::strerror(-res));
        return;
      }
      adopt(res, static_cast<ListenerKind>(data.slot));
      return;
    case Op::recv:
      on_recv(data, res, flags);
      return;
    case Op::send:
      on_send(data, res);
      return;
    case Op::cancel:
      // ENOENT/EALREADY: the request had finished or was finishing anyway.
      if (res < 0 && res != -ENOENT && res != -EALREADY) {
        log_info("worker %u: cancel: %s", index_, std::strerror(-res));
      }
      return;
    case Op::stop_poll:
      begin_shutdown();
      return;
    case Op::expire_timer:
      on_expire_timer(res);
      return;
    case Op::op_end:
      break;
  }
  log_info("worker %u: completion with unknown user_data %#llx", index_,
           static_cast<unsigned long long>(user_data));
  assert(false && "unknown user_data");
}

void EventLoop::adopt(int fd, ListenerKind kind) {
  if (stopping_) {
    ::close(fd);
    return;
  }
  const int one = 1;
  // Replies are written whole; Nagle would only hold back the last one.
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  Connection* c = nullptr;
  try {
    assert(kind == ListenerKind::binary || shared_.serve_text);
    std::unique_ptr<TlsChannel> channel;
    if (shared_.tls != nullptr) {
      SSL* ssl = shared_.tls->new_ssl();
      if (ssl == nullptr) throw std::bad_alloc();
      // The channel owns ssl from its constructor on, even when that throws.
      channel.reset(new (std::nothrow) TlsChannel(ssl));
      if (!channel) {
        SSL_free(ssl);
        throw std::bad_alloc();
      }
    }
    c = &connections_.add(fd, services_->open_session(kind, fd, channel.get()));
    c->tls = std::move(channel);
  } catch (const std::bad_alloc&) {
    log_info("worker %u: out of memory for a new connection; closing it", index_);
    counters_.connections_dropped.add();
    ::close(fd);
    return;
  }
  c->last_io_tick = tick_;
  if (c->tls) list_handshake(*c);
  counters_.connections_open.add();
  counters_.connections_accepted.add();
  if (log_verbose()) {
    log_debug("worker %u: connection %u (fd %d) from %s", index_, c->slot(), fd,
              describe_peer_address(fd).c_str());
  }
  arm_recv(*c);
}

Connection* EventLoop::lookup(const UserData& data) {
  Connection* c = connections_.find(data.slot, data.generation);
  // A slot is freed only when nothing is in flight for it (finalize).
  assert(c != nullptr && "completion for a closed connection");
  return c;
}

void EventLoop::arm_recv(Connection& c) {
  assert(!c.recv_armed && !c.closing);
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_recv_multishot(sqe, c.fd(), nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = recv_buffer_group;
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::recv, c.generation(), c.slot()}));
  c.recv_armed = true;
  c.recv_cancel_sent = false;
}

void EventLoop::on_recv(const UserData& data, int32_t res, uint32_t flags) {
  Connection* c = lookup(data);
  const bool has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
  const auto buffer_id = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
  if (c == nullptr) {
    if (has_buffer) buffers_.recycle(buffer_id);
    return;
  }
  if ((flags & IORING_CQE_F_MORE) == 0) c->recv_armed = false;
  if (res > 0) {
    assert(has_buffer);
    counters_.bytes_received.add(static_cast<uint64_t>(res));
    c->last_io_tick = tick_;
    if (!c->closing) {
      const std::string_view bytes = buffers_.data(buffer_id, static_cast<uint32_t>(res));
      if (c->tls) {
        feed_tls(*c, bytes);
      } else {
        feed(*c, bytes);
      }
    }
    buffers_.recycle(buffer_id);
  } else {
    if (has_buffer) buffers_.recycle(buffer_id);
    if (res == 0) {
      c->peer_eof = true;
    } else if (res == -ENOBUFS || res == -EINTR || res == -EAGAIN || res == -ECANCELED) {
      // Backpressure, a signal, or our own cancel: re-armed (or not) below.
    } else if (is_peer_gone(-res)) {
      c->peer_eof = true;
      begin_close(*c, std::strerror(-res));
    } else {
      log_info("worker %u: connection %u: recv: %s; closing it", index_, c->slot(),
               std::strerror(-res));
      begin_close(*c, "recv error");
    }
  }
  progress(*c);
}

void EventLoop::feed(Connection& c, std::string_view bytes) {
  const bool was_paused = c.paused();
  const size_t held_before = c.out.held_bytes();
  const size_t held_other = held_bytes_ - held_before;
  FeedStatus status = FeedStatus::ok;
  bool out_of_memory = false;
  try {
    status = c.feed(bytes, held_other);
  } catch (const std::bad_alloc&) {
    out_of_memory = true;
  }
  held_bytes_ = held_other + c.out.held_bytes();
  if (out_of_memory) {
    drop(c, "out of memory");
  } else if (status == FeedStatus::stash_overflow) {
    drop(c, "too much input while paused");
  } else if (charge_input(c)) {
    after_input(c, was_paused);
    note_mid_request(c);
  }
}

void EventLoop::resume(Connection& c) {
  const size_t held_before = c.out.held_bytes();
  const size_t held_other = held_bytes_ - held_before;
  bool out_of_memory = false;
  try {
    c.resume(held_other);
  } catch (const std::bad_alloc&) {
    out_of_memory = true;
  }
  held_bytes_ = held_other + c.out.held_bytes();
  if (out_of_memory) {
    drop(c, "out of memory");
  } else if (charge_input(c)) {
    after_input(c, false);
    note_mid_request(c);
  }
}

// Brings the connection's charge in the InputBudget up to date; false (and
// the connection dropped) when it no longer fits.
bool EventLoop::charge_input(Connection& c) {
  const size_t held = c.input_held_bytes();
  const uint64_t wanted = held > connection_input_free_bytes ? held - connection_input_free_bytes : 0;
  if (wanted > c.input_charged_bytes) {
    if (!shared_.input_budget.try_charge(wanted - c.input_charged_bytes)) {
      drop(c, "input budget exhausted (too many partial requests buffered)");
      return false;
    }
  } else if (wanted < c.input_charged_bytes) {
    shared_.input_budget.release(c.input_charged_bytes - wanted);
  }
  c.input_charged_bytes = wanted;
  return true;
}

// Stops the recv of a connection that has just paused or refused further input.
void EventLoop::after_input(Connection& c, bool was_paused) {
  const bool stop_reading = c.paused() || c.close_after_reply();
  if (c.paused() && !was_paused) counters_.read_pauses.add();
  if (stop_reading && c.recv_armed && !c.recv_cancel_sent) {
    cancel_request(c, Op::recv);
    c.recv_cancel_sent = true;
  }
}

// Cancels the connection's recv or send by its user_data, never by fd: a
// cancel names no file, so it cannot outlive the connection's fd (finalize
// may close it before the cancel is even submitted, when the request ends
// in the same batch of completions) nor hit whichever connection gets that
// fd number next. The user_data carries the slot's generation, so a cancel
// that arrives late finds nothing (ENOENT), which is all it should do.
void EventLoop::cancel_request(Connection& c, Op op) {
  assert(op == Op::recv || op == Op::send);
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_cancel64(sqe, pack_user_data({op, c.generation(), c.slot()}), 0);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::cancel, c.generation(), c.slot()}));
}

void EventLoop::try_send(Connection& c) {
  if (c.tls) {
    try_send_tls(c);
    return;
  }
  if (c.send_inflight || c.closing || c.out.empty()) return;
  const size_t count = c.out.gather(c.iov, send_iov_max);
  assert(count > 0);
  c.msg = {};
  c.msg.msg_iov = c.iov;
  c.msg.msg_iovlen = count;
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_sendmsg(sqe, c.fd(), &c.msg, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::send, c.generation(), c.slot()}));
  c.send_inflight = true;
}

void EventLoop::on_send(const UserData& data, int32_t res) {
  Connection* c = lookup(data);
  if (c == nullptr) return;
  assert(c->send_inflight);
  c->send_inflight = false;
  if (res > 0) {
    if (c->tls) {
      c->tls->sent(static_cast<size_t>(res));
    } else {
      const size_t held_before = c->out.held_bytes();
      c->out.consume(static_cast<uint64_t>(res));
      held_bytes_ = held_bytes_ - held_before + c->out.held_bytes();
    }
    counters_.bytes_sent.add(static_cast<uint64_t>(res));
    c->last_io_tick = tick_;
  } else if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS || res == -ECANCELED) {
    // Retried below unless closing.
  } else if (res == 0 || is_peer_gone(-res)) {
    c->peer_eof = true;
    begin_close(*c, res == 0 ? "send made no progress" : std::strerror(-res));
  } else {
    log_info("worker %u: connection %u: send: %s; closing it", index_, c->slot(),
             std::strerror(-res));
    begin_close(*c, "send error");
  }
  // After a TLS failure the stash is never answered: only the alert goes out.
  if (!c->closing && may_resume(*c)) {
    resume(*c);
  }
  progress(*c);
}

bool EventLoop::may_resume(const Connection& c) const {
  return c.paused() && !c.close_after_flush && c.may_resume(held_bytes_ - c.out.held_bytes());
}

// Moves a connection on after any event: send what is queued, read again if
// allowed, close once done. Must be the last thing a handler does with c.
void EventLoop::progress(Connection& c) {
  if (!c.closing) {
    try_send(c);
    const bool input_done = c.close_after_reply() || c.close_after_flush;
    if (!c.recv_armed && !c.peer_eof && !c.paused() && c.stash_empty() && !input_done && !stopping_) {
      arm_recv(c);
    }
    bool flushed = c.out.empty() && !c.send_inflight && (!c.tls || !c.tls->has_output());
    if (flushed && c.close_after_reply() && c.tls && c.tls->close_notify()) {
      try_send(c);
      flushed = false;
    }
    if (flushed && input_done) {
      // The refusal (or TLS alert) is sent; FIN rather than RST so the client reads it.
      (void)::shutdown(c.fd(), SHUT_WR);
      begin_close(c, c.close_after_flush ? "TLS error" : c.close_reason());
    } else if (flushed && c.peer_eof && !c.paused() && c.stash_empty()) {
      begin_close(c, "peer closed");
    }
  }
  if (c.closing && !c.recv_armed && !c.send_inflight) finalize(c);
}

void EventLoop::begin_close(Connection& c, const char* reason) {
  if (c.closing) return;
  c.closing = true;
  log_debug("worker %u: connection %u closing: %s", index_, c.slot(), reason);
  if (c.close_cancel_sent) return;
  if (c.recv_armed && !c.recv_cancel_sent) {
    cancel_request(c, Op::recv);
    c.recv_cancel_sent = true;
  }
  if (c.send_inflight) cancel_request(c, Op::send);
  c.close_cancel_sent = true;
}

void EventLoop::drop(Connection& c, const char* reason) {
  log_info("worker %u: connection %u dropped: %s", index_, c.slot(), reason);
  counters_.connections_dropped.add();
  begin_close(c, reason);
}

void EventLoop::finalize(Connection& c) {
  assert(c.closing && !c.recv_armed && !c.send_inflight);
  assert(held_bytes_ >= c.out.held_bytes());
  held_bytes_ -= c.out.held_bytes();
  if (c.input_charged_bytes > 0) shared_.input_budget.release(c.input_charged_bytes);
  if (c.mid_request_listed) unlist_mid_request(c);
  if (c.handshake_listed) unlist_handshake(c);
  if (c.tls && c.tls->established()) {
    (c.tls->version() == TLS1_3_VERSION ? counters_.tls_connections_tls13 : counters_.tls_connections_tls12).sub();
  } else if (c.tls) {
    // Refused, broken, timed out, or given up by the client: a failed handshake.
    counters_.tls_handshake_errors.add();
  }
  ::close(c.fd());
  counters_.connections_open.sub();
  log_debug("worker %u: connection %u closed", index_, c.slot());
  connections_.remove(c.slot());
}

void EventLoop::arm_stop_poll() {
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_poll_add(sqe, shared_.stop_fd, POLLIN);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::stop_poll, 0, 0}));
}

void EventLoop::arm_expire_timer() {
  if (stopping_) return;
  expire_interval_.tv_sec = expire_interval_ms / 1000;
  expire_interval_.tv_nsec = (expire_interval_ms % 1000) * 1000 * 1000;
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_timeout(sqe, &expire_interval_, 0, 0);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::expire_timer, 0, 0}));
}

void EventLoop::on_expire_timer(int32_t res) {
  if (res == -ECANCELED) return;
  ++tick_;
  services_->tick();
  abort_idle_uploads();
  abort_stalled_handshakes();
  arm_expire_timer();
}

// After input was fed: a connection left in the middle of a request joins
// the list abort_idle_uploads() walks. Listed ones cost one flag test.
void EventLoop::note_mid_request(Connection& c) {
  if (c.mid_request_listed || c.closing || !c.mid_request()) return;
  assert(c.mid_request_prev == nullptr && c.mid_request_next == nullptr);
  c.mid_request_listed = true;
  c.mid_request_next = mid_request_head_;
  if (mid_request_head_ != nullptr) mid_request_head_->mid_request_prev = &c;
  mid_request_head_ = &c;
}

void EventLoop::unlist_mid_request(Connection& c) {
  assert(c.mid_request_listed);
  assert(c.mid_request_prev != nullptr || mid_request_head_ == &c);
  (c.mid_request_prev != nullptr ? c.mid_request_prev->mid_request_next : mid_request_head_) =
      c.mid_request_next;
  if (c.mid_request_next != nullptr) c.mid_request_next->mid_request_prev = c.mid_request_prev;
  c.mid_request_prev = nullptr;
  c.mid_request_next = nullptr;
  c.mid_request_listed = false;
}

// Once a tick: closes the listed connections that are still in the middle
// of a request and have neither received nor sent a byte for
// upload_idle_ticks_ whole ticks (so at least upload_idle_ms_max), resumes
// the paused ones that may resume (a session waiting for something of its
// own: it retries), and unlists those no longer in the middle of one or
// closing anyway.
// Closing drops the reservation of a streamed value: its memory returns
// to the store. One log line per tick sums them up, however many there are.
void EventLoop::abort_idle_uploads() {
  uint64_t aborted = 0;
  for (Connection* c = mid_request_head_; c != nullptr;) {
    Connection* const next = c->mid_request_next;
    if (c->closing || !c->mid_request()) {
      unlist_mid_request(*c);
    } else if (tick_ - c->last_io_tick > upload_idle_ticks_) {
      unlist_mid_request(*c);
      ++aborted;
      counters_.upload_aborts.add();
      begin_close(*c, "idle in the middle of a request");
      progress(*c);  // may finalize c; next is another connection
    } else if (may_resume(*c)) {
      // Resuming lists nothing new (c is listed) and may close only c.
      resume(*c);
      progress(*c);
    }
    c = next;
  }
  if (aborted > 0) {
    log_info("worker %u: closed %llu connections idle for %llu s in the middle of a request "
             "(--upload-timeout; STATS UPLOAD_ABORTS)",
             index_, static_cast<unsigned long long>(aborted),
             static_cast<unsigned long long>(shared_.upload_idle_ms_max / 1000));
  }
}

void EventLoop::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  log_debug("worker %u: stopping with %zu connections", index_, connections_.live());
  if (acceptor_) acceptor_->stop();
  std::vector<Connection*> idle;
  connections_.for_each([&](Connection& c) {
    c.closing = true;
    c.close_cancel_sent = true;  // the cancel below covers every request
    if (!c.recv_armed && !c.send_inflight) idle.push_back(&c);
  });
  for (Connection* c : idle) finalize(*c);
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::cancel, 0, 0}));
}

void EventLoop::reap_late_handoffs() {
  // Deferred completions (DEFER_TASKRUN) are posted only when asked for.
  (void)io_uring_get_events(ring_.raw());
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(ring_.raw(), &cqe) == 0 && cqe != nullptr) {
    const UserData data = unpack_user_data(cqe->user_data);
    if (data.op == Op::handoff_received && cqe->res >= 0) ::close(cqe->res);
    io_uring_cqe_seen(ring_.raw(), cqe);
  }
}

}  // namespace ringcache::server
