#include "server/protocol/binary/binary_parser.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <functional>

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

Event make_event(EventKind kind) {
  Event event;
  event.kind = kind;
  return event;
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
  if (buffer_ == nullptr || view.data() == nullptr) return false;
  // std::less gives a total order even for pointers into different objects.
  const std::less<const char*> before;
  const char* begin = buffer_.get();
  const char* end = begin + buffer_size_;
  return !before(view.data(), begin) && !before(end, view.data()) &&
         view.size() <= static_cast<size_t>(end - view.data());
}

Event FrameParser::next(std::string_view input, size_t& consumed) {
  if (release_pending_) release_frame();
  // A key kept as a view into the previous input would dangle now; need_more
  // exits copy such a key into buffer_ first.
  key_in_input_ = {};
  assert(key_in_buffer_ || (state_ != State::value_length && state_ != State::value_bytes));

  size_t pos = 0;
  const auto need_more = [&] {
    assert(pos == input.size());
    if (state_ == State::value_length || state_ == State::value_bytes) stash_key();
    consumed = pos;
    return make_event(EventKind::need_more);
  };
  const auto emit = [&](const Event& event) {
    assert(pos <= input.size());
    consumed = pos;
    return event;
  };

  for (;;) {
    switch (state_) {
      case State::opcode: {
        if (pos == input.size()) return need_more();
        const auto byte = static_cast<uint8_t>(input[pos++]);
        const bool first = first_byte_;
        first_byte_ = false;
        if (first && byte == static_cast<uint8_t>(Opcode::repl_hello)) {
          state_ = State::hello_length;
          continue;
        }
        switch (byte) {
          case static_cast<uint8_t>(Opcode::put):
          case static_cast<uint8_t>(Opcode::del):
          case static_cast<uint8_t>(Opcode::get):
            opcode_ = static_cast<Opcode>(byte);
            state_ = State::key_length;
            continue;
          case static_cast<uint8_t>(Opcode::stats):
            return emit(make_event(EventKind::stats));
          case static_cast<uint8_t>(Opcode::auth):
            if (limits_.auth) {
              opcode_ = Opcode::auth;
              state_ = State::key_length;
              continue;
            }
            [[fallthrough]];
          default: {
            Event event = make_event(EventKind::invalid_opcode);
            event.byte = byte;
            return emit(event);
          }
        }
      }

      case State::key_length: {
        uint32_t length = 0;
        if (!read_length(input, pos, length)) return need_more();
        if (length > field_bytes_max()) {
          state_ = State::skip_key;
          remaining_ = length;
          return emit(make_event(opcode_ == Opcode::auth ? EventKind::auth_too_big : EventKind::too_big));
        }
        key_size_ = length;
        state_ = State::key_bytes;
        continue;
      }

      case State::key_bytes: {
        std::string_view key;
        if (gather(input, pos, key_size_, key) == Gather::partial) return need_more();
        key_in_buffer_ = in_own_buffer(key);
        if (opcode_ == Opcode::put || opcode_ == Opcode::auth) {
          if (!key_in_buffer_) key_in_input_ = key;
          state_ = State::value_length;
          continue;
        }
        assert(opcode_ == Opcode::get || opcode_ == Opcode::del);
        Event event = make_event(opcode_ == Opcode::get ? EventKind::get : EventKind::del);
        event.key = key;
        state_ = State::opcode;
        release_pending_ = true;
        return emit(event);
      }

      case State::value_length: {
        uint32_t length = 0;
        if (!read_length(input, pos, length)) return need_more();
        if (length > field_bytes_max()) {
          state_ = State::skip_value_bytes;
          remaining_ = length;
          release_pending_ = true;
          return emit(make_event(opcode_ == Opcode::auth ? EventKind::auth_too_big : EventKind::too_big));
        }
        value_size_ = length;
        // AUTH's two fields are small (auth_field_bytes_max) and always come whole.
        const bool fits_inline = opcode_ == Opcode::auth ||
                                 (length <= limits_.inline_value_bytes_max &&
                                  uint64_t{key_size_} + length <= frame_buffer_bytes_max());
        if (fits_inline) {
          state_ = State::value_bytes;
          continue;
        }
        Event event = make_event(EventKind::put_begin);
        event.key = current_key();
        event.value_size = length;
        // Zero-length values always fit inline, so a stream has at least one put_data.
        assert(length > 0);
        remaining_ = length;
        state_ = State::value_stream;
        release_pending_ = true;
        return emit(event);
      }

      case State::value_bytes: {
        if (!key_in_buffer_ && input.size() - pos < value_size_) stash_key();
        std::string_view value;
        if (gather(input, pos, value_size_, value) == Gather::partial) return need_more();
        Event event = make_event(opcode_ == Opcode::auth ? EventKind::auth : EventKind::put);
        event.key = current_key();
        event.data = value;
        event.value_size = value_size_;
        state_ = State::opcode;
        release_pending_ = true;
        return emit(event);
      }

      case State::value_stream: {
        if (pos == input.size()) return need_more();
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
        Event event = make_event(EventKind::put_data);
        event.data = input.substr(pos, take);
        pos += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::value_stream_end;
        return emit(event);
      }

      case State::value_stream_end:
        state_ = State::opcode;
        return emit(make_event(EventKind::put_end));

      case State::skip_key:
      case State::skip_value_bytes: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
        pos += take;
        remaining_ -= take;
        if (remaining_ > 0) return need_more();
        const bool value_follows =
            state_ == State::skip_key && (opcode_ == Opcode::put || opcode_ == Opcode::auth);
        state_ = value_follows ? State::skip_value_length : State::opcode;
        continue;
      }

      case State::skip_value_length: {
        uint32_t length = 0;
        if (!read_length(input, pos, length)) return need_more();
        remaining_ = length;
        state_ = State::skip_value_bytes;
        continue;
      }

      case State::hello_length: {
        uint32_t length = 0;
        if (!read_length(input, pos, length)) return need_more();
        if (length > ParserLimits::repl_hello_bytes_max) {
          state_ = State::closed;
          return emit(make_event(EventKind::repl_invalid));
        }
        hello_size_ = length;
        state_ = State::hello_bytes;
        continue;
      }

      case State::hello_bytes: {
        std::string_view hello;
        if (gather(input, pos, hello_size_, hello) == Gather::partial) return need_more();
        Event event = make_event(EventKind::repl_hello);
        event.data = hello;
        state_ = State::opcode;
        release_pending_ = true;
        return emit(event);
      }

      case State::closed:
        pos = input.size();
        return need_more();
    }
  }
}

bool FrameParser::read_length(std::string_view input, size_t& pos, uint32_t& length) {
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
  assert(buffer_size_ == 0 && key_in_input_.size() == key_size_);
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
