// FrameParser (binary protocol) in the shared parser checks: frame encoders,
// the recorded event (Seen) and how tests spell it, and FrameParser's
// ParserAdapter (checked_parser.h) with the promises of binary_parser.h that
// are its own. Used by the unit tests and by tests/fuzz/fuzz_binary_parser.cc,
// so no test framework here.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/binary/binary_parser.h"
#include "tests/protocol/checked_parser.h"

namespace ringcache::protocol::test {

inline std::string length_field(uint32_t length) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(length >> 24);
  out[1] = static_cast<char>(length >> 16);
  out[2] = static_cast<char>(length >> 8);
  out[3] = static_cast<char>(length);
  return out;
}

inline std::string field(std::string_view bytes) {
  return length_field(static_cast<uint32_t>(bytes.size())) + std::string(bytes);
}

inline std::string opcode_byte(uint8_t byte) { return std::string(1, static_cast<char>(byte)); }
inline std::string get_frame(std::string_view key) { return opcode_byte(13) + field(key); }
inline std::string del_frame(std::string_view key) { return opcode_byte(12) + field(key); }
inline std::string stats_frame() { return opcode_byte(21); }
inline std::string put_frame(std::string_view key, std::string_view value) {
  return opcode_byte(11) + field(key) + field(value);
}
inline std::string hello_frame(std::string_view hello) { return opcode_byte(200) + field(hello); }
inline std::string auth_frame(std::string_view user, std::string_view password) {
  return opcode_byte(31) + field(user) + field(password);
}

// One event with its bytes copied out.
struct Seen {
  EventKind kind = EventKind::need_more;
  std::string key;
  std::string data;
  uint64_t value_size = 0;
  uint8_t byte = 0;
  bool operator==(const Seen&) const = default;
};

// A list of Seen prints as checked_parser.h says.
using ringcache::test::operator<<;

inline Seen seen_get(std::string_view key) { return {EventKind::get, std::string(key), {}, 0, 0}; }
inline Seen seen_del(std::string_view key) { return {EventKind::del, std::string(key), {}, 0, 0}; }
inline Seen seen_stats() { return {EventKind::stats, {}, {}, 0, 0}; }
inline Seen seen_put(std::string_view key, std::string_view value) {
  return {EventKind::put, std::string(key), std::string(value), value.size(), 0};
}
inline Seen seen_invalid(uint8_t byte) { return {EventKind::invalid_opcode, {}, {}, 0, byte}; }
inline Seen seen_too_big() { return {EventKind::too_big, {}, {}, 0, 0}; }
inline Seen seen_hello(std::string_view hello) { return {EventKind::repl_hello, {}, std::string(hello), 0, 0}; }
inline Seen seen_repl_invalid() { return {EventKind::repl_invalid, {}, {}, 0, 0}; }
inline Seen seen_auth(std::string_view user, std::string_view password) {
  return {EventKind::auth, std::string(user), std::string(password), password.size(), 0};
}
inline Seen seen_auth_too_big() { return {EventKind::auth_too_big, {}, {}, 0, 0}; }
// A streamed PUT: put_begin, the merged put_data, put_end.
inline std::vector<Seen> seen_stream(std::string_view key, std::string_view value) {
  return {{EventKind::put_begin, std::string(key), {}, value.size(), 0},
          {EventKind::put_data, {}, std::string(value), 0, 0},
          {EventKind::put_end, {}, {}, 0, 0}};
}

inline const char* kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::need_more: return "need_more";
    case EventKind::get: return "get";
    case EventKind::del: return "del";
    case EventKind::stats: return "stats";
    case EventKind::put: return "put";
    case EventKind::put_begin: return "put_begin";
    case EventKind::put_data: return "put_data";
    case EventKind::put_end: return "put_end";
    case EventKind::invalid_opcode: return "invalid_opcode";
    case EventKind::too_big: return "too_big";
    case EventKind::repl_hello: return "repl_hello";
    case EventKind::repl_invalid: return "repl_invalid";
    case EventKind::auth: return "auth";
    case EventKind::auth_too_big: return "auth_too_big";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& out, const Seen& seen) {
  constexpr size_t shown_bytes_max = 24;
  out << kind_name(seen.kind) << "{key=" << seen.key.size() << "B:" << seen.key.substr(0, shown_bytes_max)
      << " data=" << seen.data.size() << "B:" << seen.data.substr(0, shown_bytes_max)
      << " value_size=" << seen.value_size << " byte=" << int{seen.byte} << "}";
  return out;
}

}  // namespace ringcache::protocol::test

namespace ringcache::test {

template <>
struct ParserAdapter<protocol::ParserLimits> : PutStreamAdapter<protocol::Event>, FrameBoundaryAdapter {
  using Parser = protocol::FrameParser;

  // The parser holds at most one key, one inline value, one hello or one AUTH's user and password.
  static uint64_t buffered_bytes_max(const protocol::ParserLimits& limits, const Parser&) {
    const uint64_t auth_bytes = limits.auth ? 2 * uint64_t{protocol::ParserLimits::auth_field_bytes_max} : 0;
    return std::max<uint64_t>({limits.item_bytes_max, limits.inline_value_bytes_max,
                               protocol::ParserLimits::repl_hello_bytes_max, auth_bytes});
  }

  template <class Checked>
  static void check(const Event& event, std::string_view input, const Checked& checked, Promises& promises) {
    const protocol::ParserLimits& limits = checked.limits();
    require_views_in_input_or_parser(std::array{event.key, event.data}, input, checked.parser(), promises);
    switch (event.kind) {
      case Kind::get:
      case Kind::del:
        promises.require(event.key.size() <= limits.item_bytes_max, "key within item_max");
        break;
      case Kind::put:
        promises.require(event.key.size() <= limits.item_bytes_max, "key within item_max");
        promises.require(event.data.size() == event.value_size, "put value_size matches data");
        promises.require(event.data.size() <= limits.inline_value_bytes_max, "inline value within its limit");
        break;
      case Kind::put_begin:
        promises.require(event.key.size() <= limits.item_bytes_max, "key within item_max");
        promises.require(event.value_size <= limits.item_bytes_max, "streamed value within item_max");
        break;
      case Kind::repl_hello:
        promises.require(event.data.size() <= protocol::ParserLimits::repl_hello_bytes_max, "hello within its limit");
        promises.require(checked.events().empty(), "replication hello only first");
        break;
      case Kind::repl_invalid:
        promises.require(checked.events().empty(), "replication hello only first");
        break;
      case Kind::auth:
        promises.require(limits.auth, "AUTH only when enabled");
        promises.require(event.key.size() <= protocol::ParserLimits::auth_field_bytes_max, "user within its limit");
        promises.require(event.data.size() <= protocol::ParserLimits::auth_field_bytes_max,
                         "password within its limit");
        break;
      case Kind::auth_too_big:
        promises.require(limits.auth, "AUTH only when enabled");
        break;
      case Kind::put_data:
      case Kind::put_end:
      case Kind::stats:
      case Kind::invalid_opcode:
      case Kind::too_big:
      case Kind::need_more:  // feed() never passes one
        break;
    }
  }

  static protocol::test::Seen seen(const Event& event) {
    return {event.kind, std::string(event.key), std::string(event.data), event.value_size, event.byte};
  }
};

}  // namespace ringcache::test
