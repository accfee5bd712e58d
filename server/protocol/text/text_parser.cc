#include "server/protocol/text/text_parser.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "server/protocol/lies_within.h"
#include "server/protocol/text/text_command.h"

namespace ringcache::protocol::text {

namespace {

// First allocation for a split line or value (capped at what the request can
// still need), so that bytes arriving a few at a time do not reallocate per byte.
constexpr uint64_t buffer_growth_bytes_min = 256;
constexpr std::string_view data_terminator = "\r\n";

std::string_view strip_carriage_return(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

TextParser::TextParser(const ParserLimits& limits) : limits_(limits) {
  assert(limits_.line_bytes_max <= limits_.retrieval_line_bytes_max);
}

uint64_t TextParser::frame_buffer_bytes_max() const {
  // A partial line may hold one byte past its limit (a '\r' whose '\n' is
  // still to come); a storage line holds its text, the inline value and "\r\n".
  const uint64_t partial_line_bytes = uint64_t{limits_.retrieval_line_bytes_max} + 1;
  const uint64_t storage_bytes = uint64_t{limits_.line_bytes_max} + limits_.inline_value_bytes_max + 2;
  return std::max(partial_line_bytes, storage_bytes);
}

bool TextParser::at_frame_boundary() const {
  return state_ == State::closed || (state_ == State::line && (buffer_size_ == 0 || release_pending_));
}

bool TextParser::in_own_buffer(std::string_view view) const {
  return lies_within(view, buffer_.get(), buffer_size_) || lies_within(view, decoded_key_.data(), decoded_key_.size());
}

uint32_t TextParser::line_limit_bytes(std::string_view line_start) const {
  return starts_retrieval_command(line_start, limits_.line_bytes_max) ? limits_.retrieval_line_bytes_max
                                                                      : limits_.line_bytes_max;
}

bool TextParser::partial_line_too_long() const {
  assert(state_ == State::line);
  assert(buffer_size_ > 0);
  // The line is at least this long whatever comes next: a last '\r' may still
  // turn out to end it.
  const std::string_view held(buffer_.get(), buffer_size_);
  const size_t length_min = held.back() == '\r' ? held.size() - 1 : held.size();
  return length_min > limits_.line_bytes_max && length_min > line_limit_bytes(held);
}

Event TextParser::next(std::string_view input, size_t& consumed) {
  if (release_pending_) release_buffer();

  size_t pos = 0;
  Event event;
  while (step(input, pos, event) == Step::again) {
  }
  if (event.kind == EventKind::need_more) {
    assert(pos == input.size());
  } else {
    assert(pos > 0);
    assert(!(pos > input.size()));
  }
  consumed = pos;
  return event;
}

inline TextParser::Step TextParser::step(std::string_view input, size_t& pos, Event& event) {
  // The state functions fill in a fresh event field by field (see FrameParser::step).
  assert(event.kind == EventKind::need_more);
  assert(!(pos > input.size()));
  switch (state_) {
    case State::line:
      return read_line(input, pos, event);
    case State::value:
      return read_inline_value(input, pos, event);
    case State::value_stream:
      return stream_value(input, pos, event);
    case State::value_terminator:
      return read_value_terminator(input, pos, event);
    case State::swallow:
      return swallow_data_block(input, pos);
    case State::closed:
      pos = input.size();
      return Step::done;
  }
  assert(false && "every state is handled above");
  return Step::done;
}

inline TextParser::Step TextParser::read_line(std::string_view input, size_t& pos, Event& event) {
  // A line that handed out an event is released before the next call reads on.
  assert(!release_pending_);
  assert(!(buffer_size_ > uint64_t{limits_.retrieval_line_bytes_max} + 1));
  if (pos == input.size()) return Step::done;
  const size_t available = input.size() - pos;
  const auto* newline = static_cast<const char*>(std::memchr(input.data() + pos, '\n', available));
  const size_t take = newline != nullptr ? static_cast<size_t>(newline - (input.data() + pos)) : available;
  if (newline != nullptr && buffer_size_ == 0) {
    // The common case: the whole line lies in this input; parse it in place.
    const std::string_view line = strip_carriage_return(input.substr(pos, take));
    pos += take + 1;
    return on_line(line, false, input, pos, event);
  }
  return gather_line(input, pos, take, newline != nullptr, event);
}

// A line split across inputs (or the start of one) is gathered in buffer_.
inline TextParser::Step TextParser::gather_line(std::string_view input, size_t& pos, size_t take, bool line_ends,
                                         Event& event) {
  assert(take <= input.size() - pos);
  assert(!(line_ends && take == input.size() - pos));
  if (buffer_size_ + take > uint64_t{limits_.retrieval_line_bytes_max} + 1) {
    pos += take;
    return refuse_long_line(event);
  }
  grow_buffer(buffer_size_ + take, uint64_t{limits_.retrieval_line_bytes_max} + 1);
  append_buffer(input.substr(pos, take));
  pos += take;
  if (!line_ends) {
    if (partial_line_too_long()) return refuse_long_line(event);
    return Step::done;
  }
  ++pos;
  const std::string_view line = strip_carriage_return(std::string_view(buffer_.get(), buffer_size_));
  buffer_size_ = line.size();
  return on_line(line, true, input, pos, event);
}

// line_too_long: the request cannot be framed, so neither can anything after it.
inline TextParser::Step TextParser::refuse_long_line(Event& event) {
  release_buffer();
  state_ = State::closed;
  event.kind = EventKind::error;
  event.error = Error::line_too_long;
  return Step::done;
}

inline TextParser::Step TextParser::read_inline_value(std::string_view input, size_t& pos, Event& event) {
  const uint64_t frame_bytes = line_bytes_ + request_.value_size + data_terminator.size();
  assert(buffer_size_ < frame_bytes);
  assert(!(request_.value_size > limits_.inline_value_bytes_max));
  const auto take = static_cast<size_t>(std::min<uint64_t>(frame_bytes - buffer_size_, input.size() - pos));
  grow_buffer(buffer_size_ + take, frame_bytes);
  append_buffer(input.substr(pos, take));
  pos += take;
  if (buffer_size_ < frame_bytes) return Step::done;
  release_pending_ = true;
  state_ = State::line;
  finish_inline_value(std::string_view(buffer_.get() + line_bytes_, buffer_size_ - line_bytes_), event);
  return Step::done;
}

inline TextParser::Step TextParser::stream_value(std::string_view input, size_t& pos, Event& event) {
  if (pos == input.size()) return Step::done;
  assert(remaining_ > 0);
  assert(!(remaining_ > request_.value_size));
  const auto take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
  event.kind = EventKind::value_data;
  event.command = request_.command;
  event.data = input.substr(pos, take);
  pos += take;
  remaining_ -= take;
  if (remaining_ == 0) {
    state_ = State::value_terminator;
    terminator_have_ = 0;
  }
  return Step::done;
}

inline TextParser::Step TextParser::read_value_terminator(std::string_view input, size_t& pos, Event& event) {
  assert(terminator_have_ < terminator_.size());
  assert(!(remaining_ > 0));
  while (terminator_have_ < terminator_.size() && pos < input.size()) terminator_[terminator_have_++] = input[pos++];
  if (terminator_have_ < terminator_.size()) return Step::done;
  state_ = State::line;
  release_pending_ = true;
  if (std::string_view(terminator_.data(), terminator_.size()) != data_terminator) {
    set_error(Error::bad_data_chunk, event);
    return Step::done;
  }
  event = request_;
  event.kind = EventKind::value_end;
  return Step::done;
}

inline TextParser::Step TextParser::swallow_data_block(std::string_view input, size_t& pos) {
  const auto take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
  pos += take;
  remaining_ -= take;
  if (remaining_ > 0) return Step::done;
  state_ = State::line;
  return Step::again;
}

// A complete line: parse it, then either hand out its event (done) or move
// on to its data block (again: an inline value not yet complete in this input).
inline TextParser::Step TextParser::on_line(std::string_view line, bool line_in_buffer, std::string_view input, size_t& pos,
                                     Event& event) {
  assert(state_ == State::line);
  assert(!(line_in_buffer && buffer_size_ != line.size()));
  if (line.size() > line_limit_bytes(line)) return refuse_long_line(event);
  const LineOutcome outcome = parse_command_line(line, limits_, event, meta_, decoded_key_);
  if (line_in_buffer) release_pending_ = true;
  if (event.kind == EventKind::error) {
    if (outcome.data_follows) {
      state_ = State::swallow;
      remaining_ = event.value_size + data_terminator.size();
    }
    return Step::done;
  }
  if (event.command == Command::quit) {
    state_ = State::closed;
    return Step::done;
  }
  if (!outcome.data_follows) return Step::done;

  request_ = event;
  line_bytes_ = line.size();
  const uint64_t block_bytes = event.value_size + data_terminator.size();
  if (event.value_size <= limits_.inline_value_bytes_max) {
    if (!line_in_buffer && input.size() - pos >= block_bytes) {
      const std::string_view block = input.substr(pos, static_cast<size_t>(block_bytes));
      pos += block.size();
      finish_inline_value(block, event);
      return Step::done;
    }
    // The value must be gathered behind the line, which therefore moves into
    // (or stays in) the buffer; the request's views follow it.
    if (!line_in_buffer) stash_line(line, line.size() + block_bytes);
    release_pending_ = false;
    state_ = State::value;
    event = Event{};
    return Step::again;
  }
  // Streamed: the line is kept so that value_end can carry the request again.
  if (!line_in_buffer) stash_line(line, line.size());
  release_pending_ = false;
  state_ = State::value_stream;
  remaining_ = event.value_size;
  assert(remaining_ > 0);
  event = request_;
  event.kind = EventKind::value_begin;
  return Step::done;
}

void TextParser::finish_inline_value(std::string_view value_and_terminator, Event& event) {
  assert(value_and_terminator.size() == request_.value_size + data_terminator.size());
  assert(!(request_.value_size > limits_.inline_value_bytes_max));
  state_ = State::line;
  const auto value_size = static_cast<size_t>(request_.value_size);
  if (value_and_terminator.substr(value_size) != data_terminator) {
    set_error(Error::bad_data_chunk, event);
    return;
  }
  event = request_;
  event.data = value_and_terminator.substr(0, value_size);
}

// An error reply for the request being read (its command and noreply).
void TextParser::set_error(Error error, Event& event) const {
  event = Event{};
  event.kind = EventKind::error;
  event.error = error;
  event.command = request_.command;
  event.noreply = request_.noreply;
}

void TextParser::stash_line(std::string_view line, uint64_t frame_bytes) {
  assert(buffer_size_ == 0);
  grow_buffer(line.size(), frame_bytes);
  append_buffer(line);
  rebase_request(line.data(), line.size(), buffer_.get());
}

void TextParser::grow_buffer(uint64_t needed_bytes, uint64_t frame_bytes) {
  assert(needed_bytes <= frame_bytes);
  if (needed_bytes <= buffer_capacity_) return;
  // Grow with the bytes that actually arrived, not with an announced size:
  // a peer that sends only a large byte count costs nothing. Doubling keeps
  // the copies linear; capping at the frame keeps buffered_bytes() bounded.
  const uint64_t doubled = std::max<uint64_t>(buffer_capacity_ * 2, buffer_growth_bytes_min);
  const auto capacity = static_cast<size_t>(std::min(frame_bytes, std::max(needed_bytes, doubled)));
  assert(capacity <= frame_buffer_bytes_max());
  auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
  if (buffer_size_ > 0) std::memcpy(bigger.get(), buffer_.get(), buffer_size_);
  buffer_.swap(bigger);
  buffer_capacity_ = capacity;
  // A request gathering its value has views into the old buffer (still alive here).
  if (state_ == State::value) rebase_request(bigger.get(), buffer_size_, buffer_.get());
}

void TextParser::append_buffer(std::string_view bytes) {
  assert(buffer_size_ + bytes.size() <= buffer_capacity_);
  if (bytes.empty()) return;
  std::memcpy(buffer_.get() + buffer_size_, bytes.data(), bytes.size());
  buffer_size_ += bytes.size();
}

void TextParser::rebase_request(const char* old_begin, size_t old_size, const char* new_begin) {
  assert(new_begin != nullptr);
  assert(!(old_size > 0 && old_begin == nullptr));
  const auto move = [&](std::string_view& view) {
    if (!lies_within(view, old_begin, old_size)) return;
    view = std::string_view(new_begin + (view.data() - old_begin), view.size());
  };
  move(request_.key);
  move(request_.keys);
  move(request_.data);
  move(meta_.key_token);
  move(meta_.opaque);
}

void TextParser::release_buffer() {
  // Nothing is retained between requests: an idle connection holds no buffer.
  buffer_.reset();
  buffer_capacity_ = 0;
  buffer_size_ = 0;
  release_pending_ = false;
}

}  // namespace ringcache::protocol::text
