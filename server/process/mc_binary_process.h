// McBinaryProcessor: where a request of memcached's binary protocol meets
// the store, as TextProcessor (text_process.h) is for the text protocol on
// the same port. A text-port connection whose first byte is 0x80 speaks it
// (mc_binary_session.h). It uses the text port's store calls, write path
// (write_path.h: writes replicate like any other) and counters, so `stats`
// on either protocol counts both; cas values are the ones gets and cas use.
//
// Semantics follow memcached 1.6 (docs/memcache_binary_protocol.md):
// - each response echoes the request's opcode and opaque; its cas is the
//   item's after a get, store, concat or incr/decr, 0 otherwise;
// - quiet commands (…q) answer only on error; getq/getkq/gatq/gatkq also
//   say nothing on a miss; quitq closes without a reply;
// - a request whose extras or key do not fit its command is 0x0004 invalid
//   arguments; an unknown opcode 0x0081; both keep the stream in sync (the
//   parser skips the body);
// - a set/add/replace with a nonzero cas stores only over that cas;
// - incr/decr creates a missing key with the initial value unless the
//   expiration is 0xffffffff;
// - a value over --max-item is 0x0003 and, for a plain set, drops the
//   key's old value (as memcached and the text port do).
//
// Under --auth-file (auth.h) it speaks memcached's SASL with the PLAIN
// mechanism: SASL_LIST_MECHS answers "PLAIN", SASL_AUTH checks the
// credentials through the connection's ConnectionAuth (its counters, log
// and failure limit, as on the other ports), SASL_STEP is a failure (PLAIN
// takes one step). Until the connection is authenticated every other
// request but version is read in full (a value drained, never stored) and
// answered 0x0020; quit and quitq then close. Without --auth-file the SASL
// opcodes are unknown commands, as on a memcached without -S.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "server/io/output_queue.h"
#include "server/process/auth.h"
#include "server/process/text_process.h"
#include "server/process/text_stats.h"
#include "server/process/write_path.h"
#include "server/protocol/memcache_binary/mc_binary_parser.h"
#include "store/store.h"

namespace ringcache::server {

// A SASL mechanism name is at most 20 characters (RFC 4422); a longer
// SASL_AUTH key names none and is refused without looking further.
inline constexpr size_t sasl_mechanism_bytes_max = 20;
// The longest PLAIN message (RFC 4616: authzid NUL user NUL password) that
// can hold credentials of the auth file: each part at most
// auth_credential_bytes_max (the authzid is empty or the user). A longer
// one is refused as a failed attempt before it is split.
inline constexpr size_t sasl_plain_message_bytes_max = 3 * auth_credential_bytes_max + 2;

// A request whose value streams in (value_begin .. value_end).
struct McBinaryStream {
  bool active = false;
  protocol::memcache_binary::Status refusal = protocol::memcache_binary::Status::success;  // answered at the end
  std::string key;        // the parser's view ends before the value does
  StreamedWrite write;    // set, add, replace
  bool concat = false;    // append, prepend: the value is gathered here
  std::string concat_data;
  size_t held_bytes() const { return key.capacity() + concat_data.capacity(); }
};

enum class McBinaryResult : uint8_t {
  proceed,
  close,  // quit, or bad magic: send what is queued, then close
};

class McBinaryProcessor {
 public:
  // Works with the store calls, write path, counters and stats of the text
  // processor of the same worker.
  explicit McBinaryProcessor(TextProcessor& text);

  void prefetch(std::span<const std::string_view> keys) { store_.prefetch(keys); }
  protocol::memcache_binary::ParserLimits parser_limits() const { return {text_.item_bytes_max()}; }

  // event.kind is never need_more. `auth`: the connection's authentication
  // (SASL requests change it).
  McBinaryResult process(const protocol::memcache_binary::Event& event, McBinaryStream& stream, ConnectionAuth& auth,
                         OutputQueue& out);

 private:
  using Event = protocol::memcache_binary::Event;
  using Header = protocol::memcache_binary::Header;
  using Status = protocol::memcache_binary::Status;

  // An event of an authenticated connection, or of any connection without --auth-file.
  McBinaryResult serve(const Event& event, McBinaryStream& stream, OutputQueue& out);
  // Under --auth-file: an event of a SASL request.
  McBinaryResult sasl(const Event& event, McBinaryStream& stream, ConnectionAuth& auth, OutputQueue& out);
  // The credentials of a whole SASL_AUTH, checked (a malformed one is a failure).
  static AuthAttempt plain_attempt(const Event& event, ConnectionAuth& auth);
  // Under --auth-file: an event of a connection not authenticated yet that is not SASL or version.
  McBinaryResult refuse_unauthenticated(const Event& event, McBinaryStream& stream, OutputQueue& out);

  McBinaryResult request(const Event& event, OutputQueue& out);
  void stream_begin(const Event& event, McBinaryStream& stream);
  void stream_end(const Event& event, McBinaryStream& stream, OutputQueue& out);
  void too_large(const Event& event, OutputQueue& out);

  void retrieve(const Event& event, OutputQueue& out);
  void store_value(const Header& header, std::string_view extras, std::string_view key, std::string_view value,
                   OutputQueue& out);
  // The item meta and put mode of set/add/replace from their extras and cas.
  void plan(const Header& header, std::string_view extras, store::ItemMeta& meta, store::PutOptions& options) const;
  void answer_store(const Header& header, std::string_view key, store::PutStatus status, OutputQueue& out);
  void remove(const Event& event, OutputQueue& out);
  void arithmetic(const Event& event, OutputQueue& out);
  void flush(const Event& event, OutputQueue& out);
  void stats(const Event& event, OutputQueue& out);

  // The refusal of a request whose extras, key or value do not fit its
  // opcode (success when they fit).
  static Status check_shape(const Header& header, uint64_t value_size);
  // A plain set whose new value could not be stored drops the old one.
  void drop_after_failed_set(const Header& header, std::string_view key);
  // The key's cas as it is now (0 when absent), for a reply.
  uint64_t cas_of(std::string_view key);

  TextProcessor& text_;
  store::StoreThread& store_;
  WritePath& write_;
  TextCounters& counters_;
};

}  // namespace ringcache::server
