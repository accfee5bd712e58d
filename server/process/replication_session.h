// ReplicationSession: a binary connection whose first frame was an admitted
// replication hello (BinarySession hands over to it). Every byte from then on
// is the peer's stream, applied by replication::IncomingStream as it
// arrives; it answers nothing but the handshake, so it never pauses. A byte
// that is not an opcode, a failed proof or a refused version ends it.
#pragma once

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
    result.used = input.size();
    std::string reply;
    if (stream_->feed(input, reply) == replication::StreamStatus::close) result.close_after_reply = true;
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
