// libFuzzer target for TextParser.
//
// Input layout: byte 0 picks the ParserLimits, byte 1 seeds the split points,
// the rest is the byte stream of one connection. The stream is parsed once
// whole and once cut into pieces (each piece a fresh heap copy, so ASan sees
// any view that outlives its input); both runs must give the same events and
// every call must keep the promises of text_parser.h. The oracle for the
// grammar is a round trip: every whole request is written back in canonical
// form and parsed again by a fresh parser, which must see the same request.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/text_parser.h"
#include "server/protocol/text_peek.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using ringcache::protocol::text::Command;
using ringcache::protocol::text::Error;
using ringcache::protocol::text::Event;
using ringcache::protocol::text::EventKind;
using ringcache::protocol::text::MetaRequest;
using ringcache::protocol::text::ParserLimits;
using ringcache::protocol::text::TextParser;

using fuzz_support::require;

// Small limits reach too_large, streaming and line_too_long with short
// inputs; the last choices keep the production shape.
constexpr uint64_t item_max_choices[] = {0, 1, 7, 64, 300, 4096, uint64_t{1} << 20, uint64_t{1} << 40};
constexpr uint32_t inline_max_choices[] = {0, 16, 256, 65536};
constexpr uint32_t line_max_choices[] = {16, 64, 300, 2048};

ParserLimits limits_from(uint8_t selector) {
  ParserLimits limits{item_max_choices[selector & 7]};
  limits.inline_value_max_bytes = inline_max_choices[(selector >> 3) & 3];
  limits.line_max_bytes = line_max_choices[(selector >> 5) & 3];
  limits.retrieval_line_max_bytes = limits.line_max_bytes * ((selector & 0x80) != 0 ? 32u : 2u);
  return limits;
}

bool view_inside(std::string_view view, std::string_view outer) {
  const auto inner_begin = reinterpret_cast<uintptr_t>(view.data());
  const auto outer_begin = reinterpret_cast<uintptr_t>(outer.data());
  return inner_begin >= outer_begin && inner_begin + view.size() <= outer_begin + outer.size();
}

bool is_storage(Command command) {
  switch (command) {
    case Command::set: case Command::add: case Command::replace: case Command::append:
    case Command::prepend: case Command::cas: case Command::meta_set:
      return true;
    default:
      return false;
  }
}

// An event with its bytes copied; value_data pieces merged and retrieval keys
// normalised, so splits and round trips compare equal.
struct Recorded {
  EventKind kind;
  Command command;
  Error error;
  bool noreply;
  std::string key, keys, data, meta_order, meta_key_token, meta_opaque;
  uint64_t value_size, number, meta_cas, meta_delta, meta_initial;
  int64_t exptime, meta_ttl, meta_vivify, meta_recache;
  uint32_t flags, meta_client_flags;
  char meta_mode;
  bool operator==(const Recorded&) const = default;
};

Recorded record(const Event& event) {
  Recorded r{event.kind, event.command, event.error, event.noreply, {}, {}, {}, {}, {}, {}, 0, 0, 0, 0, 0,
             0, 0, 0, 0, 0, 0, 0};
  if (event.kind == EventKind::error) {
    if (event.error == Error::too_large) r.key = std::string(event.key);
    return r;
  }
  r.key = std::string(event.key);
  std::string_view keys = event.keys;
  std::string_view key;
  while (ringcache::protocol::text::next_key(keys, key)) r.keys += (r.keys.empty() ? "" : " ") + std::string(key);
  r.data = std::string(event.data);
  r.value_size = event.value_size;
  r.number = event.number;
  r.exptime = event.exptime;
  r.flags = event.flags;
  if (event.meta != nullptr) {
    const MetaRequest& m = *event.meta;
    r.meta_order = std::string(m.order.data(), m.count);
    r.meta_key_token = std::string(m.key_token);
    r.meta_opaque = std::string(m.opaque);
    r.meta_cas = m.compare_cas;
    r.meta_delta = m.delta;
    r.meta_initial = m.initial;
    r.meta_ttl = m.ttl;
    r.meta_vivify = m.vivify_ttl;
    r.meta_recache = m.recache_ttl;
    r.meta_client_flags = m.client_flags;
    r.meta_mode = m.mode;
  }
  return r;
}

class CheckedParser {
 public:
  explicit CheckedParser(const ParserLimits& limits) : parser_(limits), limits_(limits) {}

  void feed(std::string_view input) {
    std::string_view rest = input;
    for (;;) {
      size_t consumed = SIZE_MAX;
      const Event event = parser_.next(rest, consumed);
      require(consumed <= rest.size(), "consumed <= input size");
      require(parser_.buffered_bytes() <= parser_.frame_buffer_max_bytes(), "buffered_bytes within its bound");
      if (event.kind == EventKind::need_more) {
        require(consumed == rest.size(), "need_more consumes all input");
        return;
      }
      require(consumed > 0, "every event consumes input");
      check(event, rest);
      if (event.kind == EventKind::value_data && !events_.empty() && events_.back().kind == EventKind::value_data) {
        events_.back().data.append(event.data);
      } else {
        events_.push_back(record(event));
      }
      rest.remove_prefix(consumed);
    }
  }

  void finish() const {
    require(!parser_.at_frame_boundary() || !streaming_ || parser_.closed(), "a stream in progress is no boundary");
  }

  const std::vector<Recorded>& events() const { return events_; }

 private:
  void check_view(std::string_view view, std::string_view input) const {
    if (view.empty()) return;
    require(view_inside(view, input) || parser_.in_own_buffer(view), "views lie in input or parser");
  }

  void check(const Event& event, std::string_view input) {
    check_view(event.key, input);
    check_view(event.keys, input);
    check_view(event.data, input);
    if (event.meta != nullptr) {
      check_view(event.meta->key_token, input);
      check_view(event.meta->opaque, input);
      require(event.meta->opaque.size() <= ParserLimits::opaque_max_bytes, "opaque within its limit");
    }
    if (!event.key.empty()) require(event.key.size() <= ParserLimits::key_max_bytes, "key within 250 bytes");
    if (streaming_) {
      require(event.kind == EventKind::value_data || event.kind == EventKind::value_end ||
                  (event.kind == EventKind::error && event.error == Error::bad_data_chunk),
              "a stream is not interrupted");
    }
    switch (event.kind) {
      case EventKind::request:
        require(!parser_.closed() || event.command == Command::quit, "nothing but quit closes the input");
        if (is_storage(event.command)) {
          require(event.data.size() == event.value_size, "inline value size matches");
          require(event.value_size <= limits_.inline_value_max_bytes, "inline value within its limit");
        }
        break;
      case EventKind::value_begin:
        require(is_storage(event.command), "only storage commands stream");
        require(event.value_size > limits_.inline_value_max_bytes, "streamed only above the inline limit");
        require(event.value_size <= limits_.item_max_bytes, "streamed value within item_max");
        streaming_ = true;
        stream_expected_bytes_ = event.value_size;
        stream_seen_bytes_ = 0;
        break;
      case EventKind::value_data:
        require(streaming_, "value_data inside a stream");
        require(!event.data.empty(), "value_data not empty");
        require(view_inside(event.data, input), "value_data is a view into the input");
        stream_seen_bytes_ += event.data.size();
        require(stream_seen_bytes_ <= stream_expected_bytes_, "value_data within value_size");
        break;
      case EventKind::value_end:
        require(streaming_ && stream_seen_bytes_ == stream_expected_bytes_, "value_data adds up to value_size");
        streaming_ = false;
        break;
      case EventKind::error:
        require(event.error != Error::none && !error_line(event.error).empty(), "errors have a reply line");
        if (event.error == Error::line_too_long) require(parser_.closed(), "line_too_long closes the input");
        if (streaming_) require(stream_seen_bytes_ == stream_expected_bytes_, "a stream fails only at its end");
        streaming_ = false;
        break;
      case EventKind::need_more:
        require(false, "need_more handled by the caller");
        break;
    }
  }

  TextParser parser_;
  ParserLimits limits_;
  std::vector<Recorded> events_;
  bool streaming_ = false;
  uint64_t stream_expected_bytes_ = 0;
  uint64_t stream_seen_bytes_ = 0;
};

const char* command_name(Command command) {
  switch (command) {
    case Command::get: return "get";
    case Command::gets: return "gets";
    case Command::gat: return "gat";
    case Command::gats: return "gats";
    case Command::set: return "set";
    case Command::add: return "add";
    case Command::replace: return "replace";
    case Command::append: return "append";
    case Command::prepend: return "prepend";
    case Command::cas: return "cas";
    case Command::del: return "delete";
    case Command::incr: return "incr";
    case Command::decr: return "decr";
    case Command::touch: return "touch";
    case Command::flush_all: return "flush_all";
    case Command::stats: return "stats";
    case Command::version: return "version";
    case Command::verbosity: return "verbosity";
    case Command::quit: return "quit";
    case Command::meta_get: return "mg";
    case Command::meta_set: return "ms";
    case Command::meta_delete: return "md";
    case Command::meta_arithmetic: return "ma";
    case Command::meta_noop: return "mn";
    case Command::none: break;
  }
  require(false, "a request has a command");
  return "";
}

std::string meta_flags_text(const Recorded& r) {
  std::string out;
  for (const char letter : r.meta_order) {
    out += ' ';
    out += letter;
    switch (letter) {
      case 'O': out += r.meta_opaque; break;
      case 'T': out += std::to_string(r.meta_ttl); break;
      case 'N': out += std::to_string(r.meta_vivify); break;
      case 'R': out += std::to_string(r.meta_recache); break;
      case 'C': out += std::to_string(r.meta_cas); break;
      case 'D': out += std::to_string(r.meta_delta); break;
      case 'J': out += std::to_string(r.meta_initial); break;
      case 'F': out += std::to_string(r.meta_client_flags); break;
      case 'M': out += r.meta_mode; break;
      default: break;
    }
  }
  return out;
}

// The request written back the way a well-behaved client would send it.
std::string canonical_text(const Recorded& r) {
  const std::string name = command_name(r.command);
  const std::string noreply = r.noreply ? " noreply" : "";
  switch (r.command) {
    case Command::get: case Command::gets:
      return name + " " + r.keys + "\r\n";
    case Command::gat: case Command::gats:
      return name + " " + std::to_string(r.exptime) + " " + r.keys + "\r\n";
    case Command::set: case Command::add: case Command::replace: case Command::append: case Command::prepend:
    case Command::cas:
      return name + " " + r.key + " " + std::to_string(r.flags) + " " + std::to_string(r.exptime) + " " +
             std::to_string(r.value_size) + (r.command == Command::cas ? " " + std::to_string(r.number) : "") +
             noreply + "\r\n" + r.data + "\r\n";
    case Command::del:
      return name + " " + r.key + noreply + "\r\n";
    case Command::incr: case Command::decr:
      return name + " " + r.key + " " + std::to_string(r.number) + noreply + "\r\n";
    case Command::touch:
      return name + " " + r.key + " " + std::to_string(r.exptime) + noreply + "\r\n";
    case Command::flush_all:
      return name + " " + std::to_string(r.exptime) + noreply + "\r\n";
    case Command::verbosity:
      return name + " " + std::to_string(r.number) + noreply + "\r\n";
    case Command::stats:
      return name + " " + r.data + "\r\n";
    case Command::version: case Command::quit: case Command::meta_noop:
      return name + "\r\n";
    case Command::meta_get: case Command::meta_delete: case Command::meta_arithmetic:
      return name + " " + r.meta_key_token + meta_flags_text(r) + "\r\n";
    case Command::meta_set:
      return name + " " + r.meta_key_token + " " + std::to_string(r.value_size) + meta_flags_text(r) + "\r\n" +
             r.data + "\r\n";
    case Command::none: break;
  }
  require(false, "a request has a command");
  return "";
}

void check_round_trip(const ParserLimits& limits, const Recorded& request) {
  // Generous line limits: the canonical form of a valid request may be longer.
  ParserLimits relaxed = limits;
  relaxed.line_max_bytes = 1 << 16;
  relaxed.retrieval_line_max_bytes = 1 << 17;
  CheckedParser again(relaxed);
  again.feed(canonical_text(request));
  require(again.events().size() == 1, "a canonical request is one event");
  require(again.events().front() == request, "a canonical request parses to the same request");
}


}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t header_bytes = 2;
  if (size < header_bytes) return 0;
  const ParserLimits limits = limits_from(data[0]);
  const std::string_view stream(reinterpret_cast<const char*>(data) + header_bytes, size - header_bytes);

  CheckedParser whole(limits);
  whole.feed(stream);
  whole.finish();

  fuzz_support::check_peeked_keys(stream, &ringcache::protocol::text::peek_text_keys);

  CheckedParser split(limits);
  fuzz_support::feed_in_pieces(split, stream, data[1] | static_cast<uint32_t>(size) << 8);
  split.finish();

  require(whole.events() == split.events(), "same events whole and split");
  for (const Recorded& event : whole.events())
    if (event.kind == EventKind::request) check_round_trip(limits, event);
  return 0;
}
