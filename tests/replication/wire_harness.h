// The replication wire in tests: hex for golden bytes, whole frames as a
// peer sends them, the recorded event of StreamDecoder (Seen) and how tests
// spell it, and StreamDecoder's ParserAdapter (tests/protocol/
// checked_parser.h) with the promises of wire_decoder.h that are its own.
// Used by the unit tests and by tests/fuzz/fuzz_wire_decoder.cc, so no test
// framework here.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/replication/wire_decoder.h"
#include "tests/protocol/checked_parser.h"

namespace ringcache::replication::test {

inline std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

// Whole frames, as a peer sends them.
inline std::string put_frame(std::string_view key, std::string_view value, uint64_t version, uint32_t flags = 0) {
  std::string out;
  append_put(out, key, value, PutMeta{version, flags, 0});
  return out;
}

inline std::string del_frame(std::string_view key, uint64_t version) {
  std::string out;
  append_del(out, key, version);
  return out;
}

inline std::string flush_frame(uint64_t version, uint32_t at_s) {
  std::string out;
  append_flush(out, version, at_s);
  return out;
}

// One event with its bytes copied out.
struct Seen {
  DecodeKind kind = DecodeKind::need_more;
  std::string key;
  std::string data;
  uint64_t value_size = 0;
  uint64_t version = 0;
  uint32_t flags = 0;
  uint32_t expires_at = 0;
  uint64_t number = 0;
  uint8_t byte = 0;
  bool operator==(const Seen&) const = default;
};

// A list of Seen prints as checked_parser.h says.
using ringcache::test::operator<<;

inline Seen seen_put(std::string key, std::string value, uint64_t version, uint32_t flags = 0, uint32_t exp = 0) {
  Seen s;
  s.kind = DecodeKind::put;
  s.key = std::move(key);
  s.value_size = value.size();
  s.data = std::move(value);
  s.version = version;
  s.flags = flags;
  s.expires_at = exp;
  return s;
}

inline Seen seen_kind(DecodeKind kind, uint64_t number = 0) {
  Seen s;
  s.kind = kind;
  s.number = number;
  return s;
}

inline std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << decode_kind_name(s.kind) << "(key=" << hex(s.key) << " data=" << s.data.size()
            << "B v=" << s.version << " n=" << s.number << ")";
}

}  // namespace ringcache::replication::test

namespace ringcache::test {

template <>
struct ParserAdapter<replication::DecoderLimits> : PutStreamAdapter<replication::DecodeEvent> {
  using Parser = replication::StreamDecoder;

  // One key and one inline value, and what the decoder keeps of its buffer
  // between frames (at most 64 KiB, wire_decoder.cc).
  static uint64_t buffered_bytes_max(const replication::DecoderLimits& limits, const Parser&) {
    return limits.item_bytes_max + limits.inline_value_bytes_max + 64 * 1024;
  }

  template <class Checked>
  static void check(const Event& event, std::string_view, const Checked& checked, Promises& promises) {
    const replication::DecoderLimits& limits = checked.limits();
    promises.require(event.key.size() <= limits.item_bytes_max, "key within item_max");
    switch (event.kind) {
      case Kind::put:
        promises.require(event.data.size() <= limits.inline_value_bytes_max, "inline value within its limit");
        break;
      case Kind::put_begin:
        promises.require(event.value_size > limits.inline_value_bytes_max, "streamed only above the inline limit");
        promises.require(event.value_size <= limits.item_bytes_max, "streamed value within item_max");
        break;
      case Kind::put_data:
      case Kind::put_end:
      case Kind::del:
      case Kind::resync_begin:
      case Kind::resync_end:
      case Kind::heartbeat:
      case Kind::mesh:
      case Kind::flush:
      case Kind::too_big:
      case Kind::bad_opcode:
      case Kind::need_more:  // feed() never passes one
        break;
    }
  }

  static void check_idle(const Parser& parser, bool streaming, Promises& promises) {
    promises.require(!streaming || !parser.at_frame_boundary(), "a stream in progress is not a boundary");
  }

  // After a complete stream: between frames, or dead after a bad opcode.
  static bool at_rest(const Parser& parser) { return parser.at_frame_boundary() || parser.failed(); }

  static replication::test::Seen seen(const Event& e) {
    return {e.kind,       std::string(e.key), std::string(e.data), e.value_size, e.meta.version,
            e.meta.flags, e.meta.expires_at,  e.number,            e.byte};
  }
};

}  // namespace ringcache::test
