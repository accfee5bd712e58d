#include "server/protocol/memcache_binary/mc_binary_parser.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "server/protocol/lies_within.h"

namespace ringcache::protocol::memcache_binary {

namespace {

// First allocation for a split head (capped at what the request needs), so
// that bytes arriving one at a time do not reallocate per byte.
constexpr size_t buffer_growth_bytes_min = 256;

uint16_t load16(const uint8_t* bytes) { return static_cast<uint16_t>(bytes[0] << 8 | bytes[1]); }

uint32_t load32(const uint8_t* bytes) {
  return static_cast<uint32_t>(bytes[0]) << 24 | static_cast<uint32_t>(bytes[1]) << 16 |
         static_cast<uint32_t>(bytes[2]) << 8 | static_cast<uint32_t>(bytes[3]);
}

Header decode_header(const uint8_t* bytes) {
  Header header;
  header.opcode = bytes[1];
  header.key_length = load16(bytes + 2);
  header.extras_length = bytes[4];
  header.data_type = bytes[5];
  header.vbucket = load16(bytes + 6);
  header.body_length = load32(bytes + 8);
  header.opaque = load32(bytes + 12);
  header.cas = uint64_t{load32(bytes + 16)} << 32 | load32(bytes + 20);
  return header;
}

bool lengths_fit(const Header& header) {
  return header.key_length <= ParserLimits::key_bytes_max &&
         uint32_t{header.extras_length} + header.key_length <= header.body_length;
}

}  // namespace

size_t peek_keys(std::string_view input, std::string_view* keys, size_t max) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(input.data());
  size_t pos = 0;
  size_t found = 0;
  while (found < max && input.size() - pos >= header_bytes && bytes[pos] == request_magic) {
    const Header header = decode_header(bytes + pos);
    if (!lengths_fit(header) || input.size() - pos - header_bytes < header.body_length) break;
    if (header.key_length > 0) {
      keys[found++] = input.substr(pos + header_bytes + header.extras_length, header.key_length);
    }
    pos += header_bytes + header.body_length;
  }
  return found;
}

McBinaryParser::McBinaryParser(const ParserLimits& limits) : limits_(limits) {}

bool McBinaryParser::at_frame_boundary() const {
  return (state_ == State::header && header_have_ == 0) || state_ == State::discard;
}

bool McBinaryParser::in_own_buffer(std::string_view view) const {
  return lies_within(view, buffer_.get(), buffer_size_);
}

Event McBinaryParser::event_of(EventKind kind) const {
  Event event;
  event.kind = kind;
  event.header = header_;
  return event;
}

void McBinaryParser::start_body() {
  header_ = decode_header(header_bytes_.data());
  header_have_ = 0;
  if (!lengths_fit(header_)) {
    state_ = State::skip;
    remaining_ = header_.body_length;
    return;
  }
  const uint32_t head = uint32_t{header_.extras_length} + header_.key_length;
  value_size_ = header_.body_length - head;
  inline_value_ = value_size_ <= limits_.item_bytes_max && value_size_ <= limits_.inline_value_bytes_max;
  needed_ = inline_value_ ? header_.body_length : head;
  state_ = State::body;
}

void McBinaryParser::append_buffer(std::string_view bytes) {
  if (buffer_size_ + bytes.size() > buffer_capacity_) {
    // Grow geometrically with what arrived, never past what the request needs.
    const size_t wanted = std::max({buffer_size_ + bytes.size(), buffer_capacity_ * 2, buffer_growth_bytes_min});
    const size_t capacity = std::min<size_t>(wanted, needed_);
    auto grown = std::make_unique<char[]>(capacity);
    if (buffer_size_ > 0) std::memcpy(grown.get(), buffer_.get(), buffer_size_);
    buffer_ = std::move(grown);
    buffer_capacity_ = capacity;
  }
  assert(buffer_size_ + bytes.size() <= buffer_capacity_);
  std::memcpy(buffer_.get() + buffer_size_, bytes.data(), bytes.size());
  buffer_size_ += bytes.size();
}

bool McBinaryParser::gather(std::string_view input, size_t& pos, std::string_view& out) {
  if (buffer_size_ == 0 && input.size() - pos >= needed_) {
    out = input.substr(pos, needed_);
    pos += needed_;
    return true;
  }
  const size_t take = std::min<size_t>(needed_ - buffer_size_, input.size() - pos);
  if (take == 0) return false;
  append_buffer(input.substr(pos, take));
  pos += take;
  if (buffer_size_ < needed_) return false;
  out = std::string_view(buffer_.get(), buffer_size_);
  release_pending_ = true;
  return true;
}

Event McBinaryParser::value_piece(std::string_view input, size_t& pos) {
  Event event = event_of(EventKind::value_data);
  event.data = input.substr(pos, std::min<uint64_t>(remaining_, input.size() - pos));
  pos += event.data.size();
  remaining_ -= event.data.size();
  if (remaining_ == 0) state_ = State::stream_end;
  return event;
}

Event McBinaryParser::next(std::string_view input, size_t& consumed) {
  if (release_pending_) {
    buffer_.reset();
    buffer_capacity_ = buffer_size_ = 0;
    release_pending_ = false;
  }
  size_t pos = 0;
  const auto emit = [&](Event event) {
    consumed = pos;
    return event;
  };
  for (;;) {
    switch (state_) {
      case State::header: {
        if (pos == input.size()) return emit(Event());
        if (header_have_ == 0 && static_cast<uint8_t>(input[pos]) != request_magic) {
          Event event;
          event.kind = EventKind::bad_magic;
          event.byte = static_cast<uint8_t>(input[pos++]);
          state_ = State::discard;
          return emit(event);
        }
        const size_t take = std::min(header_bytes - header_have_, input.size() - pos);
        std::memcpy(header_bytes_.data() + header_have_, input.data() + pos, take);
        header_have_ += take;
        pos += take;
        if (header_have_ < header_bytes) continue;
        start_body();
        if (state_ == State::skip) return emit(event_of(EventKind::bad_lengths));
        continue;
      }
      case State::body: {
        std::string_view body;
        if (!gather(input, pos, body)) {
          assert(pos == input.size());
          return emit(Event());
        }
        Event event = event_of(EventKind::request);
        event.extras = body.substr(0, header_.extras_length);
        event.key = body.substr(header_.extras_length, header_.key_length);
        event.value_size = value_size_;
        if (inline_value_) {
          event.data = body.substr(header_.extras_length + header_.key_length);
          state_ = State::header;
        } else if (value_size_ > limits_.item_bytes_max) {
          event.kind = EventKind::too_large;
          state_ = State::skip;
          remaining_ = value_size_;
        } else {
          event.kind = EventKind::value_begin;
          state_ = State::stream;
          remaining_ = value_size_;
        }
        return emit(event);
      }
      case State::stream:
        if (pos == input.size()) return emit(Event());
        return emit(value_piece(input, pos));
      case State::stream_end:
        state_ = State::header;
        return emit(event_of(EventKind::value_end));
      case State::skip: {
        const size_t take = std::min<uint64_t>(remaining_, input.size() - pos);
        pos += take;
        remaining_ -= take;
        if (remaining_ > 0) return emit(Event());
        state_ = State::header;
        continue;
      }
      case State::discard:
        pos = input.size();
        return emit(Event());
    }
  }
}

}  // namespace ringcache::protocol::memcache_binary
