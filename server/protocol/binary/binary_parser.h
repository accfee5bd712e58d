// FrameParser: the binary protocol (docs/binary_protocol.md) as a pure, incremental function
// of bytes. No I/O, no store, and no allocation for frames that arrive whole.
//
// Wire format, every field a 32-bit big-endian length then that many bytes:
//
//   PUT   | 11 | key_len:u32be | key | value_len:u32be | value |
//   DEL   | 12 | key_len:u32be | key |
//   GET   | 13 | key_len:u32be | key |
//   STATS | 21 |
//   AUTH  | 31 | user_len:u32be | user | password_len:u32be | password |   (only with ParserLimits::auth)
//   hello | 200 | hello_len:u32be | hello |   (only as the connection's first byte)
//
// The caller feeds whatever bytes it has; each next() returns at most one
// Event and says how many input bytes it used. Partial frames are kept inside
// the parser, so the caller never holds on to its receive buffers (they belong
// to a provided-buffer ring shared by all connections, see docs/platform.md).
//
// What the parser holds, and why it is bounded:
// - keys are delivered whole; a key split across inputs is copied here. Keys
//   are at most item_bytes_max (longer ones are too_big and skipped unread).
// - a PUT value is delivered whole (one `put` event) when value_size <=
//   inline_value_bytes_max and key_size + value_size <= frame_buffer_bytes_max()
//   (= max(item_bytes_max, inline_value_bytes_max)); only then may the parser
//   hold key and value together. Any other value is streamed: put_begin, then
//   put_data views straight into the caller's input (never copied), then
//   put_end. The second condition only matters for a key within
//   inline_value_bytes_max of item_bytes_max; it keeps one connection's buffer
//   under frame_buffer_bytes_max() + repl_hello_bytes_max whatever it sends.
// - the decision between put and put_begin depends only on the two lengths,
//   never on how the bytes were split, so every split gives the same events.
//
// - AUTH's user and password are at most auth_field_bytes_max each and are
//   always delivered whole (one `auth` event), so with ParserLimits::auth the
//   buffer may also hold 2 * auth_field_bytes_max (buffer_bytes_max()).
//
// Errors keep the stream in sync (docs/binary_protocol.md): an unknown opcode byte costs that
// one byte; a too long key or value is reported once when its length is read
// and the rest of that frame is consumed silently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "server/protocol/parse_step.h"

namespace ringcache::protocol {

enum class Opcode : uint8_t { put = 11, del = 12, get = 13, stats = 21, auth = 31, repl_hello = 200 };
enum class Reply : uint8_t { ok = 101, einval = 111, enotfound = 112, ebinary = 113, ebig = 114, eunk = 115 };

struct ParserLimits {
  uint64_t item_bytes_max;                          // --max-item: a key or value longer than this -> too_big
  uint32_t inline_value_bytes_max = 64 * 1024;      // values up to this come whole in one `put` event
  // AUTH (31) is an opcode only when the daemon authenticates clients
  // (--auth-file); otherwise byte 31 is unknown like any other.
  bool auth = false;
  static constexpr uint32_t repl_hello_bytes_max = 256;
  // An AUTH user or password longer than this -> auth_too_big. The auth file's
  // lines are shorter (server/process/auth.h), so no real credential is cut.
  static constexpr uint32_t auth_field_bytes_max = 1024;
};

enum class EventKind : uint8_t {
  need_more,       // every byte of input was consumed (or none was given); feed more
  get, del,        // .key
  stats,
  put,             // .key and the whole .data (value <= inline_value_bytes_max)
  put_begin,       // .key and .value_size (> inline_value_bytes_max, or key + value too large to buffer,
                   // see the header comment); put_data events follow
  put_data,        // .data: the next value bytes (a view into the input, never copied, never empty)
  put_end,         // the streamed value is complete (this event consumes no input)
  invalid_opcode,  // .byte: an unknown opcode byte; exactly that one byte was consumed; answer EINVAL, go on
  too_big,         // a key or value length > item_bytes_max was just read: answer EBIG once; the parser then
                   // silently consumes the rest of that frame (remaining key bytes, the value length and
                   // value bytes of a PUT) with no further events, so the stream stays in sync
  repl_hello,      // the connection's first byte was 200; .data = the hello field (<= 256 bytes)
  repl_invalid,    // the first byte was 200 but the hello field is longer than 256 bytes: answer EINVAL, close.
                   // The parser then discards all further input (need_more).
  auth,            // AUTH (only with ParserLimits::auth): .key = the user, .data = the password, both whole
  auth_too_big,    // an AUTH user or password length > auth_field_bytes_max was just read: a failed AUTH;
                   // the rest of the frame is consumed silently, as after too_big
};

struct Event {
  EventKind kind = EventKind::need_more;
  std::string_view key;     // get/del/put/put_begin; auth: the user
  std::string_view data;    // put, put_data, repl_hello; auth: the password
  uint64_t value_size = 0;  // put_begin (and put: == data.size())
  uint8_t byte = 0;         // invalid_opcode
};

// The keys of the whole GET, DEL and PUT frames at the start of `input`,
// which must begin at a frame boundary: at most `max` of them, stopping at the
// first partial frame or byte that is not a GET/DEL/PUT/STATS opcode. A
// look-ahead for prefetching the store (StoreThread::prefetch), so it checks
// no limit: FrameParser::next still parses and validates every byte.
size_t peek_frame_keys(std::string_view input, std::string_view* keys, size_t max);

class FrameParser {
 public:
  explicit FrameParser(const ParserLimits& limits);

  // Parses at most one event from `input`, sets `consumed` to the number of input bytes used.
  // Views in the returned event point into `input` (when the bytes were contiguous there) or into the
  // parser's own buffer (a key or small value split across inputs); they stay valid until the next call.
  // need_more is returned with consumed == input.size() (partial bytes are kept inside the parser).
  // Every other event either consumes at least one byte or is a put_end, so a caller that loops until
  // need_more always terminates. Buffering a split field allocates (at most frame_buffer_bytes_max());
  // if that throws std::bad_alloc the parser's position is lost and the connection must be closed.
  Event next(std::string_view input, size_t& consumed);

  // True between frames (nothing partial buffered): a clean place to close or to stop reading.
  bool at_frame_boundary() const;

  // Bytes the parser currently holds in its own buffer (for per-connection memory accounting).
  // This is the allocation, not just the bytes in use. It grows with the bytes received (a bare
  // length allocates nothing), is freed when the frame is done, and never exceeds buffer_bytes_max().
  size_t buffered_bytes() const;

  // The largest key + inline value the parser will ever hold at once.
  uint64_t frame_buffer_bytes_max() const;
  // The most buffered_bytes() can be: a frame buffer, a replication hello, or
  // an AUTH user and password (with ParserLimits::auth).
  uint64_t buffer_bytes_max() const;

  // True when `view` lies inside the parser's own buffer (for checks in tests and fuzzing).
  bool in_own_buffer(std::string_view view) const;

 private:
  enum class State : uint8_t {
    opcode,
    key_length,
    key_bytes,
    value_length,
    value_bytes,
    value_stream,
    value_stream_end,
    skip_key,
    skip_value_length,
    skip_value_bytes,
    hello_length,
    hello_bytes,
    closed,
  };

  // Result of gathering a field whose bytes may arrive in several inputs.
  enum class Gather : uint8_t { partial, complete };

  // One step of the state machine (parse_step.h), then one function per
  // state it runs.
  using Step = ParseStep;
  Step step(std::string_view input, size_t& pos, Event& event);
  Step read_opcode(std::string_view input, size_t& pos, Event& event);
  Step read_key_length(std::string_view input, size_t& pos, Event& event);
  Step read_key(std::string_view input, size_t& pos, Event& event);
  Step read_value_length(std::string_view input, size_t& pos, Event& event);
  Step read_value(std::string_view input, size_t& pos, Event& event);
  Step stream_value(std::string_view input, size_t& pos, Event& event);
  Step skip_bytes(std::string_view input, size_t& pos);
  Step skip_value_length(std::string_view input, size_t& pos);
  Step read_hello_length(std::string_view input, size_t& pos, Event& event);
  Step read_hello(std::string_view input, size_t& pos, Event& event);
  bool refuse_too_big(uint32_t length, State skip_state, Event& event);

  // True once all four bytes of a length arrived, possibly over several inputs.
  bool read_length(std::string_view input, size_t& pos, uint32_t& length);
  Gather gather(std::string_view input, size_t& pos, uint64_t size, std::string_view& field);
  void grow_buffer(uint64_t needed_bytes, uint64_t frame_bytes);
  void append_buffer(std::string_view bytes);
  void stash_key();
  void release_frame();

  std::string_view current_key() const;
  // The longest key (or AUTH user) or value (or password) of the frame being parsed.
  uint64_t field_bytes_max() const {
    return opcode_ == Opcode::auth ? ParserLimits::auth_field_bytes_max : limits_.item_bytes_max;
  }

  ParserLimits limits_;
  State state_ = State::opcode;
  Opcode opcode_ = Opcode::get;
  bool first_byte_ = true;
  // The previous event handed out views into buffer_; empty it on the next call.
  bool release_pending_ = false;

  uint8_t length_bytes_[4] = {};
  uint8_t length_have_ = 0;

  uint32_t key_size_ = 0;
  uint32_t value_size_ = 0;
  uint32_t hello_size_ = 0;
  // Bytes still to deliver (value_stream) or to drop (skip_*).
  uint64_t remaining_ = 0;

  // The key of the frame being parsed when it is not (or no longer) in buffer_:
  // a view into the current call's input, valid only inside that call.
  std::string_view key_in_input_;
  bool key_in_buffer_ = false;

  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_ = 0;
  size_t buffer_size_ = 0;
};

}  // namespace ringcache::protocol
