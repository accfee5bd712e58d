#include "server/process/text_session.h"

#include <cassert>
#include <iterator>

#include "server/protocol/text/text_peek.h"

namespace ringcache::server {

TextSession::TextSession(TextProcessor& processor)
    : processor_(processor), parser_(processor.parser_limits()) {}

void TextSession::prefetch(std::string_view input) {
  if (!at_frame_boundary()) return;
  std::string_view keys[store::StoreThread::prefetch_keys_max];
  const size_t n = protocol::text::peek_text_keys(input, keys, std::size(keys));
  if (n > 1) processor_.prefetch({keys, n});
}

ConsumeResult TextSession::consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) {
  ConsumeResult result;
  prefetch(input);
  // A paused multi-get still has keys to answer even when no input is left.
  while (result.used < input.size() || has_pending()) {
    if (pause.must_pause()) {
      result.paused = true;
      return result;
    }
    const Step step = this->step(input.substr(result.used), out, pause);
    result.used += step.used;
    if (step.close) {
      result.close_after_reply = true;
      return result;
    }
    if (step.need_more) return result;
  }
  return result;
}

TextSession::Step TextSession::step(std::string_view input, OutputQueue& out, const PauseCheck& pause) {
  Step step;
  if (has_pending()) {
    // Replies stay in request order: the paused multi-get finishes before
    // anything after it is parsed.
    processor_.continue_retrieval(state_, out, pause);
    return step;
  }
  const protocol::text::Event event = parser_.next(input, step.used);
  assert(step.used <= input.size());
  if (event.kind == protocol::text::EventKind::need_more) {
    step.need_more = true;
    return step;
  }
  step.close = processor_.process(event, state_, out, pause) == TextResult::close;
  return step;
}

}  // namespace ringcache::server
