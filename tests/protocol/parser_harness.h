// Test harness for FrameParser: frame encoders, a recorded-event type that
// owns its bytes, and a Feeder that drives the parser the way the daemon does
// (loop until need_more) while checking the contract on every call.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/binary_parser.h"

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

// One event with its bytes copied out; consecutive put_data events are merged
// so that every way of splitting the input records the same sequence.
struct Seen {
  EventKind kind = EventKind::need_more;
  std::string key;
  std::string data;
  uint64_t value_size = 0;
  uint8_t byte = 0;
  bool operator==(const Seen&) const = default;
};

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

inline std::ostream& operator<<(std::ostream& out, const std::vector<Seen>& events) {
  constexpr size_t shown_events_max = 12;
  out << events.size() << " events [";
  for (size_t i = 0; i < events.size() && i < shown_events_max; ++i) out << (i ? ", " : "") << events[i];
  return out << (events.size() > shown_events_max ? ", ...]" : "]");
}

inline bool view_inside(std::string_view view, std::string_view outer) {
  const auto inner_begin = reinterpret_cast<uintptr_t>(view.data());
  const auto outer_begin = reinterpret_cast<uintptr_t>(outer.data());
  return inner_begin >= outer_begin && inner_begin + view.size() <= outer_begin + outer.size();
}

// Drives one FrameParser like the daemon's receive loop and checks, on every
// call, what the header promises: consumed <= input, need_more consumes all,
// only put_end consumes nothing (and never twice in a row), views point into
// the input or the parser's buffer (put_data into the input only), streamed
// pieces add up to value_size, and buffered_bytes() stays within its bound.
class Feeder {
 public:
  explicit Feeder(const ParserLimits& limits) : limits_(limits), parser_(limits) {}

  void feed(std::string_view input) {
    const uint64_t buffer_bound_bytes =
        std::max<uint64_t>({limits_.item_max_bytes, limits_.inline_value_max_bytes,
                            ParserLimits::repl_hello_max_bytes});
    std::string_view rest = input;
    bool previous_consumed_nothing = false;
    for (;;) {
      size_t consumed = SIZE_MAX;
      const Event event = parser_.next(rest, consumed);
      REQUIRE(consumed <= rest.size());
      REQUIRE(parser_.buffered_bytes() <= buffer_bound_bytes);
      peak_buffered_bytes_ = std::max(peak_buffered_bytes_, parser_.buffered_bytes());
      if (event.kind == EventKind::need_more) {
        REQUIRE(consumed == rest.size());
        return;
      }
      if (consumed == 0) {
        REQUIRE(event.kind == EventKind::put_end);
        REQUIRE_FALSE(previous_consumed_nothing);
      } else {
        REQUIRE(event.kind != EventKind::put_end);
      }
      previous_consumed_nothing = consumed == 0;
      check_views(event, rest);
      record(event);
      rest.remove_prefix(consumed);
    }
  }

  // Feeds each piece from its own short-lived copy, scribbled over before it
  // is freed, so a view kept into an older input shows up as wrong bytes.
  void feed_copy(std::string_view piece) {
    std::string copy(piece);
    feed(copy);
    std::fill(copy.begin(), copy.end(), '\xAA');
  }

  const std::vector<Seen>& events() const { return events_; }
  FrameParser& parser() { return parser_; }
  size_t peak_buffered_bytes() const { return peak_buffered_bytes_; }
  bool streaming() const { return streaming_; }

 private:
  void check_views(const Event& event, std::string_view input) {
    for (const std::string_view view : {event.key, event.data}) {
      if (view.empty()) continue;
      REQUIRE((view_inside(view, input) || parser_.in_own_buffer(view)));
    }
    switch (event.kind) {
      case EventKind::get:
      case EventKind::del:
        REQUIRE(event.key.size() <= limits_.item_max_bytes);
        break;
      case EventKind::put:
        REQUIRE(event.key.size() <= limits_.item_max_bytes);
        REQUIRE(event.data.size() == event.value_size);
        REQUIRE(event.data.size() <= limits_.inline_value_max_bytes);
        break;
      case EventKind::put_begin:
        REQUIRE_FALSE(streaming_);
        REQUIRE(event.value_size > 0);
        streaming_ = true;
        stream_expected_bytes_ = event.value_size;
        stream_seen_bytes_ = 0;
        break;
      case EventKind::put_data:
        REQUIRE(streaming_);
        REQUIRE_FALSE(event.data.empty());
        REQUIRE(view_inside(event.data, input));
        stream_seen_bytes_ += event.data.size();
        REQUIRE(stream_seen_bytes_ <= stream_expected_bytes_);
        break;
      case EventKind::put_end:
        REQUIRE(streaming_);
        REQUIRE(stream_seen_bytes_ == stream_expected_bytes_);
        streaming_ = false;
        break;
      case EventKind::repl_hello:
        REQUIRE(event.data.size() <= ParserLimits::repl_hello_max_bytes);
        break;
      default:
        break;
    }
    if (streaming_) REQUIRE((event.kind == EventKind::put_begin || event.kind == EventKind::put_data));
  }

  void record(const Event& event) {
    if (event.kind == EventKind::put_data && !events_.empty() && events_.back().kind == EventKind::put_data) {
      events_.back().data.append(event.data);
      return;
    }
    events_.push_back({event.kind, std::string(event.key), std::string(event.data), event.value_size, event.byte});
  }

  ParserLimits limits_;
  FrameParser parser_;
  std::vector<Seen> events_;
  size_t peak_buffered_bytes_ = 0;
  bool streaming_ = false;
  uint64_t stream_expected_bytes_ = 0;
  uint64_t stream_seen_bytes_ = 0;
};

// Whole input in one call.
inline std::vector<Seen> parse_whole(const ParserLimits& limits, std::string_view bytes) {
  Feeder feeder(limits);
  feeder.feed(bytes);
  REQUIRE(feeder.parser().at_frame_boundary());
  REQUIRE(feeder.parser().buffered_bytes() == 0);
  return feeder.events();
}

// The input cut at the given ascending offsets.
inline std::vector<Seen> parse_cut(const ParserLimits& limits, std::string_view bytes,
                                   const std::vector<size_t>& cuts) {
  Feeder feeder(limits);
  size_t start = 0;
  for (const size_t cut : cuts) {
    REQUIRE(cut >= start);
    feeder.feed_copy(bytes.substr(start, cut - start));
    start = cut;
  }
  feeder.feed_copy(bytes.substr(start));
  REQUIRE(feeder.parser().at_frame_boundary());
  REQUIRE(feeder.parser().buffered_bytes() == 0);
  return feeder.events();
}

// Seastar-style fragment sweep: fixed-size chunks.
inline std::vector<Seen> parse_chunks(const ParserLimits& limits, std::string_view bytes, size_t chunk_bytes) {
  std::vector<size_t> cuts;
  for (size_t cut = chunk_bytes; cut < bytes.size(); cut += chunk_bytes) cuts.push_back(cut);
  return parse_cut(limits, bytes, cuts);
}

inline constexpr size_t sweep_chunk_sizes[] = {100000, 1000, 100, 10, 5, 2, 1};

// Feeds `bytes` whole, split once at every offset, and in every sweep chunk
// size; each must give `expected`.
inline void check_every_split(const ParserLimits& limits, std::string_view bytes,
                              const std::vector<Seen>& expected) {
  CHECK(parse_whole(limits, bytes) == expected);
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    CAPTURE(cut);
    REQUIRE(parse_cut(limits, bytes, {cut}) == expected);
  }
  for (const size_t chunk_bytes : sweep_chunk_sizes) {
    CAPTURE(chunk_bytes);
    REQUIRE(parse_chunks(limits, bytes, chunk_bytes) == expected);
  }
}

}  // namespace ringcache::protocol::test
