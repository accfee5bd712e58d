// TextProcessor: the one place where a parsed memcached text request meets
// the store (protocol -> process -> store), as BinaryProcessor
// (binary_process.h) is for the binary port. Each TextParser event becomes
// store reads, writes through the worker's write path (write_path.h), and
// reply lines appended to the connection's OutputQueue; nothing here knows
// about sockets.
//
// Semantics follow memcached 1.6 (docs/text_protocol.md):
// - exptime: 0 never expires, negative is already expired, up to 30 days is
//   relative to now, anything larger is a unix time;
// - classic commands with noreply send nothing at all, errors included;
//   meta commands with q drop only their success (and mg's miss) replies;
// - a set refused as too large (or for lack of memory) also drops the key's
//   old value, as memcached does, so a stale value is never served after a
//   failed overwrite.
// - a multi-get is answered key by key; when the connection must stop
//   producing replies (a slow reader, PauseCheck) the keys not yet answered
//   are kept in TextRequestState and answered once it may go on.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "server/io/output_queue.h"
#include "server/io/session.h"
#include "server/protocol/text/text_parser.h"
#include "server/process/text_stats.h"
#include "server/process/write_path.h"
#include "store/store.h"

namespace ringcache::server {

// memcached: an exptime up to this many seconds is relative to now.
inline constexpr int64_t relative_exptime_s_max = 60 * 60 * 24 * 30;
// The longest reply line built (a VALUE or meta line with a 250-byte key).
inline constexpr size_t reply_line_bytes_max = 1024;
// `version` and `stats` report the memcached release whose text protocol is
// implemented, then ringcache's own version: clients (libmemcached's
// memccapable among them) pick what to expect from the memcached version.
std::string_view text_version();

// A storage request whose value streams in (value_begin .. value_end).
struct TextStream {
  bool active = false;
  StreamedWrite write;  // set, add, replace, cas (and ms in those modes)
  // append/prepend: the data is gathered here (the store concatenates whole values).
  bool concat = false;
  std::string concat_data;
};

// Keys of a multi-get not answered yet because the connection paused.
struct PendingRetrieval {
  protocol::text::Command command = protocol::text::Command::none;
  uint32_t touch_expires_at = 0;  // gat/gats
  std::string keys;
  size_t offset = 0;
  bool empty() const { return offset >= keys.size(); }
};

struct TextRequestState {
  TextStream stream;
  PendingRetrieval retrieval;
  // Request bytes held here (per-connection memory accounting).
  size_t held_bytes() const { return stream.concat_data.capacity() + retrieval.keys.capacity(); }
};

enum class TextResult : uint8_t {
  proceed,
  close,  // quit, or a line too long to frame: send what is queued, then close
};

class TextProcessor {
 public:
  // Every write, flush_all included, goes through `write` (write_path.h),
  // replicated or not.
  TextProcessor(store::StoreThread& store, WritePath& write, TextCounters& counters,
                const TextStatsContext& stats, uint64_t item_bytes_max);

  // The keys of requests about to be processed (StoreThread::prefetch).
  void prefetch(std::span<const std::string_view> keys) { store_.prefetch(keys); }

  // The parser limits for this processor's connections.
  protocol::text::ParserLimits parser_limits() const;

  // event.kind is never need_more.
  TextResult process(const protocol::text::Event& event, TextRequestState& state, OutputQueue& out,
                     const PauseCheck& pause);
  // Answers the keys of a paused multi-get until done or until pause says stop.
  void continue_retrieval(TextRequestState& state, OutputQueue& out, const PauseCheck& pause);

  // What the text port's other protocol (mc_binary_process.h) shares with
  // this one: the same store calls, write path, counters and stats.
  store::StoreThread& store() const { return store_; }
  WritePath& write_path() const { return write_; }
  TextCounters& counters() const { return counters_; }
  const TextStatsContext& stats_context() const { return stats_; }
  uint64_t item_bytes_max() const { return item_bytes_max_; }

  // exptime (memcached rules, see above) as the store's expires_at (0 = never).
  static uint32_t expires_at(int64_t exptime, uint32_t now_s);

 private:
  void request(const protocol::text::Event& event, TextRequestState& state, OutputQueue& out,
               const PauseCheck& pause);
  void error(const protocol::text::Event& event, TextRequestState& state, OutputQueue& out);
  void start_retrieval(const protocol::text::Event& event, TextRequestState& state, OutputQueue& out,
                       const PauseCheck& pause);
  void flush_all(const protocol::text::Event& event, OutputQueue& out);
  void retrieve(protocol::text::Command command, uint32_t touch_expires_at, std::string_view& keys,
                OutputQueue& out, const PauseCheck& pause);
  void answer_key(protocol::text::Command command, std::string_view key, uint32_t touch_expires_at,
                  OutputQueue& out);
  void store_whole(const protocol::text::Event& event, OutputQueue& out);
  void stream_begin(const protocol::text::Event& event, TextStream& stream);
  void stream_end(const protocol::text::Event& event, TextStream& stream, OutputQueue& out);
  void answer_store(const protocol::text::Event& event, store::PutStatus status, OutputQueue& out);
  void remove(const protocol::text::Event& event, OutputQueue& out);
  void arithmetic(const protocol::text::Event& event, OutputQueue& out);
  void touch(const protocol::text::Event& event, OutputQueue& out);
  void stats(const protocol::text::Event& event, OutputQueue& out);

  // Meta commands (text_meta.cc).
  void meta_get(const protocol::text::Event& event, OutputQueue& out);
  void meta_delete(const protocol::text::Event& event, OutputQueue& out);
  void meta_arithmetic(const protocol::text::Event& event, OutputQueue& out);
  void answer_meta_store(const protocol::text::Event& event, store::PutStatus status, OutputQueue& out);

  // How a storage request is carried out: a conditional put, or a concat.
  struct StorePlan {
    bool concat = false;
    bool prepend = false;
    bool vivify = false;  // ms append/prepend with N: create the item on a miss
    store::ItemMeta meta;
    store::PutOptions options;
  };
  StorePlan plan_store(const protocol::text::Event& event) const;
  store::PutStatus carry_out(const protocol::text::Event& event, const StorePlan& plan, std::string_view value);
  void count_store(const protocol::text::Event& event, store::PutStatus status);

  store::StoreThread& store_;
  WritePath& write_;
  TextCounters& counters_;
  TextStatsContext stats_;
  uint64_t item_bytes_max_;
};

}  // namespace ringcache::server
