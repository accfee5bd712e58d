// TextParser: the memcached text protocol as a pure, incremental function of
// bytes (the text port, issue 7). No I/O, no store, and no allocation for
// requests that arrive whole. The model is FrameParser (binary_parser.h): the
// caller feeds whatever bytes it has, each next() returns at most one Event
// and says how many input bytes it used, and partial requests are kept inside
// the parser so the caller never holds on to its receive buffers.
//
// Wire format (memcached 1.6 protocol.txt; every line ends "\r\n", a bare "\n"
// is accepted as memcached does):
//
//   get|gets <key>+                 gat|gats <exptime> <key>*
//   set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]
//   cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]
//       ... then a data block: <bytes> bytes, then "\r\n"
//   delete <key> [0] [noreply]      incr|decr <key> <delta> [noreply]
//   touch <key> <exptime> [noreply] flush_all [delay] [noreply]
//   stats [args]   version   verbosity <level> [noreply]   quit
//   mg <key> <flag>*   ms <key> <bytes> <flag>* + data block   md <key> <flag>*
//   ma <key> <flag>*   mn
//
// Events: a whole request (`request`), or, for a value longer than
// inline_value_bytes_max, value_begin + value_data pieces (views into the
// caller's input, never copied) + value_end, or an `error` whose reply line is
// error_line(). The split between request and value_begin depends only on the
// announced byte count, so every way of splitting the input gives the same
// events.
//
// Errors follow memcached 1.6.18 (measured, see docs/text_protocol.md); the
// stream always stays in sync:
// - an unknown command, or a known one with the wrong number of tokens, is
//   `ERROR` (no data block is read after it: memcached cannot know its size);
// - a storage command whose byte count is readable always consumes its data
//   block, even when another field is bad. memcached parses such a block as a
//   command line instead, which can run a command hidden in a value: we do
//   not. A block whose last two bytes are not "\r\n" is `bad_data_chunk`;
// - a value longer than item_bytes_max is `too_large` and its data block is
//   skipped by counting, never buffered;
// - a line longer than line_bytes_max (retrieval_line_bytes_max for
//   get/gets/gat/gats, which carry many keys) is `line_too_long`: the request
//   cannot be read, so nothing after it can be framed and the parser discards
//   all further input (memcached closes such a connection; the daemon answers
//   the error first, then closes). `quit` likewise ends the input.
// - keys are 1..250 bytes without control characters or spaces (protocol.txt;
//   memcached itself lets control characters through: we refuse them).
//
// What the parser holds, and why it is bounded: a partial line (at most
// retrieval_line_bytes_max + 1), or one storage line (at most line_bytes_max)
// with the inline value and its "\r\n" behind it. frame_buffer_bytes_max()
// is the largest; buffered_bytes() never exceeds it. The buffer grows with the
// bytes that arrive, never with an announced size, and is freed after each
// request, so an idle connection holds nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "server/protocol/parse_step.h"

namespace ringcache::protocol::text {

struct ParserLimits {
  uint64_t item_bytes_max;                       // --max-item: a longer value -> too_large
  uint32_t inline_value_bytes_max = 64 * 1024;   // values up to this come whole in one `request`
  uint32_t line_bytes_max = 2048;                // a command line, without its "\r\n" (memcached: 2048)
  uint32_t retrieval_line_bytes_max = 64 * 1024; // a get/gets/gat/gats line (many keys)
  static constexpr uint32_t key_bytes_max = 250;
  static constexpr uint32_t opaque_bytes_max = 31;  // meta O(opaque) token (memcached: < 32)
  static constexpr uint32_t meta_tokens_max = 19;   // command, key, [size,] flags (memcached 1.6.18)
};

enum class Command : uint8_t {
  none,
  get, gets, gat, gats,
  set, add, replace, append, prepend, cas,
  del, incr, decr, touch,
  flush_all, stats, version, verbosity, quit,
  meta_get, meta_set, meta_delete, meta_arithmetic, meta_noop,
};

// The retrieval commands, each a get with or without two extras: the parser
// reads an exptime for those that touch, the processor answers a cas for
// those that show it.
constexpr bool is_retrieval(Command command) {
  return command == Command::get || command == Command::gets || command == Command::gat ||
         command == Command::gats;
}
constexpr bool touches(Command command) { return command == Command::gat || command == Command::gats; }
constexpr bool shows_cas(Command command) { return command == Command::gets || command == Command::gats; }

// Each value is one reply line; error_line() gives its exact bytes from a
// table in this order (text_command.cc).
enum class Error : uint8_t {
  none,
  unknown_command,           // ERROR
  bad_command_line,          // CLIENT_ERROR bad command line format
  bad_data_chunk,            // CLIENT_ERROR bad data chunk
  bad_delta,                 // CLIENT_ERROR invalid numeric delta argument
  bad_exptime,               // CLIENT_ERROR invalid exptime argument
  delete_usage,              // CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]
  line_too_long,             // CLIENT_ERROR line too long  (then close: the parser discards all input)
  too_large,                 // SERVER_ERROR object too large for cache  (data block skipped)
  meta_invalid_flag,         // CLIENT_ERROR invalid flag                 (mg, ms)
  meta_duplicate_flag,       // CLIENT_ERROR duplicate flag               (mg, ms)
  meta_bad_flag,             // CLIENT_ERROR invalid or duplicate flag    (md, ma: any flag error)
  meta_bad_token,            // CLIENT_ERROR bad token in command line format
  meta_key_decode,           // CLIENT_ERROR error decoding key           (mg, ms: b flag, bad base64)
  meta_opaque_too_long,      // CLIENT_ERROR opaque token too long
  meta_ms_mode,              // CLIENT_ERROR invalid mode for ms M token
  meta_ma_mode,              // CLIENT_ERROR invalid mode for ma M token
  meta_mode_length,          // CLIENT_ERROR incorrect length for M token
  meta_mg_too_many_flags,    // CLIENT_ERROR options flags are too long   (mg)
  meta_too_many_flags,       // CLIENT_ERROR options flags too long       (ms, md, ma)
};

// The reply line for an error, "\r\n" included.
std::string_view error_line(Error error);

// Flags of a meta command (mg/ms/md/ma). Which letters a command accepts, and
// which carry a token, follows memcached 1.6.18:
//   mg: b c f h k l O q s t u v N R T      ms: b c C F I k O q s T M N
//   md: b C I k O q T x                    ma: b C N J D T M q O t c v k
struct MetaRequest {
  // One bit per flag letter present: see bit().
  uint64_t present = 0;
  // The flag letters in request order (memcached answers return flags in it).
  std::array<char, ParserLimits::meta_tokens_max> order{};
  uint8_t count = 0;
  std::string_view key_token;  // the key as sent (base64 when b is set)
  std::string_view opaque;     // O
  int64_t ttl = 0;             // T
  int64_t vivify_ttl = 0;      // N
  int64_t recache_ttl = 0;     // R
  uint64_t compare_cas = 0;    // C
  uint64_t delta = 1;          // D (ma)
  uint64_t initial = 0;        // J (ma)
  uint32_t client_flags = 0;   // F (ms)
  // M: ms one of S E A P R (set add append prepend replace), default S;
  //    ma one of I D, '+' and '-' normalised to I and D, default I.
  char mode = 0;

  static constexpr uint64_t bit(char letter) {
    return letter >= 'a' && letter <= 'z'   ? uint64_t{1} << (letter - 'a')
           : letter >= 'A' && letter <= 'Z' ? uint64_t{1} << (26 + letter - 'A')
                                            : 0;
  }
  bool has(char letter) const { return (present & bit(letter)) != 0; }
};

enum class EventKind : uint8_t {
  need_more,    // every byte of input was consumed (or none was given); feed more
  request,      // a complete request (.command); a storage command carries its whole value in .data
  value_begin,  // a storage request whose value streams (.value_size > inline_value_bytes_max);
                // all request fields are set; value_data events follow
  value_data,   // .data: the next value bytes (a view into the input, never copied, never empty)
  value_end,    // the streamed value and its "\r\n" arrived; carries the request's fields again
  error,        // .error: answer error_line(.error) unless .noreply. Carries .command when known,
                // and for too_large also .key (and .meta): memcached drops the old value of a set
                // refused as too large. If a value was streaming it is abandoned (only
                // bad_data_chunk can end a stream).
};

struct Event {
  EventKind kind = EventKind::need_more;
  Command command = Command::none;
  Error error = Error::none;
  // Classic commands: the line ended with "noreply" (memcached then also
  // suppresses the errors of that request). Never set for meta commands: their
  // q flag is in .meta and errors always reach the client.
  bool noreply = false;
  // Single-key commands (and too_large): the key, base64-decoded for meta b.
  std::string_view key;
  // get/gets/gat/gats: one or more keys separated by spaces, each already
  // valid; take them with next_key(). May be empty for gat/gats only.
  std::string_view keys;
  // Storage request: the whole value. value_data: the next piece. stats: its
  // arguments ("" for plain stats).
  std::string_view data;
  uint64_t value_size = 0;  // storage commands: the announced byte count
  // cas: cas unique; incr/decr: delta; verbosity: level.
  uint64_t number = 0;
  // Storage commands, touch, gat/gats: exptime as sent (memcached rules: 0
  // never, negative expired, up to 30 days relative, else unix time).
  // flush_all: its delay (0 when absent).
  int64_t exptime = 0;
  uint32_t flags = 0;  // storage commands: client flags
  // Meta commands: their flags; points into the parser.
  const MetaRequest* meta = nullptr;
};

// Takes the first key off `keys` (a retrieval event's key list); false when
// none is left.
bool next_key(std::string_view& keys, std::string_view& key);

class TextParser {
 public:
  explicit TextParser(const ParserLimits& limits);

  // Parses at most one event from `input`, sets `consumed` to the number of
  // input bytes used. Views in the event (and in *event.meta) point into
  // `input` or into the parser; they stay valid until the next call.
  // need_more is returned with consumed == input.size(); every other event
  // consumes at least one byte, so a caller that loops until need_more always
  // terminates. Buffering a split request allocates (at most
  // frame_buffer_bytes_max()); if that throws std::bad_alloc the parser's
  // position is lost and the connection must be closed.
  Event next(std::string_view input, size_t& consumed);

  // True between requests (nothing partial held, no data block pending), or
  // once the input has ended (line_too_long, quit): a clean place to close.
  bool at_frame_boundary() const;
  // True once line_too_long or quit ended the input: all further bytes are dropped.
  bool closed() const { return state_ == State::closed; }

  // Bytes of the parser's own buffer (allocated, not just used), for
  // per-connection memory accounting. At most frame_buffer_bytes_max().
  size_t buffered_bytes() const { return buffer_capacity_; }
  uint64_t frame_buffer_bytes_max() const;

  // True when `view` lies inside the parser's own memory (tests, fuzzing).
  bool in_own_buffer(std::string_view view) const;

 private:
  enum class State : uint8_t {
    line,             // reading a command line
    value,            // gathering an inline value and its "\r\n"
    value_stream,     // handing out value_data
    value_terminator, // the "\r\n" after a streamed value
    swallow,          // skipping a refused data block (remaining_ bytes)
    closed,           // line_too_long or quit: input is discarded
  };

  // One step of the state machine (parse_step.h), then one function per
  // state it runs.
  using Step = ParseStep;
  Step step(std::string_view input, size_t& pos, Event& event);
  Step read_line(std::string_view input, size_t& pos, Event& event);
  Step gather_line(std::string_view input, size_t& pos, size_t take, bool line_ends, Event& event);
  Step refuse_long_line(Event& event);
  Step read_inline_value(std::string_view input, size_t& pos, Event& event);
  Step stream_value(std::string_view input, size_t& pos, Event& event);
  Step read_value_terminator(std::string_view input, size_t& pos, Event& event);
  Step swallow_data_block(std::string_view input, size_t& pos);

  Step on_line(std::string_view line, bool line_in_buffer, std::string_view input, size_t& pos, Event& event);
  void finish_inline_value(std::string_view value_and_terminator, Event& event);
  void set_error(Error error, Event& event) const;
  uint32_t line_limit_bytes(std::string_view line_start) const;
  bool partial_line_too_long() const;
  // Copies a line that lies in the caller's input into buffer_, which may
  // later grow to frame_bytes; the request's views follow it.
  void stash_line(std::string_view line, uint64_t frame_bytes);
  void grow_buffer(uint64_t needed_bytes, uint64_t frame_bytes);
  void append_buffer(std::string_view bytes);
  void rebase_request(const char* old_begin, size_t old_size, const char* new_begin);
  void release_buffer();

  ParserLimits limits_;
  State state_ = State::line;
  // The previous event handed out views into buffer_; empty it on the next call.
  bool release_pending_ = false;

  // The storage request whose value is being read (views into buffer_ once
  // stashed), with its meta flags and a base64-decoded key.
  Event request_;
  MetaRequest meta_;
  std::array<char, ParserLimits::key_bytes_max> decoded_key_{};
  size_t line_bytes_ = 0;    // the stashed line at the start of buffer_
  uint64_t remaining_ = 0;   // value bytes to hand out (value_stream) or to drop (swallow)
  std::array<char, 2> terminator_{};
  uint8_t terminator_have_ = 0;

  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_ = 0;
  size_t buffer_size_ = 0;
};

}  // namespace ringcache::protocol::text
