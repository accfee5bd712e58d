// ringcache binary protocol (docs/binary_protocol.md), client side.
//
// Requests:  PUT = 11 key-field value-field,  GET = 13 key-field,
// where field = 32-bit big-endian length + bytes.
// Replies:   101 OK (after a GET, followed by a value field), 111 EINVAL,
// 112 ENOTFOUND, 113 EBINARY, 114 EBIG, 115 EUNK.
//
// Decoder states:  code --(GET & OK)--> length (4 bytes) --> body (skipped)
// Any other code ends the reply at once; an unknown code means the stream is
// out of sync and is reported as malformed.
#pragma once

#include <cstdint>

#include "protocol_codec.h"

namespace ringcache::loadgen {

namespace binary_wire {
inline constexpr std::uint8_t op_put = 11;
inline constexpr std::uint8_t op_del = 12;
inline constexpr std::uint8_t op_get = 13;
inline constexpr std::uint8_t op_stats = 21;
inline constexpr std::uint8_t reply_ok = 101;
inline constexpr std::uint8_t reply_einval = 111;
inline constexpr std::uint8_t reply_enotfound = 112;
inline constexpr std::uint8_t reply_ebinary = 113;
inline constexpr std::uint8_t reply_ebig = 114;
inline constexpr std::uint8_t reply_eunk = 115;
inline constexpr std::size_t length_bytes = 4;
}  // namespace binary_wire

class binary_codec final : public protocol_codec {
 public:
  void encode_get(send_queue& out, std::string_view key) override;
  void encode_put(send_queue& out, std::string_view key,
                  std::span<const std::byte> value) override;
  decode_step decode(std::span<const std::byte> input, request_kind pending) override;
 private:
  decode_step value_skipped(std::size_t consumed) override;

  enum class state : std::uint8_t { code, length, body };

  state state_ = state::code;
  std::uint32_t length_ = 0;
  std::size_t length_bytes_seen_ = 0;
};

}  // namespace ringcache::loadgen
