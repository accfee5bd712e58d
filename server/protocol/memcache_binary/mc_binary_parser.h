// McBinaryParser: memcached's binary protocol (memcached's
// protocol_binary.h, the same requests memcached 1.6 answers on its text
// port) as a pure, incremental function of bytes. No I/O, no store, and no
// allocation for requests that arrive whole. The model is FrameParser
// (protocol/binary/binary_parser.h): the caller feeds whatever bytes it has,
// each next() returns at most one Event and says how many bytes it used, and
// partial requests are kept inside the parser.
//
// A request is a 24-byte header, then a body of extras, key and value:
//
//   byte  0     magic 0x80 (request)       byte  1     opcode
//   bytes 2-3   key length (big-endian)    byte  4     extras length
//   byte  5     data type                  bytes 6-7   vbucket
//   bytes 8-11  total body length          bytes 12-15 opaque
//   bytes 16-23 cas                        then extras, key, value
//
// value length = body length - extras length - key length. The parser knows
// no opcode: which extras and which lengths a command takes is the
// processor's business (process/mc_binary_process.h). What it does decide,
// from the lengths alone, so that every split of the input gives the same
// events:
// - a key longer than key_bytes_max, or extras and key longer than the body,
//   is bad_lengths: the whole body is then skipped by counting;
// - a value longer than item_bytes_max (--max-item) is too_large, reported
//   with the extras and key (memcached drops the old value of a set refused
//   as too large); the value is then skipped by counting, never buffered;
// - a value up to inline_value_bytes_max arrives whole in one `request`;
//   a longer one streams: value_begin, value_data pieces (views into the
//   input, never copied), value_end;
// - a byte other than 0x80 where a header starts is bad_magic: the stream
//   cannot be framed any more, so the parser discards all further input
//   (memcached closes such a connection; so does the daemon).
//
// What the parser holds, and why it is bounded: at most the extras and key
// of one request and its inline value (head_bytes_max() +
// inline_value_bytes_max), in a buffer that grows with the bytes that
// arrive, never with an announced length, and is freed after each request.
// The 24 header bytes live in the parser object itself.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace ringcache::protocol::memcache_binary {

inline constexpr uint8_t request_magic = 0x80;
inline constexpr uint8_t response_magic = 0x81;
inline constexpr size_t header_bytes = 24;

enum class Opcode : uint8_t {
  get = 0x00, set = 0x01, add = 0x02, replace = 0x03, del = 0x04, increment = 0x05, decrement = 0x06,
  quit = 0x07, flush = 0x08, getq = 0x09, noop = 0x0a, version = 0x0b, getk = 0x0c, getkq = 0x0d,
  append = 0x0e, prepend = 0x0f, stat = 0x10, setq = 0x11, addq = 0x12, replaceq = 0x13, deleteq = 0x14,
  incrementq = 0x15, decrementq = 0x16, quitq = 0x17, flushq = 0x18, appendq = 0x19, prependq = 0x1a,
  verbosity = 0x1b, touch = 0x1c, gat = 0x1d, gatq = 0x1e, gatk = 0x23, gatkq = 0x24,
  // SASL (memcached's -S; here under --auth-file): list mechanisms, start, next step.
  sasl_list_mechs = 0x20, sasl_auth = 0x21, sasl_step = 0x22,
};

// memcached's response status codes (the ones this protocol answers).
enum class Status : uint16_t {
  success = 0x0000, key_not_found = 0x0001, key_exists = 0x0002, value_too_large = 0x0003,
  invalid_arguments = 0x0004, not_stored = 0x0005, non_numeric = 0x0006,
  // auth_continue asks for a SASL_STEP: never sent, PLAIN takes one step.
  auth_error = 0x0020, auth_continue = 0x0021,
  unknown_command = 0x0081, out_of_memory = 0x0082,
};

struct ParserLimits {
  uint64_t item_bytes_max;                      // --max-item: a longer value -> too_large
  uint32_t inline_value_bytes_max = 64 * 1024;  // values up to this come whole in one `request`
  static constexpr uint32_t key_bytes_max = 250;     // memcached's KEY_MAX_LENGTH
  static constexpr uint32_t extras_bytes_max = 255;  // the extras length is one byte
};

// The fixed fields of a request header, decoded.
struct Header {
  uint8_t opcode = 0, extras_length = 0, data_type = 0;
  uint16_t key_length = 0, vbucket = 0;
  uint32_t body_length = 0, opaque = 0;
  uint64_t cas = 0;
  bool operator==(const Header&) const = default;
};

enum class EventKind : uint8_t {
  need_more,    // every byte of input was consumed (or none was given); feed more
  request,      // .header, .extras, .key and the whole value in .data
  value_begin,  // .header, .extras, .key and .value_size (> inline_value_bytes_max); value_data follow
  value_data,   // .data: the next value bytes (a view into the input, never copied, never empty)
  value_end,    // the streamed value is complete; carries .header again (consumes no input)
  too_large,    // .header, .extras, .key: the value is longer than item_bytes_max; it is skipped silently
  bad_lengths,  // .header: a key over key_bytes_max, or extras + key over the body; the body is skipped
  bad_magic,    // .byte: not 0x80 where a header starts; every later byte is discarded (need_more)
};

struct Event {
  EventKind kind = EventKind::need_more;
  Header header;
  std::string_view extras;
  std::string_view key;
  std::string_view data;
  uint64_t value_size = 0;  // value_begin, too_large (and request: == data.size())
  uint8_t byte = 0;         // bad_magic
};

class McBinaryParser {
 public:
  explicit McBinaryParser(const ParserLimits& limits);

  // At most one event from the start of `input`, `consumed` set to the bytes
  // it used (all of them for need_more; at least one for every other event
  // but value_end). Its views point into `input` or into the parser's
  // buffer (a head split across inputs) and last until the next call. A
  // split head is buffered: std::bad_alloc then means close the connection.
  Event next(std::string_view input, size_t& consumed);

  // Between requests, or discarding after bad_magic: nothing partial held.
  bool at_frame_boundary() const;
  // The buffer's allocation, for per-connection memory accounting: never
  // over head_bytes_max() + inline_value_bytes_max.
  size_t buffered_bytes() const { return buffer_capacity_; }
  // The most extras and key one request can have.
  static constexpr uint32_t head_bytes_max() { return ParserLimits::extras_bytes_max + ParserLimits::key_bytes_max; }
  // Whether `view` lies inside the parser's buffer (for tests and fuzzing).
  bool in_own_buffer(std::string_view view) const;

 private:
  enum class State : uint8_t { header, body, stream, stream_end, skip, discard };

  void start_body();
  // Gathers `needed` body bytes; true once all are there (in `out`).
  bool gather(std::string_view input, size_t& pos, std::string_view& out);
  void append_buffer(std::string_view bytes);
  Event event_of(EventKind kind) const;
  // The next piece of a streaming value, as much as `input` holds from `pos`.
  Event value_piece(std::string_view input, size_t& pos);

  ParserLimits limits_;
  State state_ = State::header;
  std::array<uint8_t, header_bytes> header_bytes_{};
  size_t header_have_ = 0;
  Header header_;
  uint64_t value_size_ = 0;
  // body: the bytes wanted before the next event (extras + key, plus the
  // value when it comes inline); stream and skip: the bytes still to come.
  uint64_t needed_ = 0;
  uint64_t remaining_ = 0;
  bool inline_value_ = false;
  bool release_pending_ = false;

  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_ = 0;
  size_t buffer_size_ = 0;
};

// The keys of the whole requests at the start of `input`, which must begin
// at a request boundary: at most `max`, stopping at the first partial
// request or bad magic. A look-ahead for prefetching the store
// (StoreThread::prefetch); McBinaryParser::next still checks every byte.
size_t peek_keys(std::string_view input, std::string_view* keys, size_t max);

}  // namespace ringcache::protocol::memcache_binary
