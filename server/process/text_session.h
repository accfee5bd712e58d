// TextSession: the text-protocol side of one connection (the text port):
// its TextParser and the request state that outlives one parser event (a
// streamed value, the unanswered keys of a paused multi-get). It answers one
// event at a time, checking between events (and between the keys of a
// multi-get) whether the connection must pause.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "server/io/output_queue.h"
#include "server/io/session.h"
#include "server/protocol/text/text_parser.h"
#include "server/process/text_process.h"

namespace ringcache::server {

class TextSession final : public Session {
 public:
  explicit TextSession(TextProcessor& processor);
  TextSession(const TextSession&) = delete;
  TextSession& operator=(const TextSession&) = delete;

  ConsumeResult consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) override;
  std::unique_ptr<Session> take_successor() override { return nullptr; }

  bool at_frame_boundary() const override {
    return parser_.at_frame_boundary() && !state_.stream.active && !has_pending();
  }
  // Part of a request has arrived and more is to come: a partial line, or
  // a data block still streaming. (A paused multi-get is not: its request
  // is whole, only its answers wait.)
  bool mid_request() const override { return !parser_.at_frame_boundary() || state_.stream.active; }
  // Request bytes held: the parser's buffer, a gathered append, pending keys.
  size_t held_bytes() const override { return parser_.buffered_bytes() + state_.held_bytes(); }
  const char* close_reason() const override { return "quit, or a line too long"; }

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
  // Keys of a multi-get are still to be answered (even with no input left).
  bool has_pending() const { return !state_.retrieval.empty(); }

  TextProcessor& processor_;
  protocol::text::TextParser parser_;
  TextRequestState state_;
};

}  // namespace ringcache::server
