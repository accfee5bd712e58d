// McBinaryParser (memcached's binary protocol) in the shared parser checks:
// request encoders, the recorded event (Seen) and how tests spell it, and
// McBinaryParser's ParserAdapter (checked_parser.h) with the promises of
// mc_binary_parser.h that are its own. Used by the unit tests and by
// tests/fuzz/fuzz_mc_binary_parser.cc, so no test framework here.
#pragma once

#include <array>
#include <cstddef>
#include <iterator>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/memcache_binary/mc_binary_parser.h"
#include "tests/protocol/checked_parser.h"

namespace ringcache::protocol::memcache_binary::test {

inline void put_be(std::string& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(value >> (8 * i)));
}

// A request: header, extras, key, value. body_length is computed unless given.
inline std::string request(uint8_t opcode, std::string_view extras, std::string_view key, std::string_view value,
                           uint32_t opaque = 0, uint64_t cas = 0) {
  std::string out;
  out.push_back(static_cast<char>(request_magic));
  out.push_back(static_cast<char>(opcode));
  put_be(out, key.size(), 2);
  out.push_back(static_cast<char>(extras.size()));
  out.push_back(0);  // data type
  put_be(out, 0, 2);  // vbucket
  put_be(out, extras.size() + key.size() + value.size(), 4);
  put_be(out, opaque, 4);
  put_be(out, cas, 8);
  out.append(extras).append(key).append(value);
  return out;
}

inline std::string request(Opcode opcode, std::string_view extras, std::string_view key, std::string_view value,
                           uint32_t opaque = 0, uint64_t cas = 0) {
  return request(static_cast<uint8_t>(opcode), extras, key, value, opaque, cas);
}

// A header whose lengths are given as they are, with no body.
inline std::string raw_header(uint8_t opcode, uint16_t key_length, uint8_t extras_length, uint32_t body_length,
                              uint32_t opaque = 0) {
  std::string out;
  out.push_back(static_cast<char>(request_magic));
  out.push_back(static_cast<char>(opcode));
  put_be(out, key_length, 2);
  out.push_back(static_cast<char>(extras_length));
  out.push_back(0);
  put_be(out, 0, 2);
  put_be(out, body_length, 4);
  put_be(out, opaque, 4);
  put_be(out, 0, 8);
  return out;
}

// The extras of set/add/replace: flags, expiration.
inline std::string store_extras(uint32_t flags, uint32_t expiration) {
  std::string out;
  put_be(out, flags, 4);
  put_be(out, expiration, 4);
  return out;
}

// The extras of incr/decr: delta, initial, expiration.
inline std::string arithmetic_extras(uint64_t delta, uint64_t initial, uint32_t expiration) {
  std::string out;
  put_be(out, delta, 8);
  put_be(out, initial, 8);
  put_be(out, expiration, 4);
  return out;
}

// One event with its bytes copied out.
struct Seen {
  EventKind kind = EventKind::need_more;
  Header header;
  std::string extras;
  std::string key;
  std::string data;
  uint64_t value_size = 0;
  uint8_t byte = 0;
  bool operator==(const Seen&) const = default;
};

// The header of an encoded request, decoded independently of the parser.
inline Header header_of(std::string_view request_bytes) {
  const auto byte = [&](size_t i) { return uint64_t{static_cast<uint8_t>(request_bytes[i])}; };
  const auto load = [&](size_t at, size_t bytes) {
    uint64_t value = 0;
    for (size_t i = 0; i < bytes; ++i) value = value << 8 | byte(at + i);
    return value;
  };
  Header header;
  header.opcode = static_cast<uint8_t>(byte(1));
  header.key_length = static_cast<uint16_t>(load(2, 2));
  header.extras_length = static_cast<uint8_t>(byte(4));
  header.data_type = static_cast<uint8_t>(byte(5));
  header.vbucket = static_cast<uint16_t>(load(6, 2));
  header.body_length = static_cast<uint32_t>(load(8, 4));
  header.opaque = static_cast<uint32_t>(load(12, 4));
  header.cas = load(16, 8);
  return header;
}

// The events a request gives when its value comes whole.
inline Seen seen_request(std::string_view bytes) {
  const Header header = header_of(bytes);
  const std::string_view body = bytes.substr(header_bytes);
  const size_t head = header.extras_length + header.key_length;
  return {EventKind::request, header, std::string(body.substr(0, header.extras_length)),
          std::string(body.substr(header.extras_length, header.key_length)), std::string(body.substr(head)),
          body.size() - head, 0};
}

// A streamed value: value_begin, the merged value_data, value_end.
inline std::vector<Seen> seen_stream(std::string_view bytes) {
  const Header header = header_of(bytes);
  const std::string_view body = bytes.substr(header_bytes);
  const size_t head = header.extras_length + header.key_length;
  return {{EventKind::value_begin, header, std::string(body.substr(0, header.extras_length)),
           std::string(body.substr(header.extras_length, header.key_length)), {}, body.size() - head, 0},
          {EventKind::value_data, header, {}, {}, std::string(body.substr(head)), 0, 0},
          {EventKind::value_end, header, {}, {}, {}, 0, 0}};
}

inline Seen seen_too_large(std::string_view bytes) {
  Seen seen = seen_request(bytes);
  seen.kind = EventKind::too_large;
  seen.data.clear();
  return seen;
}

inline Seen seen_bad_lengths(std::string_view header_bytes_only) {
  Seen seen;
  seen.kind = EventKind::bad_lengths;
  seen.header = header_of(header_bytes_only);
  return seen;
}

inline Seen seen_bad_magic(uint8_t byte) {
  Seen seen;
  seen.kind = EventKind::bad_magic;
  seen.byte = byte;
  return seen;
}

inline const char* kind_name(EventKind kind) {
  constexpr const char* names[] = {"need_more",  "request",   "value_begin", "value_data",
                                   "value_end",  "too_large", "bad_lengths", "bad_magic"};
  const auto index = static_cast<size_t>(kind);
  return index < std::size(names) ? names[index] : "unknown";
}

inline std::ostream& operator<<(std::ostream& out, const Seen& seen) {
  constexpr size_t shown_bytes_max = 24;
  out << kind_name(seen.kind) << "{op=" << int{seen.header.opcode} << " opaque=" << seen.header.opaque
      << " extras=" << seen.extras.size() << "B key=" << seen.key.size() << "B:" << seen.key.substr(0, shown_bytes_max)
      << " data=" << seen.data.size() << "B value_size=" << seen.value_size << " byte=" << int{seen.byte} << "}";
  return out;
}

using ringcache::test::operator<<;

}  // namespace ringcache::protocol::memcache_binary::test

namespace ringcache::test {

template <>
struct ParserAdapter<protocol::memcache_binary::ParserLimits>
    : StreamAdapter<protocol::memcache_binary::Event, protocol::memcache_binary::EventKind::value_begin,
                    protocol::memcache_binary::EventKind::value_data, protocol::memcache_binary::EventKind::value_end>,
      FrameBoundaryAdapter {
  using Parser = protocol::memcache_binary::McBinaryParser;
  using Event = protocol::memcache_binary::Event;
  using Seen = protocol::memcache_binary::test::Seen;
  using Kind = protocol::memcache_binary::EventKind;
  using Limits = protocol::memcache_binary::ParserLimits;

  // One request's extras and key, and its inline value.
  static uint64_t buffered_bytes_max(const Limits& limits, const Parser&) {
    return uint64_t{Parser::head_bytes_max()} + limits.inline_value_bytes_max;
  }

  template <class Checked>
  static void check(const Event& event, std::string_view input, const Checked& checked, Promises& promises) {
    const Limits& limits = checked.limits();
    require_views_in_input_or_parser(std::array{event.extras, event.key, event.data}, input, checked.parser(),
                                     promises);
    switch (event.kind) {
      case Kind::request:
        promises.require(event.data.size() == event.value_size, "request value_size matches data");
        promises.require(event.data.size() <= limits.inline_value_bytes_max, "inline value within its limit");
        promises.require(event.data.size() <= limits.item_bytes_max, "inline value within item_max");
        [[fallthrough]];
      case Kind::value_begin:
      case Kind::too_large:
        promises.require(event.key.size() == event.header.key_length, "key as long as announced");
        promises.require(event.key.size() <= Limits::key_bytes_max, "key within key_bytes_max");
        promises.require(event.extras.size() == event.header.extras_length, "extras as long as announced");
        promises.require(event.extras.size() + event.key.size() + event.value_size == event.header.body_length,
                         "extras, key and value make the body");
        promises.require(event.kind != Kind::value_begin || event.value_size <= limits.item_bytes_max,
                         "streamed value within item_max");
        promises.require(event.kind != Kind::too_large || event.value_size > limits.item_bytes_max,
                         "too_large only over item_max");
        break;
      case Kind::bad_lengths:
        promises.require(event.header.key_length > Limits::key_bytes_max ||
                             uint32_t{event.header.extras_length} + event.header.key_length > event.header.body_length,
                         "bad_lengths only for bad lengths");
        break;
      case Kind::value_data:
      case Kind::value_end:
      case Kind::bad_magic:
      case Kind::need_more:  // feed() never passes one
        break;
    }
  }

  static Seen seen(const Event& event) {
    return {event.kind,          event.header,     std::string(event.extras), std::string(event.key),
            std::string(event.data), event.value_size, event.byte};
  }
};

}  // namespace ringcache::test
