// libFuzzer target for McBinaryParser (memcached's binary protocol).
//
// Input layout: byte 0 picks the ParserLimits, byte 1 seeds the split points,
// the rest is the byte stream of one connection. The stream is parsed once
// whole and once cut into pieces (fuzz_support.h: run_parser_target); both
// runs must give the events of a plain reference decoder, and every call
// must keep the promises of mc_binary_parser.h (mc_binary_parser_harness.h).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/memcache_binary/mc_binary_parser.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/protocol/mc_binary_parser_harness.h"

namespace {

using ringcache::protocol::memcache_binary::EventKind;
using ringcache::protocol::memcache_binary::header_bytes;
using ringcache::protocol::memcache_binary::ParserLimits;
using ringcache::protocol::memcache_binary::request_magic;
using ringcache::protocol::memcache_binary::test::header_of;
using ringcache::protocol::memcache_binary::test::Seen;

// The oracle: the protocol restated as a whole-buffer decoder. It stops
// where the stream ends inside a request.
std::vector<Seen> reference_decode(const ParserLimits& limits, std::string_view stream) {
  std::vector<Seen> events;
  size_t pos = 0;
  while (pos < stream.size()) {
    if (static_cast<uint8_t>(stream[pos]) != request_magic) {
      Seen seen;
      seen.kind = EventKind::bad_magic;
      seen.byte = static_cast<uint8_t>(stream[pos]);
      events.push_back(seen);
      break;
    }
    if (stream.size() - pos < header_bytes) break;
    Seen seen;
    seen.header = header_of(stream.substr(pos));
    pos += header_bytes;
    const uint64_t body = seen.header.body_length;
    const uint64_t head = uint64_t{seen.header.extras_length} + seen.header.key_length;
    if (seen.header.key_length > ParserLimits::key_bytes_max || head > body) {
      seen.kind = EventKind::bad_lengths;
      events.push_back(seen);
      if (stream.size() - pos < body) break;
      pos += body;
      continue;
    }
    const uint64_t value = body - head;
    const bool whole = value <= limits.item_bytes_max && value <= limits.inline_value_bytes_max;
    if (stream.size() - pos < (whole ? body : head)) break;
    seen.extras = stream.substr(pos, seen.header.extras_length);
    seen.key = stream.substr(pos + seen.header.extras_length, seen.header.key_length);
    seen.value_size = value;
    pos += head;
    if (whole) {
      seen.kind = EventKind::request;
      seen.data = stream.substr(pos, value);
      pos += value;
      events.push_back(seen);
      continue;
    }
    if (value > limits.item_bytes_max) {
      seen.kind = EventKind::too_large;
      events.push_back(seen);
      if (stream.size() - pos < value) break;
      pos += value;
      continue;
    }
    seen.kind = EventKind::value_begin;
    events.push_back(seen);
    const size_t available = std::min<uint64_t>(value, stream.size() - pos);
    if (available > 0) {
      Seen data;
      data.kind = EventKind::value_data;
      data.header = seen.header;
      data.data = stream.substr(pos, available);
      events.push_back(data);
    }
    pos += available;
    if (available < value) break;
    Seen end;
    end.kind = EventKind::value_end;
    end.header = seen.header;
    events.push_back(end);
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto run = fuzz_support::run_parser_target(data, size, &fuzz_support::item_and_inline_limits<ParserLimits>,
                                                   &ringcache::protocol::memcache_binary::peek_keys);
  if (!run) return 0;
  fuzz_support::require(run->events == reference_decode(run->limits, run->stream),
                        "same events as the reference decoder");
  return 0;
}
