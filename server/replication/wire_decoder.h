// StreamDecoder: the replication stream after the hello (wire.h), as a pure
// incremental function of bytes: no I/O, no store, no allocation for frames
// that arrive whole.
//
// Each next() returns at most one event and says how many input bytes it
// used; views in an event point into the input or into the decoder's buffer
// and stay valid until the next call. A PUT whose value is at most
// inline_value_bytes_max comes whole (put); a larger one streams (put_begin
// with the key and meta, put_data views straight into the input, put_end), so
// the decoder never holds more than one key plus one inline value. The split
// of the input never changes the events, only where put_data pieces end.
//
// Errors:
// - a key or value longer than item_bytes_max (the peers disagree on
//   --max-item): too_big once, then the rest of that frame is skipped; the
//   stream stays usable.
// - a byte that is not a known opcode where one is expected (a HELLO again
//   included): bad_opcode, after which the stream cannot be trusted; the
//   decoder swallows everything that follows and the caller closes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/protocol/parse_step.h"
#include "server/replication/wire.h"

namespace ringcache::replication {

struct DecoderLimits {
  uint64_t item_bytes_max = 0;                  // --max-item of the receiving node
  uint32_t inline_value_bytes_max = 64 * 1024;  // larger values stream
};

enum class DecodeKind : uint8_t {
  need_more,     // all input was used (or none was given); feed more
  put,           // .key, .data (the whole value), .meta
  put_begin,     // .key, .meta, .value_size; put_data events follow
  put_data,      // .data: next value bytes (never empty, a view into the input)
  put_end,       // the streamed value is complete (consumes no input)
  del,           // .key, .meta.version
  resync_begin,
  resync_end,    // .number = items the sender's copy held
  heartbeat,     // .number = sender's unix microseconds when it queued the heartbeat
  mesh,          // .number = peers the sender lists
  flush,         // .meta.version = threshold, .number = at_s (unix seconds, 0 = now)
  too_big,       // a key or value over item_bytes_max; the frame is skipped
  bad_opcode,    // .byte: not an opcode; the stream is dead, close it
};

struct DecodeEvent {
  DecodeKind kind = DecodeKind::need_more;
  std::string_view key;
  std::string_view data;
  uint64_t value_size = 0;
  PutMeta meta;
  uint64_t number = 0;
  uint8_t byte = 0;
};

const char* decode_kind_name(DecodeKind kind);

class StreamDecoder {
 public:
  explicit StreamDecoder(const DecoderLimits& limits);

  // Parses at most one event from `input`; `consumed` = bytes used. need_more
  // always uses the whole input. A caller that loops until need_more
  // terminates: every other event uses input or is a put_end. Buffering a
  // split frame may throw std::bad_alloc: the stream is then lost (close).
  DecodeEvent next(std::string_view input, size_t& consumed);

  bool at_frame_boundary() const;
  bool failed() const { return state_ == State::failed; }
  // Memory the decoder holds (its buffer's allocation).
  size_t buffered_bytes() const { return buffer_.capacity(); }

 private:
  enum class State : uint8_t {
    opcode,
    fixed,
    key,
    value_length,
    value,
    value_stream,
    value_stream_end,
    skip,
    skip_value_length,
    failed,
  };

  // One step of the state machine (parse_step.h), then one function per
  // state it runs.
  using Step = protocol::ParseStep;
  Step step(std::string_view input, size_t& pos, DecodeEvent& e);
  Step read_opcode(std::string_view input, size_t& pos, DecodeEvent& e);
  Step read_fixed(std::string_view input, size_t& pos, DecodeEvent& e);
  Step on_fixed(DecodeEvent& e);
  Step read_key(std::string_view input, size_t& pos, DecodeEvent& e);
  Step read_value_length(std::string_view input, size_t& pos, DecodeEvent& e);
  Step read_value(std::string_view input, size_t& pos, DecodeEvent& e);
  Step stream_value(std::string_view input, size_t& pos, DecodeEvent& e);
  Step skip_bytes(std::string_view input, size_t& pos);
  Step skip_value_length(std::string_view input, size_t& pos);
  bool refuse_too_big(uint32_t size, bool value_follows, DecodeEvent& e);
  bool gather(std::string_view input, size_t& pos, uint64_t size, std::string_view& out);
  bool read_length(std::string_view input, size_t& pos, uint32_t& length);
  std::string_view key() const;
  void stash_key();

  DecoderLimits limits_;
  State state_ = State::opcode;
  WireOp op_ = WireOp::put;

  // The fixed fields after the opcode (at most a PUT's 20 bytes).
  static constexpr size_t fixed_bytes_max = put_head_bytes - 1;
  char fixed_[fixed_bytes_max] = {};
  size_t fixed_need_ = 0;
  size_t fixed_have_ = 0;
  char length_[field_length_bytes] = {};
  size_t length_have_ = 0;

  PutMeta meta_;
  uint32_t key_size_ = 0;
  uint32_t value_size_ = 0;
  uint64_t remaining_ = 0;         // value_stream: to deliver; skip: to drop
  bool skip_value_follows_ = false;

  // The key is either a view into the current input (valid in this call
  // only) or the first key_size_ bytes of buffer_; an inline value being
  // gathered follows it there.
  std::string_view key_in_input_;
  bool key_in_buffer_ = false;
  uint64_t part_have_ = 0;         // bytes of the field being gathered held in buffer_
  std::string buffer_;
  bool release_pending_ = false;   // the last event had views into buffer_
};

}  // namespace ringcache::replication
