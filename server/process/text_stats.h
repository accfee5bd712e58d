// Counters of the memcached text port, and its `stats` reply.
//
// Like ThreadCounters (stats.h), each worker owns one TextCounters and is its
// only writer; `stats` sums every worker's counters. The reply uses
// memcached's names so that existing tools (memcstat, dashboards) read it.
// Where a number describes the server rather than one port (connections,
// bytes, cmd_get, get_hits, ...) it counts both ports; the per-command
// hit/miss counters only exist for the text port.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "server/process/binary_stats.h"
#include "store/store.h"

namespace ringcache::replication {
class Replicator;
}

namespace ringcache::server {

struct alignas(cache_line_bytes) TextCounters {
  SingleWriterCounter cmd_get;        // keys asked for by get/gets/gat/gats/mg
  SingleWriterCounter get_hits;
  SingleWriterCounter get_misses;
  SingleWriterCounter cmd_set;        // storage requests (set/add/replace/append/prepend/cas/ms)
  SingleWriterCounter total_items;    // values stored
  SingleWriterCounter cmd_flush;
  SingleWriterCounter cmd_touch;      // touch, gat/gats keys
  SingleWriterCounter touch_hits;
  SingleWriterCounter touch_misses;
  SingleWriterCounter delete_hits;
  SingleWriterCounter delete_misses;
  SingleWriterCounter incr_hits;
  SingleWriterCounter incr_misses;
  SingleWriterCounter decr_hits;
  SingleWriterCounter decr_misses;
  SingleWriterCounter cas_hits;
  SingleWriterCounter cas_misses;
  SingleWriterCounter cas_badval;
  SingleWriterCounter cmd_meta;       // meta commands
  SingleWriterCounter too_large;      // SERVER_ERROR object too large for cache
  SingleWriterCounter no_memory;      // SERVER_ERROR out of memory storing object
  SingleWriterCounter client_errors;  // ERROR and CLIENT_ERROR replies
};

class TextStatsRegistry {
 public:
  explicit TextStatsRegistry(uint32_t threads);

  TextCounters& thread(uint32_t index);
  // Every worker's counters added up.
  void sum(TextCounters& total) const;

 private:
  uint32_t threads_;
  std::unique_ptr<TextCounters[]> counters_;
};

// What `stats` and `stats settings` show besides the counters.
struct TextStatsContext {
  const StatsRegistry& binary;
  const TextStatsRegistry& text;
  uint64_t item_bytes_max;
  // With --peer: its fields follow memcached's, as "repl_..." lines.
  const replication::Replicator* replicator = nullptr;
};

// "STAT name value\r\n" lines ending with "END\r\n"; with replication, the
// binary STATS' REPL_* fields last, lower case (repl_node_tag ...).
std::string format_text_stats(const TextStatsContext& context, const store::StoreStats& store,
                              uint32_t now_s);
std::string format_text_settings(const TextStatsContext& context, const store::StoreStats& store);

}  // namespace ringcache::server
