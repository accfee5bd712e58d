// libFuzzer target for FrameParser.
//
// Input layout: byte 0 picks the ParserLimits (bit 6: AUTH enabled), byte 1 seeds the split points,
// the rest is the byte stream of one connection. The stream is parsed once
// whole and once cut into pieces (fuzz_support.h: run_parser_target); both
// runs must give the events of a plain reference decoder, and every call
// must keep the promises of binary_parser.h (binary_parser_harness.h).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/binary/binary_parser.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/protocol/binary_parser_harness.h"

namespace {

using ringcache::protocol::EventKind;
using ringcache::protocol::ParserLimits;
using ringcache::protocol::test::Seen;

// The shared item and inline limits, and bit 6 turns AUTH (31) on.
ParserLimits limits_from(uint8_t selector) {
  ParserLimits limits = fuzz_support::item_and_inline_limits<ParserLimits>(selector);
  limits.auth = (selector & 0x40) != 0;
  return limits;
}

// The oracle: the protocol restated as a plain whole-buffer decoder, with no
// incremental state. Its events for the complete stream must equal the
// parser's; it stops where the stream ends inside a frame.
class ReferenceDecoder {
 public:
  ReferenceDecoder(const ParserLimits& limits, std::string_view stream) : limits_(limits), stream_(stream) {}

  std::vector<Seen> decode() {
    bool first = true;
    while (pos_ < stream_.size()) {
      const auto byte = static_cast<uint8_t>(stream_[pos_++]);
      if (first && byte == 200) {
        uint32_t length = 0;
        if (!take_length(length)) break;
        if (length > ParserLimits::repl_hello_bytes_max) {
          emit(EventKind::repl_invalid);
          break;
        }
        std::string_view hello;
        if (!take_bytes(length, hello)) break;
        emit(EventKind::repl_hello, {}, hello);
        first = false;
        continue;
      }
      first = false;
      if (byte == 21) {
        emit(EventKind::stats);
      } else if (byte == 11 || byte == 12 || byte == 13) {
        if (!decode_keyed(byte)) break;
      } else if (byte == 31 && limits_.auth) {
        if (!decode_auth()) break;
      } else {
        emit(EventKind::invalid_opcode, {}, {}, 0, byte);
      }
    }
    return events_;
  }

 private:
  // False when the stream ends inside the frame.
  bool decode_keyed(uint8_t opcode) {
    uint32_t key_length = 0;
    if (!take_length(key_length)) return false;
    if (key_length > limits_.item_bytes_max) {
      emit(EventKind::too_big);
      if (!skip(key_length)) return false;
      if (opcode != 11) return true;
      uint32_t value_length = 0;
      return take_length(value_length) && skip(value_length);
    }
    std::string_view key;
    if (!take_bytes(key_length, key)) return false;
    if (opcode != 11) {
      emit(opcode == 13 ? EventKind::get : EventKind::del, key);
      return true;
    }
    uint32_t value_length = 0;
    if (!take_length(value_length)) return false;
    if (value_length > limits_.item_bytes_max) {
      emit(EventKind::too_big);
      return skip(value_length);
    }
    const uint64_t frame_buffer_bytes_max = std::max<uint64_t>(limits_.item_bytes_max, limits_.inline_value_bytes_max);
    if (value_length <= limits_.inline_value_bytes_max && uint64_t{key_length} + value_length <= frame_buffer_bytes_max) {
      std::string_view value;
      if (!take_bytes(value_length, value)) return false;
      emit(EventKind::put, key, value, value_length);
      return true;
    }
    emit(EventKind::put_begin, key, {}, value_length);
    const size_t available = std::min<size_t>(value_length, stream_.size() - pos_);
    if (available > 0) emit(EventKind::put_data, {}, stream_.substr(pos_, available));
    pos_ += available;
    if (available < value_length) return false;
    emit(EventKind::put_end);
    return true;
  }

  // AUTH: two fields of at most auth_field_bytes_max, always whole.
  bool decode_auth() {
    constexpr uint32_t field_max = ParserLimits::auth_field_bytes_max;
    uint32_t user_length = 0;
    if (!take_length(user_length)) return false;
    if (user_length > field_max) {
      emit(EventKind::auth_too_big);
      uint32_t password_length = 0;
      return skip(user_length) && take_length(password_length) && skip(password_length);
    }
    std::string_view user;
    if (!take_bytes(user_length, user)) return false;
    uint32_t password_length = 0;
    if (!take_length(password_length)) return false;
    if (password_length > field_max) {
      emit(EventKind::auth_too_big);
      return skip(password_length);
    }
    std::string_view password;
    if (!take_bytes(password_length, password)) return false;
    emit(EventKind::auth, user, password, password_length);
    return true;
  }

  bool take_length(uint32_t& length) {
    if (stream_.size() - pos_ < 4) return false;
    length = 0;
    for (size_t i = 0; i < 4; ++i) length = length << 8 | static_cast<uint8_t>(stream_[pos_ + i]);
    pos_ += 4;
    return true;
  }

  bool take_bytes(uint32_t length, std::string_view& bytes) {
    if (stream_.size() - pos_ < length) return false;
    bytes = stream_.substr(pos_, length);
    pos_ += length;
    return true;
  }

  bool skip(uint32_t length) {
    if (stream_.size() - pos_ < length) return false;
    pos_ += length;
    return true;
  }

  void emit(EventKind kind, std::string_view key = {}, std::string_view data = {}, uint64_t value_size = 0,
            uint8_t byte = 0) {
    events_.push_back({kind, std::string(key), std::string(data), value_size, byte});
  }

  ParserLimits limits_;
  std::string_view stream_;
  size_t pos_ = 0;
  std::vector<Seen> events_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto run = fuzz_support::run_parser_target(data, size, &limits_from,
                                                   &ringcache::protocol::peek_frame_keys);
  if (!run) return 0;
  fuzz_support::require(run->events == ReferenceDecoder(run->limits, run->stream).decode(),
                        "same events as the reference decoder");
  return 0;
}
