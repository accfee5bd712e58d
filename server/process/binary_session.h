// BinarySession: the binary protocol side of one connection (the binary
// port): its frame parser and a PUT whose value is still streaming in. Each
// parsed frame goes to the worker's BinaryProcessor (binary_process.h).
// When the connection's first frame is a replication hello that replication
// admits, the session hands the connection over to a ReplicationSession
// (replication_session.h); a refused one is answered EINVAL and closes.
// With --auth-file (auth.h), the session answers AUTH itself, and until the
// connection is authenticated it reads every other request in full (a
// streamed value is drained, never stored) and answers it EINVAL.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "server/io/session.h"
#include "server/process/auth.h"
#include "server/process/binary_process.h"
#include "server/protocol/binary/binary_parser.h"

namespace ringcache::server {

class TlsChannel;

class BinarySession final : public Session {
 public:
  // fd: the connection's socket, asked for the peer's address if a
  // replication hello arrives; tls: its channel (nullptr: plaintext),
  // asked whether the peer's certificate verified.
  BinarySession(BinaryProcessor& processor, const protocol::ParserLimits& limits, int fd, const TlsChannel* tls,
                const ConnectionAuth& auth)
      : processor_(processor), parser_(limits), fd_(fd), tls_(tls), auth_(auth) {}

  ConsumeResult consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) override;
  std::unique_ptr<Session> take_successor() override { return std::move(successor_); }

  bool at_frame_boundary() const override {
    return parser_.at_frame_boundary() && !put_.active && !draining_;
  }
  bool mid_request() const override { return !at_frame_boundary(); }
  size_t held_bytes() const override { return parser_.buffered_bytes(); }
  const char* close_reason() const override { return close_reason_; }

 private:
  // False after queueing the refusal (then close).
  bool open_replication(std::string_view hello, OutputQueue& out);
  // AUTH, or a request before authentication; false to close after the reply.
  bool answer_auth(const protocol::Event& event, OutputQueue& out);
  void refuse_unauthenticated(const protocol::Event& event, OutputQueue& out);

  BinaryProcessor& processor_;
  protocol::FrameParser parser_;
  PutStream put_;
  int fd_;
  const TlsChannel* tls_;
  ConnectionAuth auth_;
  // An unauthenticated PUT's value is being read and dropped (answered at its put_end).
  bool draining_ = false;
  const char* close_reason_ = "replication hello refused";
  std::unique_ptr<Session> successor_;
};

}  // namespace ringcache::server
