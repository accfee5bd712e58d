// TextSession: the text-protocol side of one connection (the text port):
// its TextParser and the request state that outlives one parser event (a
// streamed value, the unanswered keys of a paused multi-get). It answers one
// event at a time, checking between events (and between the keys of a
// multi-get) whether the connection must pause.
//
// With --auth-file (auth.h) it follows memcached's authfile convention:
// until a `set` whose data block is "user password" succeeds, that set is
// the only command acted on; every other request (its data block, if any,
// read in full and dropped) is answered `CLIENT_ERROR unauthenticated`.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "common/non_copyable.h"
#include "server/io/output_queue.h"
#include "server/io/session.h"
#include "server/process/auth.h"
#include "server/protocol/text/text_parser.h"
#include "server/process/text_process.h"

namespace ringcache::server {

class TextSession final : public Session, NonCopyable {
 public:
  TextSession(TextProcessor& processor, const ConnectionAuth& auth);

  ConsumeResult consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) override;
  std::unique_ptr<Session> take_successor() override { return nullptr; }

  bool at_frame_boundary() const override {
    return parser_.at_frame_boundary() && !state_.stream.active && !draining_ && !has_pending();
  }
  // Part of a request has arrived and more is to come: a partial line, or
  // a data block still streaming. (A paused multi-get is not: its request
  // is whole, only its answers wait.)
  bool mid_request() const override {
    return !parser_.at_frame_boundary() || state_.stream.active || draining_;
  }
  // Request bytes held: the parser's buffer, a gathered append, pending keys.
  size_t held_bytes() const override { return parser_.buffered_bytes() + state_.held_bytes(); }
  const char* close_reason() const override { return "quit, a line too long, or failed authentication"; }

 private:
  struct Step {
    size_t used = 0;         // input bytes consumed
    bool need_more = false;  // all input consumed; nothing pending
    bool close = false;      // quit or an unframeable line: flush the replies, then close
  };

  // Answers more keys of a paused multi-get if there are any, otherwise
  // parses and answers at most one event of `input`.
  Step step(std::string_view input, OutputQueue& out, const PauseCheck& pause);
  // Between requests: hands the keys of the whole requests at the start of
  // `input` to the store's prefetch (pipelined requests, see
  // StoreThread::prefetch).
  void prefetch(std::string_view input);
  // An event of a connection not authenticated yet; true to close after the reply.
  bool unauthenticated(const protocol::text::Event& event, OutputQueue& out);
  // The data block of a `set` before authentication: "user password".
  bool try_credentials(std::string_view data, OutputQueue& out);
  // A failed attempt without usable credentials, answered `line`; true to close.
  bool refuse_attempt(std::string_view line, OutputQueue& out);
  // Keys of a multi-get are still to be answered (even with no input left).
  bool has_pending() const { return !state_.retrieval.empty(); }

  TextProcessor& processor_;
  protocol::text::TextParser parser_;
  TextRequestState state_;
  ConnectionAuth auth_;
  // A data block too long to hold credentials, read and dropped before
  // authentication; draining_set_: it belongs to a `set` (an attempt).
  bool draining_ = false;
  bool draining_set_ = false;
};

}  // namespace ringcache::server
