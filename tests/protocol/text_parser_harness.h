// TextParser (memcached text protocol) in the shared parser checks: the
// recorded event (Seen) and how tests spell it, and TextParser's
// ParserAdapter (checked_parser.h) with the promises of text_parser.h that are
// its own. Used by the unit tests and by tests/fuzz/fuzz_text_parser.cc, so
// no test framework here.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/text/text_parser.h"
#include "tests/protocol/checked_parser.h"

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

// A list of Seen prints as checked_parser.h says.
using ringcache::test::operator<<;

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

// Expected events, spelled the way the tests read best (C::get, E::too_large).
using C = Command;
using E = Error;

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

inline bool is_storage(Command command) {
  switch (command) {
    case Command::set: case Command::add: case Command::replace: case Command::append:
    case Command::prepend: case Command::cas: case Command::meta_set:
      return true;
    default:
      return false;
  }
}

}  // namespace ringcache::protocol::text::test

namespace ringcache::test {

template <>
struct ParserAdapter<protocol::text::ParserLimits> {
  using Parser = protocol::text::TextParser;
  using Event = protocol::text::Event;
  using Kind = protocol::text::EventKind;
  using Command = protocol::text::Command;
  using Error = protocol::text::Error;
  using Limits = protocol::text::ParserLimits;

  static uint64_t buffered_bytes_max(const Limits&, const Parser& parser) { return parser.frame_buffer_bytes_max(); }

  static bool may_consume_nothing(const Event&) { return false; }

  // Only a bad data chunk ends a stream early (an error event at its end).
  static StreamRole stream_role(const Event& event) {
    switch (event.kind) {
      case Kind::value_begin: return StreamRole::begin;
      case Kind::value_data: return StreamRole::data;
      case Kind::value_end: return StreamRole::end;
      case Kind::error: return StreamRole::abort;
      default: return StreamRole::none;
    }
  }

  static bool continues_stream(const Event& event) {
    return event.kind == Kind::value_data || event.kind == Kind::value_end ||
           (event.kind == Kind::error && event.error == Error::bad_data_chunk);
  }

  template <class Checked>
  static void check(const Event& event, std::string_view input, const Checked& checked, Promises& promises) {
    const Limits& limits = checked.limits();
    const Parser& parser = checked.parser();
    require_views_in_input_or_parser(std::array{event.key, event.keys, event.data}, input, parser, promises);
    if (event.meta != nullptr) {
      const protocol::text::MetaRequest& meta = *event.meta;
      require_views_in_input_or_parser(std::array{meta.key_token, meta.opaque}, input, parser, promises);
      promises.require(meta.opaque.size() <= Limits::opaque_bytes_max, "opaque within its limit");
      promises.require(meta.count <= Limits::meta_tokens_max, "meta flags within meta_tokens_max");
      uint64_t bits = 0;
      for (size_t i = 0; i < meta.count && i < Limits::meta_tokens_max; ++i) {
        bits |= protocol::text::MetaRequest::bit(meta.order[i]);
      }
      promises.require(bits == meta.present, "meta flag order and bits agree");
    }
    if (!event.key.empty()) promises.require(event.key.size() <= Limits::key_bytes_max, "key within 250 bytes");
    if (event.kind != Kind::error) promises.require(event.error == Error::none, "only errors carry an error");
    switch (event.kind) {
      case Kind::request:
        promises.require(!parser.closed() || event.command == Command::quit, "nothing but quit closes the input");
        if (protocol::text::test::is_storage(event.command)) {
          promises.require(event.data.size() == event.value_size, "inline value size matches");
          promises.require(event.value_size <= limits.inline_value_bytes_max, "inline value within its limit");
        }
        break;
      case Kind::value_begin:
        promises.require(protocol::text::test::is_storage(event.command), "only storage commands stream");
        promises.require(event.value_size > limits.inline_value_bytes_max, "streamed only above the inline limit");
        promises.require(event.value_size <= limits.item_bytes_max, "streamed value within item_max");
        break;
      case Kind::value_data:
      case Kind::need_more:  // feed() never passes one
        break;
      case Kind::value_end:
        promises.require(event.value_size == checked.stream_expected_bytes(), "value_end repeats value_size");
        break;
      case Kind::error:
        promises.require(event.error != Error::none && !protocol::text::error_line(event.error).empty(),
                         "errors have a reply line");
        if (event.error == Error::line_too_long) promises.require(parser.closed(), "line_too_long closes the input");
        break;
    }
  }

  static void check_idle(const Parser& parser, bool streaming, Promises& promises) {
    promises.require(!parser.at_frame_boundary() || !streaming || parser.closed(),
                     "a stream in progress is no boundary");
  }

  // A complete input ends at a request boundary, with the buffer freed.
  static bool at_rest(const Parser& parser) { return parser.at_frame_boundary() && parser.buffered_bytes() == 0; }

  // Retrieval keys joined by single spaces. Errors record only what their
  // reply depends on (command, error, noreply, and the key of too_large).
  static protocol::text::test::Seen seen(const Event& event) {
    protocol::text::test::Seen seen;
    seen.kind = event.kind;
    seen.command = event.command;
    if (event.kind == Kind::error) {
      seen.error = event.error;
      seen.noreply = event.noreply;
      if (event.error == Error::too_large) seen.key = std::string(event.key);
      return seen;
    }
    seen.noreply = event.noreply;
    seen.key = std::string(event.key);
    std::string_view keys = event.keys;
    std::string_view key;
    while (protocol::text::next_key(keys, key)) seen.keys += (seen.keys.empty() ? "" : " ") + std::string(key);
    seen.data = std::string(event.data);
    seen.value_size = event.value_size;
    seen.number = event.number;
    seen.exptime = event.exptime;
    seen.flags = event.flags;
    if (event.meta != nullptr) {
      const protocol::text::MetaRequest& m = *event.meta;
      seen.meta = protocol::text::test::MetaSeen{
          std::string(m.order.data(), std::min<size_t>(m.count, Limits::meta_tokens_max)), std::string(m.key_token),
          std::string(m.opaque), m.ttl, m.vivify_ttl, m.recache_ttl, m.compare_cas, m.delta, m.initial,
          m.client_flags, m.mode};
    }
    return seen;
  }
};

}  // namespace ringcache::test
