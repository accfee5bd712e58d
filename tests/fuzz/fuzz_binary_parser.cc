// libFuzzer target for FrameParser.
//
// Input layout: byte 0 picks the ParserLimits, byte 1 seeds the split points,
// the rest is the byte stream of one connection. The stream is parsed once
// whole and once cut into pieces (each piece a fresh heap copy, so ASan sees
// any view that outlives its input); both runs must give the events of a
// plain reference decoder, and every call must keep the promises of
// binary_parser.h.
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

#include "server/protocol/binary_parser.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using ringcache::protocol::Event;
using ringcache::protocol::EventKind;
using ringcache::protocol::FrameParser;
using ringcache::protocol::ParserLimits;

using fuzz_support::require;

// Small item limits reach EBIG and the key + value streaming rule with short
// inputs; the large ones keep the production shape.
constexpr uint64_t item_max_choices[] = {0, 1, 7, 64, 300, 4096, uint64_t{1} << 20, uint64_t{1} << 40};
constexpr uint32_t inline_max_choices[] = {0, 1, 16, 64, 256, 65536, 65536, 65536};

ParserLimits limits_from(uint8_t selector) {
  ParserLimits limits{item_max_choices[selector & 7]};
  limits.inline_value_max_bytes = inline_max_choices[(selector >> 3) & 7];
  return limits;
}

bool view_inside(std::string_view view, std::string_view outer) {
  const auto inner_begin = reinterpret_cast<uintptr_t>(view.data());
  const auto outer_begin = reinterpret_cast<uintptr_t>(outer.data());
  return inner_begin >= outer_begin && inner_begin + view.size() <= outer_begin + outer.size();
}

// Events with their bytes copied; put_data pieces merged so splits compare equal.
struct Recorded {
  EventKind kind;
  std::string key;
  std::string data;
  uint64_t value_size;
  uint8_t byte;
  bool operator==(const Recorded&) const = default;
};

class CheckedParser {
 public:
  explicit CheckedParser(const ParserLimits& limits)
      : parser_(limits),
        limits_(limits),
        buffer_bound_bytes_(std::max<uint64_t>(
            {limits.item_max_bytes, limits.inline_value_max_bytes, ParserLimits::repl_hello_max_bytes})) {}

  void feed(std::string_view input) {
    std::string_view rest = input;
    bool previous_consumed_nothing = false;
    for (;;) {
      size_t consumed = SIZE_MAX;
      const Event event = parser_.next(rest, consumed);
      require(consumed <= rest.size(), "consumed <= input size");
      require(parser_.buffered_bytes() <= buffer_bound_bytes_, "buffered_bytes within its bound");
      if (event.kind == EventKind::need_more) {
        require(consumed == rest.size(), "need_more consumes all input");
        return;
      }
      // Progress: only put_end may consume nothing, and it always follows a put_data that did.
      require((consumed == 0) == (event.kind == EventKind::put_end), "only put_end consumes nothing");
      require(!(previous_consumed_nothing && consumed == 0), "no two events without progress");
      previous_consumed_nothing = consumed == 0;
      check(event, rest);
      record(event);
      rest.remove_prefix(consumed);
    }
  }

  void finish() {
    require(!parser_.at_frame_boundary() || parser_.buffered_bytes() == 0,
            "nothing buffered at a frame boundary");
    require(!streaming_ || !parser_.at_frame_boundary(), "a stream in progress is not a boundary");
  }

  const std::vector<Recorded>& events() const { return events_; }

 private:
  void check(const Event& event, std::string_view input) {
    for (const std::string_view view : {event.key, event.data}) {
      if (view.empty()) continue;
      require(view_inside(view, input) || parser_.in_own_buffer(view), "views lie in input or parser buffer");
    }
    if (streaming_)
      require(event.kind == EventKind::put_data || event.kind == EventKind::put_end, "stream not interrupted");
    switch (event.kind) {
      case EventKind::get:
      case EventKind::del:
        require(event.key.size() <= limits_.item_max_bytes, "key within item_max");
        break;
      case EventKind::put:
        require(event.key.size() <= limits_.item_max_bytes, "key within item_max");
        require(event.data.size() == event.value_size, "put value_size matches data");
        require(event.data.size() <= limits_.inline_value_max_bytes, "inline value within its limit");
        break;
      case EventKind::put_begin:
        require(event.key.size() <= limits_.item_max_bytes, "key within item_max");
        require(event.value_size > 0 && event.value_size <= limits_.item_max_bytes, "stream size sane");
        streaming_ = true;
        stream_expected_bytes_ = event.value_size;
        stream_seen_bytes_ = 0;
        break;
      case EventKind::put_data:
        require(streaming_, "put_data inside a stream");
        require(!event.data.empty(), "put_data not empty");
        require(view_inside(event.data, input), "put_data is a view into the input");
        stream_seen_bytes_ += event.data.size();
        require(stream_seen_bytes_ <= stream_expected_bytes_, "put_data within value_size");
        break;
      case EventKind::put_end:
        require(streaming_, "put_end closes a stream");
        require(stream_seen_bytes_ == stream_expected_bytes_, "put_data adds up to value_size");
        streaming_ = false;
        break;
      case EventKind::repl_hello:
        require(event.data.size() <= ParserLimits::repl_hello_max_bytes, "hello within its limit");
        [[fallthrough]];
      case EventKind::repl_invalid:
        require(!seen_any_, "replication hello only first");
        break;
      case EventKind::stats:
      case EventKind::invalid_opcode:
      case EventKind::too_big:
        break;
      case EventKind::need_more:
        require(false, "need_more handled by the caller");
        break;
    }
    seen_any_ = true;
  }

  void record(const Event& event) {
    if (event.kind == EventKind::put_data && !events_.empty() && events_.back().kind == EventKind::put_data) {
      events_.back().data.append(event.data);
      return;
    }
    events_.push_back({event.kind, std::string(event.key), std::string(event.data), event.value_size, event.byte});
  }

  FrameParser parser_;
  ParserLimits limits_;
  uint64_t buffer_bound_bytes_;
  std::vector<Recorded> events_;
  bool streaming_ = false;
  bool seen_any_ = false;
  uint64_t stream_expected_bytes_ = 0;
  uint64_t stream_seen_bytes_ = 0;
};

// The oracle: the protocol restated as a plain whole-buffer decoder, with no
// incremental state. Its events for the complete stream must equal the
// parser's; it stops where the stream ends inside a frame.
class ReferenceDecoder {
 public:
  ReferenceDecoder(const ParserLimits& limits, std::string_view stream) : limits_(limits), stream_(stream) {}

  std::vector<Recorded> decode() {
    bool first = true;
    while (pos_ < stream_.size()) {
      const auto byte = static_cast<uint8_t>(stream_[pos_++]);
      if (first && byte == 200) {
        uint32_t length = 0;
        if (!take_length(length)) break;
        if (length > ParserLimits::repl_hello_max_bytes) {
          emit(EventKind::repl_invalid);
          break;
        }
        std::string_view hello;
        if (!take_bytes(length, hello)) break;
        emit(EventKind::repl_hello, {}, hello);
        first = false;
        continue;
      }
      first = false;
      if (byte == 21) {
        emit(EventKind::stats);
      } else if (byte == 11 || byte == 12 || byte == 13) {
        if (!decode_keyed(byte)) break;
      } else {
        emit(EventKind::invalid_opcode, {}, {}, 0, byte);
      }
    }
    return events_;
  }

 private:
  // False when the stream ends inside the frame.
  bool decode_keyed(uint8_t opcode) {
    uint32_t key_length = 0;
    if (!take_length(key_length)) return false;
    if (key_length > limits_.item_max_bytes) {
      emit(EventKind::too_big);
      if (!skip(key_length)) return false;
      if (opcode != 11) return true;
      uint32_t value_length = 0;
      return take_length(value_length) && skip(value_length);
    }
    std::string_view key;
    if (!take_bytes(key_length, key)) return false;
    if (opcode != 11) {
      emit(opcode == 13 ? EventKind::get : EventKind::del, key);
      return true;
    }
    uint32_t value_length = 0;
    if (!take_length(value_length)) return false;
    if (value_length > limits_.item_max_bytes) {
      emit(EventKind::too_big);
      return skip(value_length);
    }
    const uint64_t frame_buffer_max_bytes = std::max<uint64_t>(limits_.item_max_bytes, limits_.inline_value_max_bytes);
    if (value_length <= limits_.inline_value_max_bytes && uint64_t{key_length} + value_length <= frame_buffer_max_bytes) {
      std::string_view value;
      if (!take_bytes(value_length, value)) return false;
      emit(EventKind::put, key, value, value_length);
      return true;
    }
    emit(EventKind::put_begin, key, {}, value_length);
    const size_t available = std::min<size_t>(value_length, stream_.size() - pos_);
    if (available > 0) emit(EventKind::put_data, {}, stream_.substr(pos_, available));
    pos_ += available;
    if (available < value_length) return false;
    emit(EventKind::put_end);
    return true;
  }

  bool take_length(uint32_t& length) {
    if (stream_.size() - pos_ < 4) return false;
    length = 0;
    for (size_t i = 0; i < 4; ++i) length = length << 8 | static_cast<uint8_t>(stream_[pos_ + i]);
    pos_ += 4;
    return true;
  }

  bool take_bytes(uint32_t length, std::string_view& bytes) {
    if (stream_.size() - pos_ < length) return false;
    bytes = stream_.substr(pos_, length);
    pos_ += length;
    return true;
  }

  bool skip(uint32_t length) {
    if (stream_.size() - pos_ < length) return false;
    pos_ += length;
    return true;
  }

  void emit(EventKind kind, std::string_view key = {}, std::string_view data = {}, uint64_t value_size = 0,
            uint8_t byte = 0) {
    events_.push_back({kind, std::string(key), std::string(data), value_size, byte});
  }

  ParserLimits limits_;
  std::string_view stream_;
  size_t pos_ = 0;
  std::vector<Recorded> events_;
};


}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t header_bytes = 2;
  if (size < header_bytes) return 0;
  const ParserLimits limits = limits_from(data[0]);
  const std::string_view stream(reinterpret_cast<const char*>(data) + header_bytes, size - header_bytes);

  CheckedParser whole(limits);
  whole.feed(stream);
  whole.finish();

  fuzz_support::check_peeked_keys(stream, &ringcache::protocol::peek_frame_keys);

  CheckedParser split(limits);
  fuzz_support::feed_in_pieces(split, stream, data[1] | static_cast<uint32_t>(size) << 8);
  split.finish();

  require(whole.events() == split.events(), "same events whole and split");
  require(whole.events() == ReferenceDecoder(limits, stream).decode(), "same events as the reference decoder");
  return 0;
}
