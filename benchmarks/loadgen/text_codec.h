// memcached text protocol (set/get), client side, so the same load can be run
// against memcached and against ringcached's text port.
//
// Requests:  set <key> 0 0 <n>\r\n<data>\r\n      get <key>\r\n
// Replies:   STORED | NOT_STORED | ERROR | CLIENT_ERROR ... | SERVER_ERROR ...
//            VALUE <key> <flags> <n>[ <cas>]\r\n<data>\r\nEND\r\n  |  END\r\n
//
// Decoder states:  first_line --VALUE--> data (n bytes, skipped) --> data_end
// ("\r\n") --> end_line ("END").  A line split across reads is gathered in a
// bounded buffer; a line that arrives whole is parsed where it lies.
#pragma once

#include <cstdint>
#include <string>

#include "protocol_codec.h"

namespace ringcache::loadgen {

// memcached's longest reply line is a VALUE line with a 250-byte key; anything
// far longer means the stream is not the memcached protocol.
inline constexpr std::size_t text_line_bytes_max = 1024;

class text_codec final : public protocol_codec {
 public:
  void encode_get(send_queue& out, std::string_view key) override;
  void encode_put(send_queue& out, std::string_view key,
                  std::span<const std::byte> value) override;
  decode_step decode(std::span<const std::byte> input, request_kind pending) override;
 private:
  decode_step value_skipped(std::size_t consumed) override;

  enum class state : std::uint8_t { first_line, data, data_end, end_line };
  enum class line_verdict : std::uint8_t { complete, continue_reply, malformed };

  line_verdict interpret_line(std::string_view line, request_kind pending);

  state state_ = state::first_line;
  std::string partial_line_;
  std::uint64_t value_bytes_ = 0;
  std::size_t data_end_seen_ = 0;
  reply_status status_ = reply_status::error;
  std::string_view problem_;
};

}  // namespace ringcache::loadgen
