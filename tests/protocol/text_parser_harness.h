// Test harness for TextParser: a recorded-event type that owns its bytes, and
// a Feeder that drives the parser the way the daemon does (loop until
// need_more) while checking the contract of text_parser.h on every call.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/text_parser.h"

namespace ringcache::protocol::text::test {

struct MetaSeen {
  std::string order;  // flag letters in request order
  std::string key_token;
  std::string opaque;
  int64_t ttl = 0;
  int64_t vivify_ttl = 0;
  int64_t recache_ttl = 0;
  uint64_t compare_cas = 0;
  uint64_t delta = 1;
  uint64_t initial = 0;
  uint32_t client_flags = 0;
  char mode = 0;
  bool operator==(const MetaSeen&) const = default;

  MetaSeen with_key_token(std::string value) const { return with([&](MetaSeen& m) { m.key_token = value; }); }
  MetaSeen with_opaque(std::string value) const { return with([&](MetaSeen& m) { m.opaque = value; }); }
  MetaSeen with_ttl(int64_t value) const { return with([&](MetaSeen& m) { m.ttl = value; }); }
  MetaSeen with_vivify_ttl(int64_t value) const { return with([&](MetaSeen& m) { m.vivify_ttl = value; }); }
  MetaSeen with_recache_ttl(int64_t value) const { return with([&](MetaSeen& m) { m.recache_ttl = value; }); }
  MetaSeen with_compare_cas(uint64_t value) const { return with([&](MetaSeen& m) { m.compare_cas = value; }); }
  MetaSeen with_delta(uint64_t value) const { return with([&](MetaSeen& m) { m.delta = value; }); }
  MetaSeen with_initial(uint64_t value) const { return with([&](MetaSeen& m) { m.initial = value; }); }
  MetaSeen with_client_flags(uint32_t value) const { return with([&](MetaSeen& m) { m.client_flags = value; }); }
  MetaSeen with_mode(char value) const { return with([&](MetaSeen& m) { m.mode = value; }); }

 private:
  template <class Change>
  MetaSeen with(Change change) const {
    MetaSeen copy = *this;
    change(copy);
    return copy;
  }
};

// The flags of a meta request, letters in request order.
inline MetaSeen meta_flags(std::string order = {}) {
  MetaSeen meta;
  meta.order = std::move(order);
  return meta;
}

// One event with its bytes copied out. Consecutive value_data pieces are
// merged and retrieval keys joined by single spaces, so every way of
// splitting the input records the same sequence. Errors record only what
// their reply depends on (command, error, noreply, and the key of too_large).
struct Seen {
  EventKind kind = EventKind::request;
  Command command = Command::none;
  Error error = Error::none;
  bool noreply = false;
  std::string key;
  std::string keys;
  std::string data;
  uint64_t value_size = 0;
  uint64_t number = 0;
  int64_t exptime = 0;
  uint32_t flags = 0;
  std::optional<MetaSeen> meta;
  bool operator==(const Seen&) const = default;
};

inline Seen seen_error(Error error, Command command = Command::none, bool noreply = false) {
  Seen seen;
  seen.kind = EventKind::error;
  seen.error = error;
  seen.command = command;
  seen.noreply = noreply;
  return seen;
}

// A streamed storage request: value_begin, the merged value_data, value_end.
inline std::vector<Seen> seen_stream(const Seen& request, std::string_view value) {
  Seen begin = request;
  begin.kind = EventKind::value_begin;
  begin.data.clear();
  begin.value_size = value.size();
  Seen data;
  data.kind = EventKind::value_data;
  data.command = request.command;
  data.data = std::string(value);
  Seen end = begin;
  end.kind = EventKind::value_end;
  return {begin, data, end};
}

// Expected events, spelled the way the tests read best.
inline Seen seen_request(Command command) {
  Seen seen;
  seen.command = command;
  return seen;
}

inline Seen seen_retrieval(Command command, std::string keys, int64_t exptime = 0) {
  Seen seen = seen_request(command);
  seen.keys = std::move(keys);
  seen.exptime = exptime;
  return seen;
}

inline Seen seen_storage(Command command, std::string key, uint32_t flags, int64_t exptime, std::string value,
                         bool noreply = false, uint64_t cas_unique = 0) {
  Seen seen = seen_request(command);
  seen.key = std::move(key);
  seen.flags = flags;
  seen.exptime = exptime;
  seen.value_size = value.size();
  seen.data = std::move(value);
  seen.noreply = noreply;
  seen.number = cas_unique;
  return seen;
}

// delete, incr/decr (number = delta), touch (exptime).
inline Seen seen_keyed(Command command, std::string key, bool noreply = false, uint64_t number = 0,
                       int64_t exptime = 0) {
  Seen seen = seen_request(command);
  seen.key = std::move(key);
  seen.noreply = noreply;
  seen.number = number;
  seen.exptime = exptime;
  return seen;
}

inline Seen seen_meta(Command command, std::string key, MetaSeen meta, std::string value = {}) {
  Seen seen = seen_request(command);
  seen.key = std::move(key);
  if (meta.key_token.empty()) meta.key_token = seen.key;
  if (command == Command::meta_set) {
    if (meta.mode == 0) meta.mode = 'S';
    seen.value_size = value.size();
    seen.data = std::move(value);
  }
  if (command == Command::meta_arithmetic && meta.mode == 0) meta.mode = 'I';
  seen.meta = std::move(meta);
  return seen;
}

inline const char* kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::need_more: return "need_more";
    case EventKind::request: return "request";
    case EventKind::value_begin: return "value_begin";
    case EventKind::value_data: return "value_data";
    case EventKind::value_end: return "value_end";
    case EventKind::error: return "error";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& out, const Seen& seen) {
  constexpr size_t shown_bytes_max = 40;
  out << kind_name(seen.kind) << "{cmd=" << int{static_cast<uint8_t>(seen.command)}
      << " err=" << int{static_cast<uint8_t>(seen.error)} << " noreply=" << seen.noreply << " key=" << seen.key
      << " keys=" << seen.keys.substr(0, shown_bytes_max) << " data=" << seen.data.size() << "B:"
      << seen.data.substr(0, shown_bytes_max) << " size=" << seen.value_size << " n=" << seen.number
      << " exp=" << seen.exptime << " flags=" << seen.flags;
  if (seen.meta) {
    const MetaSeen& m = *seen.meta;
    out << " meta{" << m.order << " key=" << m.key_token << " O=" << m.opaque << " T=" << m.ttl
        << " N=" << m.vivify_ttl << " R=" << m.recache_ttl << " C=" << m.compare_cas << " D=" << m.delta
        << " J=" << m.initial << " F=" << m.client_flags << " M=" << (m.mode ? m.mode : '0') << "}";
  }
  return out << "}";
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

inline bool is_storage(Command command) {
  switch (command) {
    case Command::set: case Command::add: case Command::replace: case Command::append:
    case Command::prepend: case Command::cas: case Command::meta_set:
      return true;
    default:
      return false;
  }
}

// Drives one TextParser like the daemon's receive loop and checks, on every
// call, what the header promises: consumed <= input, need_more consumes all,
// every other event consumes at least one byte, views point into the input
// or the parser (value_data into the input only), a stream is value_begin,
// value_data adding up to value_size, then value_end or bad_data_chunk, and
// buffered_bytes() stays within frame_buffer_max_bytes().
class Feeder {
 public:
  explicit Feeder(const ParserLimits& limits) : limits_(limits), parser_(limits) {}

  void feed(std::string_view input) {
    std::string_view rest = input;
    for (;;) {
      size_t consumed = SIZE_MAX;
      const Event event = parser_.next(rest, consumed);
      REQUIRE(consumed <= rest.size());
      REQUIRE(parser_.buffered_bytes() <= parser_.frame_buffer_max_bytes());
      peak_buffered_bytes_ = std::max(peak_buffered_bytes_, parser_.buffered_bytes());
      if (event.kind == EventKind::need_more) {
        REQUIRE(consumed == rest.size());
        return;
      }
      REQUIRE(consumed > 0);
      check(event, rest);
      record(event);
      rest.remove_prefix(consumed);
    }
  }

  // Feeds a piece from its own short-lived copy, scribbled over before it is
  // freed, so a view kept into an older input shows up as wrong bytes.
  void feed_copy(std::string_view piece) {
    std::string copy(piece);
    feed(copy);
    std::fill(copy.begin(), copy.end(), '\xAA');
  }

  const std::vector<Seen>& events() const { return events_; }
  TextParser& parser() { return parser_; }
  size_t peak_buffered_bytes() const { return peak_buffered_bytes_; }
  bool streaming() const { return streaming_; }

 private:
  void check_view(std::string_view view, std::string_view input) {
    if (view.empty()) return;
    REQUIRE((view_inside(view, input) || parser_.in_own_buffer(view)));
  }

  void check(const Event& event, std::string_view input) {
    check_view(event.key, input);
    check_view(event.keys, input);
    check_view(event.data, input);
    if (event.meta != nullptr) {
      check_view(event.meta->key_token, input);
      check_view(event.meta->opaque, input);
      REQUIRE(event.meta->count <= ParserLimits::meta_tokens_max);
      uint64_t bits = 0;
      for (size_t i = 0; i < event.meta->count; ++i) bits |= MetaRequest::bit(event.meta->order[i]);
      REQUIRE(bits == event.meta->present);
    }
    if (streaming_) {
      REQUIRE((event.kind == EventKind::value_data || event.kind == EventKind::value_end ||
               (event.kind == EventKind::error && event.error == Error::bad_data_chunk)));
    }
    switch (event.kind) {
      case EventKind::request:
        if (is_storage(event.command)) {
          REQUIRE(event.data.size() == event.value_size);
          REQUIRE(event.value_size <= limits_.inline_value_max_bytes);
        }
        if (!event.key.empty()) REQUIRE(event.key.size() <= ParserLimits::key_max_bytes);
        break;
      case EventKind::value_begin:
        REQUIRE(is_storage(event.command));
        REQUIRE(event.value_size > limits_.inline_value_max_bytes);
        REQUIRE(event.value_size <= limits_.item_max_bytes);
        streaming_ = true;
        stream_expected_bytes_ = event.value_size;
        stream_seen_bytes_ = 0;
        break;
      case EventKind::value_data:
        REQUIRE(streaming_);
        REQUIRE_FALSE(event.data.empty());
        REQUIRE(view_inside(event.data, input));
        stream_seen_bytes_ += event.data.size();
        REQUIRE(stream_seen_bytes_ <= stream_expected_bytes_);
        break;
      case EventKind::value_end:
        REQUIRE(streaming_);
        REQUIRE(stream_seen_bytes_ == stream_expected_bytes_);
        REQUIRE(event.value_size == stream_expected_bytes_);
        streaming_ = false;
        break;
      case EventKind::error:
        if (streaming_) REQUIRE(stream_seen_bytes_ == stream_expected_bytes_);
        streaming_ = false;
        REQUIRE_FALSE(error_line(event.error).empty());
        break;
      case EventKind::need_more:
        FAIL("need_more is handled by the caller");
        break;
    }
  }

  void record(const Event& event) {
    if (event.kind == EventKind::value_data && !events_.empty() && events_.back().kind == EventKind::value_data) {
      events_.back().data.append(event.data);
      return;
    }
    Seen seen;
    seen.kind = event.kind;
    seen.command = event.command;
    if (event.kind == EventKind::error) {
      seen.error = event.error;
      seen.noreply = event.noreply;
      if (event.error == Error::too_large) seen.key = std::string(event.key);
      events_.push_back(seen);
      return;
    }
    if (event.kind == EventKind::value_data) {
      seen.data = std::string(event.data);
      events_.push_back(seen);
      return;
    }
    seen.noreply = event.noreply;
    seen.key = std::string(event.key);
    std::string_view keys = event.keys;
    std::string_view key;
    while (next_key(keys, key)) seen.keys += (seen.keys.empty() ? "" : " ") + std::string(key);
    seen.data = std::string(event.data);
    seen.value_size = event.value_size;
    seen.number = event.number;
    seen.exptime = event.exptime;
    seen.flags = event.flags;
    if (event.meta != nullptr) {
      const MetaRequest& m = *event.meta;
      seen.meta = MetaSeen{std::string(m.order.data(), m.count), std::string(m.key_token), std::string(m.opaque),
                           m.ttl, m.vivify_ttl, m.recache_ttl, m.compare_cas, m.delta, m.initial,
                           m.client_flags, m.mode};
    }
    events_.push_back(seen);
  }

  ParserLimits limits_;
  TextParser parser_;
  std::vector<Seen> events_;
  size_t peak_buffered_bytes_ = 0;
  bool streaming_ = false;
  uint64_t stream_expected_bytes_ = 0;
  uint64_t stream_seen_bytes_ = 0;
};

// Whole input in one call. A complete input ends at a request boundary.
inline std::vector<Seen> parse_whole(const ParserLimits& limits, std::string_view bytes) {
  Feeder feeder(limits);
  feeder.feed(bytes);
  REQUIRE(feeder.parser().at_frame_boundary());
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

}  // namespace ringcache::protocol::text::test
