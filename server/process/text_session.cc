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
