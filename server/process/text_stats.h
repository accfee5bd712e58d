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

namespace ringcache::server {

struct alignas(cache_line_bytes) TextCounters {
  Counter cmd_get;       // keys asked for by get/gets/gat/gats/mg
  Counter get_hits;
  Counter get_misses;
  Counter cmd_set;       // storage requests (set/add/replace/append/prepend/cas/ms)
  Counter total_items;   // values stored
  Counter cmd_flush;
  Counter cmd_touch;     // touch, gat/gats keys
  Counter touch_hits;
  Counter touch_misses;
  Counter delete_hits;
  Counter delete_misses;
  Counter incr_hits;
  Counter incr_misses;
  Counter decr_hits;
  Counter decr_misses;
  Counter cas_hits;
  Counter cas_misses;
  Counter cas_badval;
  Counter cmd_meta;      // meta commands
  Counter too_large;     // SERVER_ERROR object too large for cache
  Counter no_memory;     // SERVER_ERROR out of memory storing object
  Counter client_errors; // ERROR and CLIENT_ERROR replies
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
  uint64_t item_max_bytes;
};

// "STAT name value\r\n" lines ending with "END\r\n".
std::string format_text_stats(const TextStatsContext& context, const store::StoreStats& store,
                              uint32_t now_s);
std::string format_text_settings(const TextStatsContext& context, const store::StoreStats& store);

}  // namespace ringcache::server
