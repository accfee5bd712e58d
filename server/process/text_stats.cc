#include "server/process/text_stats.h"

#include "server/process/text_process.h"
#include "server/replication/replicator.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cassert>
#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>

namespace ringcache::server {

TextStatsRegistry::TextStatsRegistry(uint32_t threads)
    : threads_(threads), counters_(std::make_unique<TextCounters[]>(threads)) {
  assert(threads >= 1);
}

TextCounters& TextStatsRegistry::thread(uint32_t index) {
  assert(index < threads_);
  return counters_[index];
}

void TextStatsRegistry::sum(TextCounters& total) const {
  for (uint32_t i = 0; i < threads_; ++i) {
    const TextCounters& c = counters_[i];
    total.cmd_get.add(c.cmd_get.get());
    total.get_hits.add(c.get_hits.get());
    total.get_misses.add(c.get_misses.get());
    total.cmd_set.add(c.cmd_set.get());
    total.total_items.add(c.total_items.get());
    total.cmd_flush.add(c.cmd_flush.get());
    total.cmd_touch.add(c.cmd_touch.get());
    total.touch_hits.add(c.touch_hits.get());
    total.touch_misses.add(c.touch_misses.get());
    total.delete_hits.add(c.delete_hits.get());
    total.delete_misses.add(c.delete_misses.get());
    total.incr_hits.add(c.incr_hits.get());
    total.incr_misses.add(c.incr_misses.get());
    total.decr_hits.add(c.decr_hits.get());
    total.decr_misses.add(c.decr_misses.get());
    total.cas_hits.add(c.cas_hits.get());
    total.cas_misses.add(c.cas_misses.get());
    total.cas_badval.add(c.cas_badval.get());
    total.cmd_meta.add(c.cmd_meta.get());
    total.too_large.add(c.too_large.get());
    total.no_memory.add(c.no_memory.get());
    total.client_errors.add(c.client_errors.get());
  }
}

namespace {

void stat(std::string& out, const char* name, uint64_t value) {
  out += "STAT ";
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += "\r\n";
}

void stat(std::string& out, const char* name, const std::string& value) {
  out += "STAT ";
  out += name;
  out += ' ';
  out += value;
  out += "\r\n";
}

// A field of the binary STATS as the text port names it: lower case, and
// TLS_ as memcached's ssl_ (its ssl_handshake_errors).
void stat_of_binary_field(std::string& out, std::string_view binary_name, uint64_t value) {
  constexpr std::string_view tls_prefix = "TLS_";
  std::string name = binary_name.starts_with(tls_prefix) ? "ssl_" + std::string(binary_name.substr(tls_prefix.size()))
                                                        : std::string(binary_name);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  stat(out, name.c_str(), value);
}

// memcached prints CPU time as seconds.microseconds.
std::string cpu_time(const timeval& time) {
  char text[48];
  std::snprintf(text, sizeof(text), "%lld.%06lld", static_cast<long long>(time.tv_sec),
                static_cast<long long>(time.tv_usec));
  return text;
}

}  // namespace

std::string format_text_stats(const TextStatsContext& context, const store::StoreStats& store, uint32_t now_s) {
  const StatsSnapshot binary = context.binary.collect(store, context.item_bytes_max);
  TextCounters text;
  context.text.sum(text);
  rusage usage{};
  (void)::getrusage(RUSAGE_SELF, &usage);

  std::string out;
  out.reserve(2048);
  stat(out, "pid", static_cast<uint64_t>(::getpid()));
  stat(out, "uptime", binary.uptime_s);
  stat(out, "time", now_s);
  stat(out, "version", std::string(text_version()));
  stat(out, "pointer_size", uint64_t{sizeof(void*) * 8});
  stat(out, "rusage_user", cpu_time(usage.ru_utime));
  stat(out, "rusage_system", cpu_time(usage.ru_stime));
  stat(out, "curr_connections", binary.connections_open);
  stat(out, "total_connections", binary.connections_accepted);
  // Both ports: the binary protocol's GET and PUT are a get and a set.
  stat(out, "cmd_get", text.cmd_get.get() + binary.gets);
  stat(out, "cmd_set", text.cmd_set.get() + binary.puts);
  stat(out, "cmd_flush", text.cmd_flush.get());
  stat(out, "cmd_touch", text.cmd_touch.get());
  stat(out, "cmd_meta", text.cmd_meta.get());
  stat(out, "get_hits", text.get_hits.get() + binary.hits);
  stat(out, "get_misses", text.get_misses.get() + binary.misses);
  stat(out, "delete_misses", text.delete_misses.get());
  stat(out, "delete_hits", text.delete_hits.get());
  stat(out, "incr_misses", text.incr_misses.get());
  stat(out, "incr_hits", text.incr_hits.get());
  stat(out, "decr_misses", text.decr_misses.get());
  stat(out, "decr_hits", text.decr_hits.get());
  stat(out, "cas_misses", text.cas_misses.get());
  stat(out, "cas_hits", text.cas_hits.get());
  stat(out, "cas_badval", text.cas_badval.get());
  stat(out, "touch_hits", text.touch_hits.get());
  stat(out, "touch_misses", text.touch_misses.get());
  stat(out, "store_too_large", text.too_large.get() + binary.too_big);
  stat(out, "store_no_memory", text.no_memory.get() + binary.unstored);
  stat(out, "client_errors", text.client_errors.get());
  stat(out, "bytes_read", binary.bytes_received);
  stat(out, "bytes_written", binary.bytes_sent);
  stat(out, "limit_maxbytes", store.memory_limit_bytes);
  stat(out, "threads", binary.thread_connections.size());
  stat(out, "hash_bytes", store.index_bytes);
  stat(out, "bytes", store.item_bytes);
  stat(out, "curr_items", store.keys);
  stat(out, "total_items", text.total_items.get() + binary.puts);
  stat(out, "expired", store.expirations);
  stat(out, "evictions", store.evictions);
  stat(out, "evicted_segments", store.evicted_segments);
  // The binary STATS' own last fields: uploads, auth_cmds and auth_errors
  // (memcached's names), ssl_* (TLS), compaction.
  visit_shared_fields(binary, [&out](const char* name, uint64_t value) { stat_of_binary_field(out, name, value); });
  if (context.replicator != nullptr) {
    visit_replication_fields(context.replicator->stats(),
                             [&out](const char* name, uint64_t value) { stat_of_binary_field(out, name, value); });
  }
  out += "END\r\n";
  return out;
}

std::string format_text_settings(const TextStatsContext& context, const store::StoreStats& store) {
  std::string out;
  stat(out, "maxbytes", store.memory_limit_bytes);
  stat(out, "num_threads", context.binary.threads());
  stat(out, "item_size_max", context.item_bytes_max);
  stat(out, "evictions", std::string("on"));
  stat(out, "cas_enabled", std::string("yes"));
  stat(out, "eviction_policy", std::string("fifo-segment"));
  out += "END\r\n";
  return out;
}

}  // namespace ringcache::server
