// The grammar of one memcached text command line, apart from framing
// (text_parser.h decides where a line or a data block starts and ends; this
// file decides what a complete line asks for). Internal to the text parser,
// exposed for its tests.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "server/protocol/text/text_parser.h"

namespace ringcache::protocol::text {

// What follows a command line on the wire.
struct LineOutcome {
  // A data block of event.value_size bytes and "\r\n" comes next: read it for
  // a storage request, skip it after an error (see text_parser.h).
  bool data_follows = false;
};

using DecodedKey = std::array<char, ParserLimits::key_bytes_max>;

// Parses one command line (without "\n" and without a "\r" before it) into
// `event`, whose kind becomes request or error. Views in `event` point into
// `line`, into `meta` (event.meta) or into `decoded_key` (a base64 key).
LineOutcome parse_command_line(std::string_view line, const ParserLimits& limits, Event& event,
                               MetaRequest& meta, DecodedKey& decoded_key);

// True when the line's first token is get, gets, gat or gats, followed by a
// space, within the first `scan_bytes` bytes. Decides which line limit
// applies; looking at a fixed prefix keeps the answer the same for a whole
// line and for any partial line that holds that prefix.
bool starts_retrieval_command(std::string_view line_start, size_t scan_bytes);

}  // namespace ringcache::protocol::text
