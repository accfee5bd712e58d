// Request and connection counters, and the STATS reply text (docs/binary_protocol.md).
//
// Each worker thread owns one ThreadCounters and is its only writer, so an
// increment is a relaxed load and store of its own cache line: no shared
// read-modify-write on the hot path. STATS (any thread) sums every thread's
// counters with relaxed loads; a total may miss requests in flight at that
// instant, which is all a counter promises.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/io/counter.h"
#include "server/io/worker_services.h"
#include "server/replication/replication_stats.h"
#include "store/store.h"

namespace ringcache::server {

// A worker's counters: its connections (io/worker_services.h) and the
// binary requests it answered.
struct alignas(cache_line_bytes) ThreadCounters : ConnectionCounters {
  SingleWriterCounter puts;      // PUT requests (whole or streamed)
  SingleWriterCounter dels;
  SingleWriterCounter gets;
  SingleWriterCounter stats;
  SingleWriterCounter invalid;   // EINVAL answers
  SingleWriterCounter hits;
  SingleWriterCounter misses;
  SingleWriterCounter too_big;   // EBIG answers
  SingleWriterCounter unstored;  // EUNK answers
  // --auth-file (auth.h), both ports: attempts, and the failed ones.
  SingleWriterCounter auth_cmds;
  SingleWriterCounter auth_errors;
};

// Everything the STATS text shows, gathered at one moment.
struct StatsSnapshot {
  uint64_t puts = 0;
  uint64_t dels = 0;
  uint64_t gets = 0;
  uint64_t stats = 0;
  uint64_t invalid = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t too_big = 0;
  uint64_t unstored = 0;
  uint64_t auth_cmds = 0;
  uint64_t auth_errors = 0;
  uint64_t connections_open = 0;
  uint64_t connections_accepted = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t read_pauses = 0;
  uint64_t connections_dropped = 0;
  uint64_t upload_aborts = 0;
  uint64_t tls_handshakes_tls12 = 0;
  uint64_t tls_handshakes_tls13 = 0;
  uint64_t tls_connections_tls12 = 0;
  uint64_t tls_connections_tls13 = 0;
  uint64_t tls_handshake_errors = 0;
  uint64_t tls_handshake_timeouts = 0;
  std::vector<uint64_t> thread_connections;
  std::vector<uint64_t> thread_accepted;
  store::StoreStats store;
  uint64_t item_bytes_max = 0;
  uint64_t input_buffered_bytes = 0;  // charged to the InputBudget
  uint64_t uptime_s = 0;
};

class StatsRegistry {
 public:
  explicit StatsRegistry(uint32_t threads);

  uint32_t threads() const { return threads_; }
  ThreadCounters& thread(uint32_t index);
  const ThreadCounters& thread(uint32_t index) const;

  StatsSnapshot collect(const store::StoreStats& store_stats, uint64_t item_bytes_max) const;

 private:
  uint32_t threads_;
  std::unique_ptr<ThreadCounters[]> counters_;
  std::chrono::steady_clock::time_point start_;
};

// "PUTS=1 DELS=0 GETS=2 KEYS=1 STATS=1 ..." — ASCII, single spaces, no
// trailing newline or NUL.
std::string format_stats(const StatsSnapshot& snapshot);

// Calls visit(name, value) for each field both ports' stats show, in the
// order of the binary STATS, which ends its own fields with them: values
// still arriving (server/resource_limits.h), client authentication
// (--auth-file), TLS (--tls-cert) and compaction (docs/store.md). The one
// list of them: the text port's stats (text_stats.cc) name each in lower
// case, TLS_ as memcached's ssl_, so a new counter reaches both.
template <typename Visit>
void visit_shared_fields(const StatsSnapshot& s, Visit&& visit) {
  visit("UPLOAD_BYTES", s.store.upload_bytes);
  visit("UPLOAD_BYTES_MAX", s.store.upload_bytes_max);
  visit("UPLOAD_REFUSED", s.store.upload_refusals);
  visit("UPLOAD_ABORTS", s.upload_aborts);
  visit("AUTH_CMDS", s.auth_cmds);
  visit("AUTH_ERRORS", s.auth_errors);
  visit("TLS_CONNECTIONS_TLS12", s.tls_connections_tls12);
  visit("TLS_CONNECTIONS_TLS13", s.tls_connections_tls13);
  visit("TLS_HANDSHAKES_TLS12", s.tls_handshakes_tls12);
  visit("TLS_HANDSHAKES_TLS13", s.tls_handshakes_tls13);
  visit("TLS_HANDSHAKE_ERRORS", s.tls_handshake_errors);
  visit("TLS_HANDSHAKE_TIMEOUTS", s.tls_handshake_timeouts);
  visit("MERGED_SEGMENTS", s.store.merged_segments);
  visit("MERGED_ITEMS", s.store.merged_items);
}

// Calls visit(name, value) for each replication field, in the order of the
// binary STATS (docs/replication.md's table). The one list of them: the
// binary STATS shows NAME=value, the text port's stats (text_stats.cc) a
// lower-case "STAT repl_..." line, so a new counter reaches both.
template <typename Visit>
void visit_replication_fields(const replication::ReplicationStats& s, Visit&& visit) {
  visit("REPL_NODE_TAG", s.node_tag);
  visit("REPL_PEERS", s.peers);
  visit("REPL_CONNECTED", s.peers_connected);
  visit("REPL_INCOMING", s.incoming);
  visit("REPL_SENT", s.writes_queued);
  visit("REPL_RESYNC_ITEMS", s.resync_items);
  visit("REPL_APPLIED", s.applied);
  visit("REPL_IGNORED_OLDER", s.ignored_older);
  visit("REPL_APPLY_FAILED", s.apply_failed);
  visit("REPL_APPLY_WAITS", s.apply_waits);
  visit("REPL_TOO_BIG", s.too_big);
  visit("REPL_RESYNCS", s.resyncs_started);
  visit("REPL_RESYNCS_DONE", s.resyncs_done);
  visit("REPL_RESYNCING", s.resyncing);
  visit("REPL_RESYNCS_RECEIVED", s.resyncs_received);
  visit("REPL_FLUSHES_RECEIVED", s.flushes_received);
  visit("REPL_QUEUE_OVERFLOWS", s.queue_overflows);
  visit("REPL_HANDOFF_OVERFLOWS", s.handoff_overflows);
  visit("REPL_QUEUED_BYTES", s.queued_bytes);
  visit("REPL_BYTES_SENT", s.bytes_sent);
  visit("REPL_LAG_US", s.lag_us);
  visit("REPL_AUTHENTICATED", s.authenticated);
  visit("REPL_AUTH_FAILURES", s.auth_failures);
  visit("REPL_ADDRESS_REFUSED", s.address_refused);
  visit("REPL_HELLOS_REFUSED", s.hellos_refused);
  visit("REPL_SKEW_REFUSED", s.skew_refused);
  visit("REPL_TLS", s.tls);
  visit("REPL_TLS_FAILURES", s.tls_failures);
}

// Appends the replication fields, " REPL_NODE_TAG=... REPL_PEERS=2 ...",
// after what format_stats() wrote.
void append_replication_stats(std::string& out, const replication::ReplicationStats& stats);

}  // namespace ringcache::server
