// CheckedParser: drives one incremental parser the way the daemon's receive
// loop does (next() until need_more) and checks, on every call, the promises
// every parser of this repository makes: FrameParser (binary protocol),
// TextParser (memcached text protocol) and StreamDecoder (replication).
// The unit tests (parser_sweep.h) and the libFuzzer targets (tests/fuzz)
// drive their parsers through it, so both check the same contract.
//
// What all three parsers share is checked here:
//   - consumed <= input; need_more consumes all of it;
//   - an event consumes input, except where the parser's adapter allows one
//     (a streamed PUT's end), and never twice in a row;
//   - buffered_bytes() stays within the parser's bound;
//   - a streamed value is begin, data pieces (never empty, views into the
//     input itself, adding up exactly to value_size), end; nothing else
//     comes in between.
// What differs lives in ParserAdapter<Limits>, specialised once per parser
// (keyed by its limits type, so a limits value names its parser) in
// binary_parser_harness.h, text_parser_harness.h and
// tests/replication/wire_harness.h. An adapter provides:
//   Parser, Event
//   buffered_bytes_max(limits, parser)       the bound on buffered_bytes()
//   may_consume_nothing(event)               the events allowed to consume
//                                            no input
//   stream_role(event)                       where it stands in a stream
//   continues_stream(event)                  may come while a value streams
//   check(event, input, checked, promises)   its own promises per event
//                                            (never a need_more)
//   check_idle(parser, streaming, promises)  after each need_more
//   at_rest(parser)                          after a complete input
//   seen(event)                              the event recorded, a Seen:
//                                            the event with its bytes owned
//                                            (a std::string `data`,
//                                            operator==)
// A PUT stream (binary protocol, replication) takes Event and the middle three
// from PutStreamAdapter; a parser that frees its buffer at every boundary takes
// the last two from FrameBoundaryAdapter.
//
// No test framework here: a broken promise is returned as its description,
// which the unit tests turn into a failure and the fuzz targets into abort().
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>
#include <utility>
#include <vector>

namespace ringcache::test {

template <class Limits>
struct ParserAdapter;

// Where an event stands in a streamed value. abort: the stream, if any, ends
// without its end event (the text protocol's bad data chunk).
enum class StreamRole : uint8_t { none, begin, data, end, abort };

inline bool view_inside(std::string_view view, std::string_view outer) {
  const auto inner_begin = reinterpret_cast<uintptr_t>(view.data());
  const auto outer_begin = reinterpret_cast<uintptr_t>(outer.data());
  return inner_begin >= outer_begin && inner_begin + view.size() <= outer_begin + outer.size();
}

// The first promise found broken in a series of checks.
class Promises {
 public:
  void require(bool kept, const char* what) {
    if (!kept && broken_ == nullptr) broken_ = what;
  }
  const char* broken() const { return broken_; }

 private:
  const char* broken_ = nullptr;
};

// A value streamed as a begin event, data pieces, and an end event that
// consumes no input: a PUT in the binary protocol and in replication
// (PutStreamAdapter), a value in memcached's binary protocol. Their
// adapters derive from this and take Event and Kind from it.
template <class StreamEvent, auto begin_kind, auto data_kind, auto end_kind>
struct StreamAdapter {
  using Event = StreamEvent;
  using Kind = decltype(Event::kind);

  static bool may_consume_nothing(const Event& event) { return event.kind == end_kind; }

  static StreamRole stream_role(const Event& event) {
    if (event.kind == begin_kind) return StreamRole::begin;
    if (event.kind == data_kind) return StreamRole::data;
    return event.kind == end_kind ? StreamRole::end : StreamRole::none;
  }

  static bool continues_stream(const Event& event) { return event.kind == data_kind || event.kind == end_kind; }
};

template <class Event>
using PutStreamAdapter = StreamAdapter<Event, decltype(Event::kind)::put_begin, decltype(Event::kind)::put_data,
                                       decltype(Event::kind)::put_end>;

// check_idle and at_rest of a parser that frees its buffer at every frame
// boundary (the binary and memcached binary parsers); their adapters derive
// from this.
struct FrameBoundaryAdapter {
  template <class Parser>
  static void check_idle(const Parser& parser, bool streaming, Promises& promises) {
    promises.require(!parser.at_frame_boundary() || parser.buffered_bytes() == 0,
                     "nothing buffered at a frame boundary");
    promises.require(!streaming || !parser.at_frame_boundary(), "a stream in progress is not a boundary");
  }

  template <class Parser>
  static bool at_rest(const Parser& parser) {
    return parser.at_frame_boundary() && parser.buffered_bytes() == 0;
  }
};

// Every non-empty view lies in the input or in the parser's own buffer.
template <class Parser, size_t views_count>
void require_views_in_input_or_parser(const std::array<std::string_view, views_count>& views,
                                      std::string_view input, const Parser& parser, Promises& promises) {
  for (const std::string_view view : views) {
    if (!view.empty()) {
      promises.require(view_inside(view, input) || parser.in_own_buffer(view), "views lie in the input or the parser");
    }
  }
}

template <class Limits>
class CheckedParser {
 public:
  using Adapter = ParserAdapter<Limits>;
  using Parser = typename Adapter::Parser;
  using Event = typename Adapter::Event;
  using Seen = decltype(Adapter::seen(std::declval<const Event&>()));

  explicit CheckedParser(const Limits& limits) : limits_(limits), parser_(limits) {}

  // Feeds `input` until the parser asks for more. Returns the first broken
  // promise (then stops where it found it), or nullptr.
  [[nodiscard]] const char* feed(std::string_view input) {
    std::string_view rest = input;
    bool previous_consumed_nothing = false;
    for (;;) {
      size_t consumed = SIZE_MAX;
      const Event event = parser_.next(rest, consumed);
      Promises promises;
      promises.require(consumed <= rest.size(), "consumed <= input size");
      promises.require(parser_.buffered_bytes() <= Adapter::buffered_bytes_max(limits_, parser_),
                       "buffered_bytes within its bound");
      peak_buffered_bytes_ = std::max(peak_buffered_bytes_, parser_.buffered_bytes());
      if (event.kind == decltype(event.kind)::need_more) {
        promises.require(consumed == rest.size(), "need_more consumes all input");
        Adapter::check_idle(parser_, streaming_, promises);
        return promises.broken();
      }
      if (consumed == 0) {
        promises.require(Adapter::may_consume_nothing(event), "an event consumes input");
        promises.require(!previous_consumed_nothing, "no two events without progress");
      } else {
        promises.require(!Adapter::may_consume_nothing(event), "an event that may consume nothing consumes nothing");
      }
      previous_consumed_nothing = consumed == 0;
      if (streaming_) promises.require(Adapter::continues_stream(event), "a stream is not interrupted");
      Adapter::check(event, rest, *this, promises);
      const StreamRole role = Adapter::stream_role(event);
      check_stream(role, event, rest, promises);
      if (promises.broken() != nullptr) return promises.broken();
      record(role, event);
      rest.remove_prefix(consumed);
    }
  }

  const std::vector<Seen>& events() const { return events_; }
  const Limits& limits() const { return limits_; }
  Parser& parser() { return parser_; }
  const Parser& parser() const { return parser_; }
  size_t peak_buffered_bytes() const { return peak_buffered_bytes_; }
  bool streaming() const { return streaming_; }
  uint64_t stream_expected_bytes() const { return stream_expected_bytes_; }

 private:
  void check_stream(StreamRole role, const Event& event, std::string_view input, Promises& promises) {
    switch (role) {
      case StreamRole::begin:
        promises.require(!streaming_, "no stream begins inside another");
        promises.require(event.value_size > 0, "a streamed value is not empty");
        streaming_ = true;
        stream_expected_bytes_ = event.value_size;
        stream_seen_bytes_ = 0;
        break;
      case StreamRole::data:
        promises.require(streaming_, "value data inside a stream");
        promises.require(!event.data.empty(), "value data not empty");
        promises.require(view_inside(event.data, input), "value data is a view into the input");
        stream_seen_bytes_ += event.data.size();
        promises.require(stream_seen_bytes_ <= stream_expected_bytes_, "value data within value_size");
        break;
      case StreamRole::end:
        promises.require(streaming_, "a stream's end closes a stream");
        promises.require(stream_seen_bytes_ == stream_expected_bytes_, "value data adds up to value_size");
        streaming_ = false;
        break;
      case StreamRole::abort:
        if (streaming_) {
          promises.require(stream_seen_bytes_ == stream_expected_bytes_, "a stream fails only at its end");
        }
        streaming_ = false;
        break;
      case StreamRole::none:
        break;
    }
  }

  // Consecutive data pieces are merged, so every way of splitting the input
  // records the same sequence.
  void record(StreamRole role, const Event& event) {
    if (role == StreamRole::data && last_was_data_) {
      events_.back().data.append(event.data);
      return;
    }
    events_.push_back(Adapter::seen(event));
    last_was_data_ = role == StreamRole::data;
  }

  Limits limits_;
  Parser parser_;
  std::vector<Seen> events_;
  bool last_was_data_ = false;
  size_t peak_buffered_bytes_ = 0;
  bool streaming_ = false;
  uint64_t stream_expected_bytes_ = 0;
  uint64_t stream_seen_bytes_ = 0;
};

// A list of events, the first few in full (doctest prints expected and seen).
// Each harness takes it into the namespace of its Seen with a
// using-declaration, where doctest's argument-dependent lookup finds it.
template <class Seen>
  requires requires(const Seen& seen) { seen.kind; seen.data; }
std::ostream& operator<<(std::ostream& out, const std::vector<Seen>& events) {
  constexpr size_t shown_events_max = 12;
  out << events.size() << " events [";
  for (size_t i = 0; i < events.size() && i < shown_events_max; ++i) out << (i ? ", " : "") << events[i];
  return out << (events.size() > shown_events_max ? ", ...]" : "]");
}

}  // namespace ringcache::test
