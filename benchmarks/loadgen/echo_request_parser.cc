#include "echo_request_parser.h"

#include <algorithm>
#include <cstdint>

#include "binary_codec.h"

namespace ringcache::loadgen::echo {

bool request_parser::end_body() {
  if (state_ == state::key_body && request_ == parsed_request::put) {
    state_ = state::value_length;
    length_ = 0;
    length_bytes_seen_ = 0;
    return false;
  }
  state_ = state::opcode;
  return true;
}

parse_step request_parser::parse(std::span<const std::byte> input) {
  std::size_t used = 0;
  while (used < input.size()) {
    switch (state_) {
      case state::opcode: {
        const auto opcode = std::to_integer<std::uint8_t>(input[used++]);
        switch (opcode) {
          case binary_wire::op_put: request_ = parsed_request::put; break;
          case binary_wire::op_del: request_ = parsed_request::del; break;
          case binary_wire::op_get: request_ = parsed_request::get; break;
          case binary_wire::op_stats: return parse_step{true, used, parsed_request::stats};
          default: return parse_step{true, used, parsed_request::unknown_opcode};
        }
        state_ = state::key_length;
        length_ = 0;
        length_bytes_seen_ = 0;
        break;
      }
      case state::key_length:
      case state::value_length: {
        length_ = (length_ << 8) | std::to_integer<std::uint32_t>(input[used++]);
        if (++length_bytes_seen_ < binary_wire::length_bytes) break;
        body_remaining_ = length_;
        state_ = state_ == state::key_length ? state::key_body : state::value_body;
        if (body_remaining_ == 0 && end_body()) return parse_step{true, used, request_};
        break;
      }
      case state::key_body:
      case state::value_body: {
        const auto step =
            static_cast<std::size_t>(std::min<std::uint64_t>(body_remaining_, input.size() - used));
        used += step;
        body_remaining_ -= step;
        if (body_remaining_ == 0 && end_body()) return parse_step{true, used, request_};
        break;
      }
    }
  }
  return parse_step{false, used, request_};
}

}  // namespace ringcache::loadgen::echo
