// ReplicationSession: a binary connection whose first frame was an admitted
// replication hello (BinarySession hands over to it). Every byte from then on
// is the peer's stream, applied by replication::IncomingStream as it
// arrives; it answers nothing but the handshake. It pauses only while a
// streamed value waits for the store's upload budget (IncomingStream says
// wait): the connection is then not read, and is fed again on the worker's
// housekeeping tick (event_loop.h). A byte that is not an opcode, a failed
// proof or a refused version ends it.
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "server/io/session.h"
#include "server/replication/incoming_stream.h"

namespace ringcache::server {

class ReplicationSession final : public Session {
 public:
  explicit ReplicationSession(std::unique_ptr<replication::IncomingStream> stream) : stream_(std::move(stream)) {}

  ConsumeResult consume(std::string_view input, OutputQueue& out, const PauseCheck&) override {
    ConsumeResult result;
    std::string reply;
    const replication::StreamStatus status = stream_->feed(input, reply, result.used);
    result.close_after_reply = status == replication::StreamStatus::close;
    result.paused = status == replication::StreamStatus::wait;
    // A waiting stream is in the middle of a value: what bounds the wait.
    assert(!(result.paused && stream_->at_frame_boundary()));
    if (!reply.empty()) out.append(reply);
    return result;
  }
  std::unique_ptr<Session> take_successor() override { return nullptr; }

  bool at_frame_boundary() const override { return stream_->at_frame_boundary(); }
  bool mid_request() const override { return !stream_->at_frame_boundary(); }
  size_t held_bytes() const override { return stream_->buffered_bytes(); }
  const char* close_reason() const override { return "replication stream broken"; }

 private:
  std::unique_ptr<replication::IncomingStream> stream_;
};

}  // namespace ringcache::server
