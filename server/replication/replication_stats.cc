#include "server/replication/replication_stats.h"

namespace ringcache::replication {
namespace {

void append_pair(std::string& out, const char* name, uint64_t value) {
  out += ' ';
  out += name;
  out += '=';
  out += std::to_string(value);
}

}  // namespace

void append_stats_text(std::string& out, const ReplicationStats& s) {
  append_pair(out, "REPL_NODE_TAG", s.node_tag);
  append_pair(out, "REPL_PEERS", s.peers);
  append_pair(out, "REPL_CONNECTED", s.peers_connected);
  append_pair(out, "REPL_INCOMING", s.incoming);
  append_pair(out, "REPL_SENT", s.writes_queued);
  append_pair(out, "REPL_RESYNC_ITEMS", s.resync_items);
  append_pair(out, "REPL_APPLIED", s.applied);
  append_pair(out, "REPL_IGNORED_OLDER", s.ignored_older);
  append_pair(out, "REPL_APPLY_FAILED", s.apply_failed);
  append_pair(out, "REPL_TOO_BIG", s.too_big);
  append_pair(out, "REPL_RESYNCS", s.resyncs_started);
  append_pair(out, "REPL_RESYNCS_DONE", s.resyncs_done);
  append_pair(out, "REPL_RESYNCING", s.resyncing);
  append_pair(out, "REPL_RESYNCS_RECEIVED", s.resyncs_received);
  append_pair(out, "REPL_FLUSHES_RECEIVED", s.flushes_received);
  append_pair(out, "REPL_QUEUE_OVERFLOWS", s.queue_overflows);
  append_pair(out, "REPL_HANDOFF_OVERFLOWS", s.handoff_overflows);
  append_pair(out, "REPL_QUEUED_BYTES", s.queued_bytes);
  append_pair(out, "REPL_BYTES_SENT", s.bytes_sent);
  append_pair(out, "REPL_LAG_US", s.lag_us);
  append_pair(out, "REPL_AUTHENTICATED", s.authenticated);
  append_pair(out, "REPL_AUTH_FAILURES", s.auth_failures);
  append_pair(out, "REPL_ADDRESS_REFUSED", s.address_refused);
  append_pair(out, "REPL_HELLOS_REFUSED", s.hellos_refused);
  append_pair(out, "REPL_SKEW_REFUSED", s.skew_refused);
}

}  // namespace ringcache::replication
