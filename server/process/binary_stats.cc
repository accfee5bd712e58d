#include "server/process/binary_stats.h"

#include <cassert>


namespace ringcache::server {

StatsRegistry::StatsRegistry(uint32_t threads)
    : threads_(threads),
      counters_(std::make_unique<ThreadCounters[]>(threads)),
      start_(std::chrono::steady_clock::now()) {
  assert(threads >= 1);
}

ThreadCounters& StatsRegistry::thread(uint32_t index) {
  assert(index < threads_);
  return counters_[index];
}

const ThreadCounters& StatsRegistry::thread(uint32_t index) const {
  assert(index < threads_);
  return counters_[index];
}

StatsSnapshot StatsRegistry::collect(const store::StoreStats& store_stats,
                                     uint64_t item_bytes_max) const {
  StatsSnapshot s;
  s.thread_connections.reserve(threads_);
  s.thread_accepted.reserve(threads_);
  for (uint32_t i = 0; i < threads_; ++i) {
    const ThreadCounters& c = counters_[i];
    s.puts += c.puts.get();
    s.dels += c.dels.get();
    s.gets += c.gets.get();
    s.stats += c.stats.get();
    s.invalid += c.invalid.get();
    s.hits += c.hits.get();
    s.misses += c.misses.get();
    s.too_big += c.too_big.get();
    s.unstored += c.unstored.get();
    s.auth_cmds += c.auth_cmds.get();
    s.auth_errors += c.auth_errors.get();
    s.connections_open += c.connections_open.get();
    s.connections_accepted += c.connections_accepted.get();
    s.bytes_received += c.bytes_received.get();
    s.bytes_sent += c.bytes_sent.get();
    s.read_pauses += c.read_pauses.get();
    s.connections_dropped += c.connections_dropped.get();
    s.upload_aborts += c.upload_aborts.get();
    s.tls_handshakes_tls12 += c.tls_handshakes_tls12.get();
    s.tls_handshakes_tls13 += c.tls_handshakes_tls13.get();
    s.tls_connections_tls12 += c.tls_connections_tls12.get();
    s.tls_connections_tls13 += c.tls_connections_tls13.get();
    s.tls_handshake_errors += c.tls_handshake_errors.get();
    s.tls_handshake_timeouts += c.tls_handshake_timeouts.get();
    s.thread_connections.push_back(c.connections_open.get());
    s.thread_accepted.push_back(c.connections_accepted.get());
  }
  s.store = store_stats;
  s.item_bytes_max = item_bytes_max;
  const auto uptime = std::chrono::steady_clock::now() - start_;
  s.uptime_s = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(uptime).count());
  return s;
}

namespace {

void append_field(std::string& out, const char* name, uint64_t value) {
  if (!out.empty()) out += ' ';
  out += name;
  out += '=';
  out += std::to_string(value);
}

void append_list(std::string& out, const char* name, const std::vector<uint64_t>& values) {
  out += ' ';
  out += name;
  out += '=';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i != 0) out += ',';
    out += std::to_string(values[i]);
  }
}

}  // namespace

std::string format_stats(const StatsSnapshot& s) {
  std::string out;
  out.reserve(512);
  // docs/binary_protocol.md fixes the first four and requires the next ten.
  append_field(out, "PUTS", s.puts);
  append_field(out, "DELS", s.dels);
  append_field(out, "GETS", s.gets);
  append_field(out, "KEYS", s.store.keys);
  append_field(out, "STATS", s.stats);
  append_field(out, "INVALID", s.invalid);
  append_field(out, "HITS", s.hits);
  append_field(out, "MISSES", s.misses);
  append_field(out, "EVICTIONS", s.store.evictions);
  append_field(out, "BYTES", s.store.live_bytes);
  append_field(out, "LIMIT", s.store.memory_limit_bytes);
  append_field(out, "CONNECTIONS", s.connections_open);
  append_field(out, "THREADS", s.thread_connections.size());
  append_field(out, "UPTIME", s.uptime_s);
  append_field(out, "EBIG", s.too_big);
  append_field(out, "EUNK", s.unstored);
  append_field(out, "EXPIRATIONS", s.store.expirations);
  append_field(out, "ITEM_BYTES", s.store.item_bytes);
  append_field(out, "INDEX_BYTES", s.store.index_bytes);
  append_field(out, "BLOCK_BYTES", s.store.blocks_bytes);
  append_field(out, "SEGMENTS", s.store.segments);
  append_field(out, "EVICTED_SEGMENTS", s.store.evicted_segments);
  append_field(out, "ALLOC_FAILURES", s.store.alloc_failures);
  append_field(out, "MAX_ITEM", s.item_bytes_max);
  append_field(out, "INPUT_BUFFERED", s.input_buffered_bytes);
  append_field(out, "ACCEPTED", s.connections_accepted);
  append_field(out, "DROPPED", s.connections_dropped);
  append_field(out, "READ_PAUSES", s.read_pauses);
  append_field(out, "BYTES_READ", s.bytes_received);
  append_field(out, "BYTES_WRITTEN", s.bytes_sent);
  append_list(out, "THREAD_CONNECTIONS", s.thread_connections);
  append_list(out, "THREAD_ACCEPTED", s.thread_accepted);
  visit_shared_fields(s, [&out](const char* name, uint64_t value) { append_field(out, name, value); });
  return out;
}

void append_replication_stats(std::string& out, const replication::ReplicationStats& stats) {
  visit_replication_fields(stats, [&out](const char* name, uint64_t value) { append_field(out, name, value); });
}

}  // namespace ringcache::server
