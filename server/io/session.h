// Session: the protocol side of one connection, all that io/ knows of it.
//
// Connection (connection.h) owns one session and hands it the bytes it
// receives; the session parses them, answers into the connection's
// OutputQueue, and stops when it needs more bytes, when the connection must
// pause (PauseCheck), or after a reply that ends the connection. A session
// may hand the connection over to another session (the binary port's first
// frame is a replication hello: process/binary_session.h hands over to
// process/replication_session.h). The sessions live in process/; io/ never
// learns which protocol one speaks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "server/io/output_queue.h"

namespace ringcache::server {

// The bounds of a connection's replies (connection.h explains them).
inline constexpr size_t write_queue_bytes_max = 4 * 1024 * 1024;
inline constexpr size_t write_queue_resume_bytes = 1024 * 1024;
inline constexpr uint32_t pins_max = 2;
inline constexpr size_t worker_write_queue_bytes_max = 8 * 1024 * 1024;

// Whether the connection must stop producing replies now. Asked between
// requests (and between the keys of a multi-get); an interface so that
// processor tests can pause where they like.
class PauseCheck {
 public:
  virtual bool must_pause() const = 0;

 protected:
  ~PauseCheck() = default;
};

// A connection's own bounds: it must pause once its queue holds
// write_queue_bytes_max bytes or pins_max pins, or once the worker's reply
// blocks reach worker_write_queue_bytes_max while it has replies of its
// own waiting.
class ConnectionPause final : public PauseCheck {
 public:
  // worker_held_other: reply bytes held by the worker's other connections.
  ConnectionPause(const OutputQueue& out, size_t worker_held_other)
      : out_(out), worker_held_other_(worker_held_other) {}

  bool must_pause() const override {
    const size_t held = out_.held_bytes();
    if (held >= write_queue_bytes_max || out_.pins() >= pins_max) return true;
    // A connection with nothing queued may always add a reply, so the worker
    // budget can never stop every connection at once.
    return !out_.empty() && worker_held_other_ + held >= worker_write_queue_bytes_max;
  }

 private:
  const OutputQueue& out_;
  size_t worker_held_other_;
};

// What one Session::consume() did.
struct ConsumeResult {
  size_t used = 0;                 // input bytes consumed
  // Stopped because the connection must pause, or because the session
  // waits for something outside the connection (a store budget): then it
  // must be in the middle of a request (mid_request), and the connection
  // feeds it again (with what it did not use) on the next housekeeping tick
  // once nothing of its own holds it back (event_loop.h). The idle-upload
  // limit bounds that wait.
  bool paused = false;
  bool close_after_reply = false;  // send what is queued, then close; the rest of the input is not answered
  bool handed_over = false;        // take_successor() continues with the rest of the input
};

class Session {
 public:
  virtual ~Session() = default;

  // Parses and answers requests at the start of `input` in order. Called
  // with empty input too when a request may still have work without more
  // bytes (a streamed value's end, the keys of a paused multi-get). May
  // throw std::bad_alloc: the connection is closed then.
  virtual ConsumeResult consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) = 0;
  // After consume() said handed_over: the session for the rest of the
  // connection (called once; this one is destroyed next).
  virtual std::unique_ptr<Session> take_successor() = 0;

  // Between requests: nothing of a request has arrived that awaits more.
  virtual bool at_frame_boundary() const = 0;
  // Part of a request has arrived and more is to come (a partial key or
  // line, a streamed value or data block, a replication frame): what an
  // idle upload is (server/resource_limits.h). A connection between
  // requests, even one paused with input stashed, is not.
  virtual bool mid_request() const = 0;
  // Request bytes held (parser buffers, gathered values, pending keys),
  // charged to the input budget (input_budget.h).
  virtual size_t held_bytes() const = 0;
  // For the log line when close_after_reply ends the connection.
  virtual const char* close_reason() const = 0;
};

}  // namespace ringcache::server
