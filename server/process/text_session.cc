#include "server/process/text_session.h"

#include <algorithm>
#include <cassert>
#include <iterator>

#include "server/protocol/text/text_peek.h"

namespace ringcache::server {

namespace {

using protocol::text::Command;
using protocol::text::EventKind;

constexpr std::string_view unauthenticated_line = "CLIENT_ERROR unauthenticated\r\n";
constexpr std::string_view auth_failure_line = "CLIENT_ERROR authentication failure\r\n";
constexpr std::string_view auth_format_line = "CLIENT_ERROR bad authentication token format\r\n";

// The next space-separated token of `text` (runs of spaces are one separator).
std::string_view next_token(std::string_view& text) {
  const size_t start = std::min(text.find_first_not_of(' '), text.size());
  text.remove_prefix(start);
  const size_t end = std::min(text.find(' '), text.size());
  const std::string_view token = text.substr(0, end);
  text.remove_prefix(end);
  return token;
}

}  // namespace

TextSession::TextSession(TextProcessor& processor, const ConnectionAuth& auth)
    : processor_(processor), parser_(processor.parser_limits()), auth_(auth) {}

void TextSession::prefetch(std::string_view input) {
  if (!at_frame_boundary() || !auth_.authenticated()) return;
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
  if (!auth_.authenticated()) {
    step.close = unauthenticated(event, out);
    return step;
  }
  step.close = processor_.process(event, state_, out, pause) == TextResult::close;
  return step;
}

bool TextSession::unauthenticated(const protocol::text::Event& event, OutputQueue& out) {
  // memcached answers even with noreply: a client must learn why it is refused.
  switch (event.kind) {
    case EventKind::request:
      if (event.command == Command::quit) return true;
      if (event.command == Command::set) return try_credentials(event.data, out);
      out.append(unauthenticated_line);
      return false;
    case EventKind::value_begin:
      draining_ = true;
      draining_set_ = event.command == Command::set;
      return false;
    case EventKind::value_data:
      assert(draining_);
      return false;
    case EventKind::value_end: {
      assert(draining_);
      draining_ = false;
      if (!draining_set_) {
        out.append(unauthenticated_line);
        return false;
      }
      // Longer than any auth file line: not credentials.
      return refuse_attempt(auth_failure_line, out);
    }
    case EventKind::error: {
      draining_ = false;  // only bad_data_chunk ends a data block early
      if (event.command == Command::set && event.error == protocol::text::Error::too_large) {
        // A set whose data block was read (and skipped): an attempt, like a long one.
        return refuse_attempt(auth_failure_line, out);
      }
      out.append(unauthenticated_line);
      return event.error == protocol::text::Error::line_too_long;
    }
    case EventKind::need_more:
      break;
  }
  assert(false && "need_more is not a request");
  return false;
}

bool TextSession::try_credentials(std::string_view data, OutputQueue& out) {
  const std::string_view user = next_token(data);
  const std::string_view password = next_token(data);
  if (password.empty()) return refuse_attempt(auth_format_line, out);
  const AuthAttempt attempt = auth_.attempt(user, password);
  out.append(attempt == AuthAttempt::accepted ? std::string_view("STORED\r\n") : auth_failure_line);
  return attempt == AuthAttempt::refused_close;
}

bool TextSession::refuse_attempt(std::string_view line, OutputQueue& out) {
  const bool close = auth_.refuse() == AuthAttempt::refused_close;
  out.append(line);
  return close;
}

}  // namespace ringcache::server
