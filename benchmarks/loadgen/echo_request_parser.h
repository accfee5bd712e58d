// Server-side framing of the ringcache binary protocol for the echo server:
// finds where each request ends without storing anything. Key and value bytes
// are skipped in place, so the echo server's cost per request is the framing
// alone, which is what makes it a ceiling for the load generator.
//
// States:  opcode --PUT/GET/DEL--> key length (4) --> key body
//          --PUT--> value length (4) --> value body --> opcode
// STATS is a bare opcode; an unknown opcode is one byte answered with EINVAL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ringcache::loadgen::echo {

enum class parsed_request : std::uint8_t { put, del, get, stats, unknown_opcode };

struct parse_step {
  bool complete;  // false: all input consumed, the request continues
  std::size_t consumed;
  parsed_request request;  // meaningful when complete
};

class request_parser {
 public:
  parse_step parse(std::span<const std::byte> input);

 private:
  enum class state : std::uint8_t { opcode, key_length, key_body, value_length, value_body };

  // Moves past a finished key or value; true when that ends the request.
  bool end_body();

  state state_ = state::opcode;
  parsed_request request_ = parsed_request::unknown_opcode;
  std::uint32_t length_ = 0;
  std::size_t length_bytes_seen_ = 0;
  std::uint64_t body_remaining_ = 0;
};

}  // namespace ringcache::loadgen::echo
