// Replication settings: the named limits (units last) and what the daemon
// passes in. The defaults are the production values; tests shrink them to
// force overflows and resyncs quickly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/io/tls/tls_context.h"
#include "server/replication/handshake.h"
#include "server/replication/peer_address.h"

namespace ringcache::replication {

inline constexpr size_t kib_bytes = 1024;
inline constexpr size_t mib_bytes = 1024 * kib_bytes;

struct ReplicationTuning {
  // Per worker: writes waiting for the replication thread. A full ring makes
  // every peer catch up from the store (handoff_ring.h).
  size_t handoff_ring_bytes = 4 * mib_bytes;
  // The live log shared by all peers: how far the slowest peer may fall
  // behind before it is cut and resynced (replication_log.h).
  size_t log_bytes_max = 16 * mib_bytes;
  size_t log_chunk_bytes = 64 * kib_bytes;
  // One resync step fills at most this many bytes (plus one bucket's items)
  // and pins at most resync_pins_max large items before they are sent.
  size_t resync_chunk_bytes = 256 * kib_bytes;
  uint32_t resync_pins_max = 8;
  // Bytes one peer may send per turn of the replication loop, so that one
  // fast peer does not starve the handoff rings or the other peers.
  size_t send_burst_bytes = 1 * mib_bytes;
  // Reconnection backoff: doubles from min to max after each failure.
  int64_t backoff_ms_min = 100;
  int64_t backoff_ms_max = 2000;
  // A link dropped after streaming at least this long retries from
  // backoff_ms_min. One dropped sooner keeps doubling its backoff, so a peer
  // that accepts every link and then ends it (a crash loop, a flood of TLS
  // records without data) is retried at most every backoff_ms_max, not ten
  // times a second with a resync each time.
  int64_t stable_link_ms_min = 2000;
  // A connect that has not completed by then is abandoned and retried. A
  // peer's name not resolved by then fails the attempt too (logged, retried
  // with backoff); the resolution itself cannot be cancelled and goes on on
  // its thread (peer_resolver.h), and the next attempt takes its answer.
  int64_t connect_timeout_ms = 3000;
  // An authentication (handshake.h) the peer has not completed by then is
  // abandoned and retried, like a connect.
  int64_t handshake_timeout_ms = 3000;
  // TCP_USER_TIMEOUT: a peer that acknowledges nothing for this long is dropped.
  uint32_t tcp_user_timeout_ms = 10000;
  // On SIGTERM/SIGINT the replication thread keeps sending until every
  // write accepted before the stop is in the sockets of the peers it is
  // owed to, for at most this long (replicator.h, "Stopping"). The whole
  // live log (log_bytes_max, 16 MiB at most) takes 0.15 s at 1 Gb/s, 1.4 s
  // at 100 Mb/s: a peer that needs longer reads nothing, or takes a full
  // copy of a large store, and the stop must stay quick for a restart and
  // far within any supervisor's stop timeout (systemd's default is 90 s).
  int64_t stop_drain_ms_max = 2000;
  // Heartbeats measure replication lag and keep idle links checked.
  int64_t heartbeat_interval_ms = 100;
  // How long a delete's tombstone outlives it: later writes older than the
  // delete may arrive until then without resurrecting the key. It occupies
  // store memory like an item and is evicted like one.
  uint32_t tombstone_lifetime_s = 600;
  // Incoming streams tracked at once (one per peer normally; more only
  // briefly while a peer reconnects).
  uint32_t incoming_streams_max = 64;
  // TCP keepalive on incoming streams. A sender that vanished without its
  // FIN or RST arriving (it dropped the link in a partition, or died in
  // one) never writes on that connection again, and the receiver never
  // writes at all, so only keepalive finds out: a stream silent for
  // idle_s whose probes go unanswered (or are answered with a reset) is
  // closed. Heartbeats (every heartbeat_interval_ms) keep a live stream from
  // ever being probed; a stopped sender's kernel still answers probes. In
  // all, about as long as tcp_user_timeout_ms gives the sender's side.
  uint32_t incoming_keepalive_idle_s = 5;
  uint32_t incoming_keepalive_interval_s = 1;
  uint32_t incoming_keepalive_probes = 5;
};

// The production tuning for a node with -m memory_bytes: the live log may
// hold a quarter of the budget (at most 16 MiB) and each worker's handoff
// ring a sixteenth (at most 4 MiB), so that replication stays a small part
// of what the resident bound (docs/command_line.md) allows. (4 MiB rings absorbed the
// scheduling gaps of a 2-core machine running five nodes at 200k writes/s
// without one overflow; 1 MiB rings overflowed 28 times in 4 s.)
inline ReplicationTuning tuning_for_memory(uint64_t memory_bytes) {
  const auto clamp = [](uint64_t value, uint64_t low, uint64_t high) {
    return static_cast<size_t>(value < low ? low : value > high ? high : value);
  };
  ReplicationTuning tuning;
  tuning.log_bytes_max = clamp(memory_bytes / 4, 4 * tuning.log_chunk_bytes, 16 * mib_bytes);
  tuning.handoff_ring_bytes = clamp(memory_bytes / 16, 256 * kib_bytes, 4 * mib_bytes) & ~size_t{15};
  return tuning;
}

// Receives one log line (no newline); must be thread-safe.
using LogSink = void (*)(const char* line);

struct ReplicationConfig {
  std::string node_id;              // --node-id or random
  std::vector<PeerAddress> peers;   // --peer, in order
  uint32_t workers = 1;             // worker threads that hand writes over
  uint64_t item_bytes_max = 0;      // --max-item
  // --peer-secret-file: every stream is mutually authenticated with it
  // (handshake.h). nullptr: the v1 hello, from the peers' addresses only.
  std::shared_ptr<const PeerSecret> secret;
  // --max-clock-skew: a peer's version whose time is further ahead of this
  // node's wall clock is refused, and its stream closed (incoming_stream.h).
  int64_t max_clock_skew_ms = 10 * 1000;
  // --tls-cert with --tls-ca: links speak TLS with this context's client
  // side and present its certificate; a hello is taken only from a TLS
  // connection whose certificate verified (docs/replication.md, "TLS").
  // nullptr: plaintext. Owned by main(), outlives the Replicator.
  const server::TlsContext* tls = nullptr;
  // --tls-handshake-timeout: a link's TLS handshake not done by then is
  // abandoned and retried.
  int64_t tls_handshake_ms_max = 10 * 1000;
  ReplicationTuning tuning;
  LogSink info = nullptr;           // connects, drops, resyncs (always shown)
  LogSink debug = nullptr;          // per-event detail (-v)
};

}  // namespace ringcache::replication
