// Connection: one client of a worker. It owns the reply queue, the input it
// was told to hold back, and the session of its protocol (session.h), which
// parses and answers: a binary or text session, or a replication session
// once a binary connection's first frame was an admitted replication hello
// (the binary session hands over to it). Pausing, stashing and the bounds
// below are the same whatever the session; io/ never learns its protocol.
//
// Never letting one client hurt another (issue 3) comes down to three bounds:
// - a connection stops being read (it "pauses") once its queued replies hold
//   write_queue_bytes_max bytes or pins_max store items, or once the whole
//   worker's reply blocks reach worker_write_queue_bytes_max and this
//   connection has replies of its own waiting (ConnectionPause, session.h). It
//   resumes when its queue has drained to write_queue_resume_bytes
//   (hysteresis: no stop-start per reply);
// - received bytes are parsed straight from the shared receive buffers; only
//   what arrives between a pause and the end of the recv (a few completions,
//   each holding one receive buffer) is copied into the stash, which is
//   capped at input_stash_bytes_max;
// - a session's parser itself holds at most one key or small value
//   (FrameParser::frame_buffer_bytes_max()); what all connections hold
//   beyond a small allowance is capped process-wide (input_budget.h).
// A client that never reads therefore pins at most pins_max items and a
// bounded number of bytes, and costs other connections nothing.
//
// The io fields (recv_armed, send_inflight, ...) belong to the event loop,
// which owns the io_uring side; this class only does the input side. On a
// TLS port the event loop puts the connection's TlsChannel (tls/tls_channel.h)
// between the socket and feed() / `out`: the session sees plaintext only.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/non_copyable.h"
#include "server/io/buffer_ring.h"
#include "server/io/output_queue.h"
#include "server/io/session.h"

namespace ringcache::server {

inline constexpr size_t input_stash_bytes_max = 2 * size_t{recv_buffers_count} * recv_buffer_bytes;
// iovecs per sendmsg: 64 blocks of up to 16 KiB, or 64 store chunks.
inline constexpr size_t send_iov_max = 64;

enum class FeedStatus : uint8_t {
  ok,
  stash_overflow,  // more input arrived while paused than input_stash_bytes_max: close
};

class TlsChannel;

class Connection : NonCopyable {
 public:
  Connection(int fd, uint32_t slot, uint32_t generation, std::unique_ptr<Session> session);
  ~Connection();

  int fd() const { return fd_; }
  uint32_t slot() const { return slot_; }
  uint32_t generation() const { return generation_; }

  // Parses and answers bytes while the connection may produce replies and
  // stashes the rest. worker_held_other = reply bytes held by the worker's
  // other connections.
  FeedStatus feed(std::string_view bytes, size_t worker_held_other);
  // Un-pauses and works through the stash; may pause again.
  void resume(size_t worker_held_other);

  bool paused() const { return paused_; }
  bool may_resume(size_t worker_held_other) const;
  bool stash_empty() const { return stash_head_ == stash_.size(); }
  // A reply asked for the connection to end (a refused replication hello or
  // a broken replication stream; text quit or an unframeable line); further
  // input is discarded.
  bool close_after_reply() const { return close_after_reply_; }
  const char* close_reason() const { return session_->close_reason(); }
  bool at_frame_boundary() const { return session_->at_frame_boundary(); }
  // In the middle of a request (Session::mid_request): what an idle upload is.
  bool mid_request() const { return session_->mid_request(); }
  // Request bytes held here: the session's and the stash (input_budget.h).
  size_t input_held_bytes() const { return session_->held_bytes() + stash_.capacity(); }

  OutputQueue out;

  // io state, owned by EventLoop.
  bool recv_armed = false;
  bool recv_cancel_sent = false;
  bool send_inflight = false;
  bool close_cancel_sent = false;
  bool peer_eof = false;
  bool closing = false;
  uint64_t input_charged_bytes = 0;  // charged to the InputBudget
  // Idle uploads (event_loop.h): the worker tick of the last byte received
  // or sent, and the links of the worker's list of connections seen in the
  // middle of a request.
  uint64_t last_io_tick = 0;
  bool mid_request_listed = false;
  Connection* mid_request_prev = nullptr;
  Connection* mid_request_next = nullptr;
  // TLS (null on a plaintext port) and, while its handshake runs, the
  // links of the worker's list of handshakes with their deadlines.
  std::unique_ptr<TlsChannel> tls;
  // Send what is queued, then close (the TLS layer failed: its alert).
  bool close_after_flush = false;
  bool handshake_listed = false;
  uint64_t handshake_started_tick = 0;
  Connection* handshake_prev = nullptr;
  Connection* handshake_next = nullptr;
  struct iovec iov[send_iov_max] = {};
  struct msghdr msg = {};

 private:
  // Returns the number of input bytes used; stops early when pausing.
  size_t consume(std::string_view input, size_t worker_held_other);

  int fd_;
  uint32_t slot_;
  uint32_t generation_;
  std::unique_ptr<Session> session_;
  std::string stash_;
  size_t stash_head_ = 0;
  bool paused_ = false;
  bool close_after_reply_ = false;
};

}  // namespace ringcache::server
