#include "server/protocol/binary/binary_parser.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "server/protocol/lies_within.h"

namespace ringcache::protocol {

namespace {

constexpr size_t length_field_bytes = 4;
// First allocation for a split field (capped at the field's own size), so
// that a field arriving a few bytes at a time does not reallocate per byte.
constexpr uint64_t buffer_growth_bytes_min = 256;

uint32_t decode_length(const unsigned char* bytes) {
  return static_cast<uint32_t>(bytes[0]) << 24 | static_cast<uint32_t>(bytes[1]) << 16 |
         static_cast<uint32_t>(bytes[2]) << 8 | static_cast<uint32_t>(bytes[3]);
}

}  // namespace

size_t peek_frame_keys(std::string_view input, std::string_view* keys, size_t max) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(input.data());
  const size_t size = input.size();
  size_t pos = 0;
  size_t found = 0;
  // Reads a length and the field it announces; false when not all there.
  const auto field = [&](std::string_view& out) {
    if (size - pos < length_field_bytes) return false;
    const uint32_t length = decode_length(bytes + pos);
    pos += length_field_bytes;
    if (size - pos < length) return false;
    out = input.substr(pos, length);
    pos += length;
    return true;
  };
  assert(keys != nullptr || max == 0);
  while (found < max && pos < size) {
    const uint8_t opcode = bytes[pos++];
    if (opcode == static_cast<uint8_t>(Opcode::stats)) continue;
    if (opcode != static_cast<uint8_t>(Opcode::get) && opcode != static_cast<uint8_t>(Opcode::del) &&
        opcode != static_cast<uint8_t>(Opcode::put)) {
      break;
    }
    std::string_view key;
    if (!field(key)) break;
    std::string_view value;
    if (opcode == static_cast<uint8_t>(Opcode::put) && !field(value)) break;
    keys[found++] = key;
  }
  assert(found <= max);
  assert(!(pos > size));
  return found;
}

FrameParser::FrameParser(const ParserLimits& limits) : limits_(limits) {}

uint64_t FrameParser::frame_buffer_bytes_max() const {
  return std::max<uint64_t>(limits_.item_bytes_max, limits_.inline_value_bytes_max);
}

uint64_t FrameParser::buffer_bytes_max() const {
  const uint64_t auth_bytes = limits_.auth ? 2 * uint64_t{ParserLimits::auth_field_bytes_max} : 0;
  return std::max({frame_buffer_bytes_max(), uint64_t{ParserLimits::repl_hello_bytes_max}, auth_bytes});
}

bool FrameParser::at_frame_boundary() const {
  return state_ == State::opcode || state_ == State::closed;
}

size_t FrameParser::buffered_bytes() const { return buffer_capacity_; }

bool FrameParser::in_own_buffer(std::string_view view) const {
  return lies_within(view, buffer_.get(), buffer_size_);
}

Event FrameParser::next(std::string_view input, size_t& consumed) {
  if (release_pending_) release_frame();
  // A key kept as a view into the previous input would dangle now; need_more
  // exits copy such a key into buffer_ first.
  key_in_input_ = {};
  assert(key_in_buffer_ || state_ != State::value_length);
  assert(key_in_buffer_ || state_ != State::value_bytes);

  size_t pos = 0;
  Event event;
  while (step(input, pos, event) == Step::again) {
  }
  assert(pos <= input.size());
  if (event.kind == EventKind::need_more) {
    assert(pos == input.size());
    if (state_ == State::value_length || state_ == State::value_bytes) stash_key();
  } else {
    assert(pos > 0 || event.kind == EventKind::put_end);
  }
  consumed = pos;
  return event;
}

inline FrameParser::Step FrameParser::step(std::string_view input, size_t& pos, Event& event) {
  // The state functions fill in a fresh event: writing its fields in place
  // (not assigning a whole temporary) keeps the hot path free of a
  // store-forwarding stall on the event's first bytes.
  assert(event.kind == EventKind::need_more);
  assert(!(pos > input.size()));
  switch (state_) {
    case State::opcode:
      return read_opcode(input, pos, event);
    case State::key_length:
      return read_key_length(input, pos, event);
    case State::key_bytes:
      return read_key(input, pos, event);
    case State::value_length:
      return read_value_length(input, pos, event);
    case State::value_bytes:
      return read_value(input, pos, event);
    case State::value_stream:
      return stream_value(input, pos, event);
    case State::value_stream_end:
      state_ = State::opcode;
      event.kind = EventKind::put_end;
      return Step::done;
    case State::skip_key:
    case State::skip_value_bytes:
      return skip_bytes(input, pos);
    case State::skip_value_length:
      return skip_value_length(input, pos);
    case State::hello_length:
      return read_hello_length(input, pos, event);
    case State::hello_bytes:
      return read_hello(input, pos, event);
    case State::closed:
      pos = input.size();
      return Step::done;
  }
  assert(false && "every state is handled above");
  return Step::done;
}

inline FrameParser::Step FrameParser::read_opcode(std::string_view input, size_t& pos, Event& event) {
  // Every frame's buffer was released before the call that reads the next opcode.
  assert(buffer_size_ == 0);
  assert(!key_in_buffer_);
  if (pos == input.size()) return Step::done;
  const auto byte = static_cast<uint8_t>(input[pos++]);
  const bool first = first_byte_;
  first_byte_ = false;
  if (first && byte == static_cast<uint8_t>(Opcode::repl_hello)) {
    state_ = State::hello_length;
    return Step::again;
  }
  switch (byte) {
    case static_cast<uint8_t>(Opcode::put):
    case static_cast<uint8_t>(Opcode::del):
    case static_cast<uint8_t>(Opcode::get):
      opcode_ = static_cast<Opcode>(byte);
      state_ = State::key_length;
      return Step::again;
    case static_cast<uint8_t>(Opcode::stats):
      event.kind = EventKind::stats;
      return Step::done;
    case static_cast<uint8_t>(Opcode::auth):
      if (limits_.auth) {
        opcode_ = Opcode::auth;
        state_ = State::key_length;
        return Step::again;
      }
      [[fallthrough]];
    default:
      event.kind = EventKind::invalid_opcode;
      event.byte = byte;
      return Step::done;
  }
}

// A length over field_bytes_max() is answered once (too_big, or auth_too_big
// for AUTH) and the field it announces is skipped in `skip_state`; false when
// the length is acceptable.
inline bool FrameParser::refuse_too_big(uint32_t length, State skip_state, Event& event) {
  if (length <= field_bytes_max()) return false;
  state_ = skip_state;
  remaining_ = length;
  event.kind = opcode_ == Opcode::auth ? EventKind::auth_too_big : EventKind::too_big;
  return true;
}

inline FrameParser::Step FrameParser::read_key_length(std::string_view input, size_t& pos, Event& event) {
  uint32_t length = 0;
  if (!read_length(input, pos, length)) return Step::done;
  if (refuse_too_big(length, State::skip_key, event)) return Step::done;
  key_size_ = length;
  state_ = State::key_bytes;
  return Step::again;
}

inline FrameParser::Step FrameParser::read_key(std::string_view input, size_t& pos, Event& event) {
  assert(key_size_ <= field_bytes_max());
  std::string_view key;
  if (gather(input, pos, key_size_, key) == Gather::partial) return Step::done;
  key_in_buffer_ = in_own_buffer(key);
  if (opcode_ == Opcode::put || opcode_ == Opcode::auth) {
    if (!key_in_buffer_) key_in_input_ = key;
    state_ = State::value_length;
    return Step::again;
  }
  assert(opcode_ != Opcode::stats);
  assert(opcode_ == Opcode::get || opcode_ == Opcode::del);
  event.kind = opcode_ == Opcode::get ? EventKind::get : EventKind::del;
  event.key = key;
  state_ = State::opcode;
  release_pending_ = true;
  return Step::done;
}

inline FrameParser::Step FrameParser::read_value_length(std::string_view input, size_t& pos, Event& event) {
  assert(opcode_ == Opcode::put || opcode_ == Opcode::auth);
  uint32_t length = 0;
  if (!read_length(input, pos, length)) return Step::done;
  if (refuse_too_big(length, State::skip_value_bytes, event)) {
    release_pending_ = true;
    return Step::done;
  }
  value_size_ = length;
  // AUTH's two fields are small (auth_field_bytes_max) and always come whole.
  const bool fits_inline = opcode_ == Opcode::auth ||
                           (length <= limits_.inline_value_bytes_max &&
                            uint64_t{key_size_} + length <= frame_buffer_bytes_max());
  if (fits_inline) {
    state_ = State::value_bytes;
    return Step::again;
  }
  // Zero-length values always fit inline, so a stream has at least one put_data.
  assert(length > 0);
  assert(!(key_size_ > 0 && !key_in_buffer_ && key_in_input_.empty()));
  event.kind = EventKind::put_begin;
  event.key = current_key();
  event.value_size = length;
  remaining_ = length;
  state_ = State::value_stream;
  release_pending_ = true;
  return Step::done;
}

inline FrameParser::Step FrameParser::read_value(std::string_view input, size_t& pos, Event& event) {
  if (!key_in_buffer_ && input.size() - pos < value_size_) stash_key();
  std::string_view value;
  if (gather(input, pos, value_size_, value) == Gather::partial) return Step::done;
  assert(value.size() == value_size_);
  assert(!(key_in_buffer_ && buffer_size_ < key_size_));
  event.kind = opcode_ == Opcode::auth ? EventKind::auth : EventKind::put;
  event.key = current_key();
  event.data = value;
  event.value_size = value_size_;
  state_ = State::opcode;
  release_pending_ = true;
  return Step::done;
}

inline FrameParser::Step FrameParser::stream_value(std::string_view input, size_t& pos, Event& event) {
  if (pos == input.size()) return Step::done;
  assert(remaining_ > 0);
  assert(!(remaining_ > value_size_));
  const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
  event.kind = EventKind::put_data;
  event.data = input.substr(pos, take);
  pos += take;
  remaining_ -= take;
  if (remaining_ == 0) state_ = State::value_stream_end;
  assert(!event.data.empty());
  return Step::done;
}

inline FrameParser::Step FrameParser::skip_bytes(std::string_view input, size_t& pos) {
  assert(state_ == State::skip_key || state_ == State::skip_value_bytes);
  assert(pos <= input.size());
  const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
  pos += take;
  remaining_ -= take;
  if (remaining_ > 0) return Step::done;
  const bool value_follows =
      state_ == State::skip_key && (opcode_ == Opcode::put || opcode_ == Opcode::auth);
  state_ = value_follows ? State::skip_value_length : State::opcode;
  return Step::again;
}

inline FrameParser::Step FrameParser::skip_value_length(std::string_view input, size_t& pos) {
  uint32_t length = 0;
  if (!read_length(input, pos, length)) return Step::done;
  remaining_ = length;
  state_ = State::skip_value_bytes;
  return Step::again;
}

inline FrameParser::Step FrameParser::read_hello_length(std::string_view input, size_t& pos, Event& event) {
  // A hello is only ever the connection's first frame.
  assert(!first_byte_);
  assert(buffer_size_ == 0);
  uint32_t length = 0;
  if (!read_length(input, pos, length)) return Step::done;
  if (length > ParserLimits::repl_hello_bytes_max) {
    state_ = State::closed;
    event.kind = EventKind::repl_invalid;
    return Step::done;
  }
  hello_size_ = length;
  state_ = State::hello_bytes;
  return Step::again;
}

inline FrameParser::Step FrameParser::read_hello(std::string_view input, size_t& pos, Event& event) {
  std::string_view hello;
  if (gather(input, pos, hello_size_, hello) == Gather::partial) return Step::done;
  event.kind = EventKind::repl_hello;
  event.data = hello;
  state_ = State::opcode;
  release_pending_ = true;
  return Step::done;
}

bool FrameParser::read_length(std::string_view input, size_t& pos, uint32_t& length) {
  assert(pos <= input.size());
  assert(length_have_ < length_field_bytes);
  const auto* bytes = reinterpret_cast<const unsigned char*>(input.data());
  if (length_have_ == 0 && input.size() - pos >= length_field_bytes) {
    length = decode_length(bytes + pos);
    pos += length_field_bytes;
    return true;
  }
  while (length_have_ < length_field_bytes && pos < input.size()) length_bytes_[length_have_++] = bytes[pos++];
  if (length_have_ < length_field_bytes) return false;
  length_have_ = 0;
  length = decode_length(length_bytes_);
  return true;
}

FrameParser::Gather FrameParser::gather(std::string_view input, size_t& pos, uint64_t size,
                                        std::string_view& field) {
  // A PUT value is appended after its key; every other field starts the buffer.
  const size_t base = state_ == State::value_bytes && key_in_buffer_ ? key_size_ : 0;
  assert(buffer_size_ >= base);
  const size_t have = buffer_size_ - base;
  const size_t available = input.size() - pos;
  assert(have <= size);
  if (have == 0 && available >= size) {
    field = input.substr(pos, static_cast<size_t>(size));
    pos += static_cast<size_t>(size);
    return Gather::complete;
  }
  const size_t take = static_cast<size_t>(std::min<uint64_t>(size - have, available));
  grow_buffer(buffer_size_ + take, base + size);
  append_buffer(input.substr(pos, take));
  pos += take;
  if (have + take < size) return Gather::partial;
  field = std::string_view(buffer_.get() + base, static_cast<size_t>(size));
  return Gather::complete;
}

std::string_view FrameParser::current_key() const {
  return key_in_buffer_ ? std::string_view(buffer_.get(), key_size_) : key_in_input_;
}

void FrameParser::grow_buffer(uint64_t needed_bytes, uint64_t frame_bytes) {
  assert(needed_bytes <= frame_bytes);
  assert(frame_bytes <= buffer_bytes_max());
  if (needed_bytes <= buffer_capacity_) return;
  // Grow with the bytes that actually arrived, not with the announced length:
  // a peer that sends only a large length costs nothing. Doubling keeps the
  // copies linear; capping at the frame's size keeps buffered_bytes() bounded.
  const uint64_t doubled = std::max<uint64_t>(buffer_capacity_ * 2, buffer_growth_bytes_min);
  const auto capacity = static_cast<size_t>(std::min(frame_bytes, std::max(needed_bytes, doubled)));
  auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
  if (buffer_size_ > 0) std::memcpy(bigger.get(), buffer_.get(), buffer_size_);
  buffer_ = std::move(bigger);
  buffer_capacity_ = capacity;
}

void FrameParser::append_buffer(std::string_view bytes) {
  assert(buffer_size_ + bytes.size() <= buffer_capacity_);
  if (bytes.empty()) return;
  std::memcpy(buffer_.get() + buffer_size_, bytes.data(), bytes.size());
  buffer_size_ += bytes.size();
}

void FrameParser::stash_key() {
  if (key_in_buffer_) return;
  assert(buffer_size_ == 0);
  assert(key_in_input_.size() == key_size_);
  const uint64_t value_bytes = state_ == State::value_bytes ? value_size_ : 0;
  grow_buffer(key_size_, uint64_t{key_size_} + value_bytes);
  append_buffer(key_in_input_);
  key_in_buffer_ = true;
}

void FrameParser::release_frame() {
  // Nothing is retained between frames: an idle connection holds no buffer, and
  // a split frame costs one allocation per receive buffer at most.
  buffer_.reset();
  buffer_capacity_ = 0;
  buffer_size_ = 0;
  key_in_buffer_ = false;
  release_pending_ = false;
}

}  // namespace ringcache::protocol
