// Replicator: the replication thread and what the workers use to feed it
// (docs/replication.md).
//
// Threads:
// - Workers never block on replication. After the store accepts a client
//   write, the worker encodes it into its own HandoffRing (lock-free SPSC)
//   and, only if the replication thread sleeps, wakes it through an eventfd.
//   A full ring does not delay the client: the write is acknowledged and
//   every peer gets a catch-up resync (handoff_ring.h).
// - The replication thread (one, with its own epoll loop and StoreThread)
//   drains the rings into the shared ReplicationLog, owns one PeerLink per
//   --peer (connect, backoff, resync, live stream), appends heartbeats, and
//   cuts a peer whose unread log would pass log_bytes_max (it reconnects and
//   resyncs). Host names are resolved here, at every attempt.
// - Incoming streams are served by the worker that accepted them
//   (incoming_stream.h); the Replicator only admits them (node ids) and
//   provides their clock and counters.
//
// Stopping (docs/replication.md §7, "Stopping"): stop() writes the stop
// eventfd. The thread then opens no new connection and sends no heartbeat,
// but goes on moving the rings into the log and pumping the links until
// every link owed the writes has sent everything it holds
// (PeerLink::sent_everything), or stop_drain_ms_max has passed; one log
// line says which. The workers are done before stop(), so the rings get
// nothing new: once they are empty and those links drained, every write
// accepted before the stop is in a socket towards each of those peers, and
// the kernel delivers it after the process exits. Owed are:
// - the links streaming at the stop, a resync under way included: a
//   catch-up after a handoff overflow carries acknowledged writes that are
//   in no log, a first copy what the peer missed while away;
// - a link the log cut for lag (rejoining: it reconnects at once and
//   resyncs in full), before or during the drain: a healthy peer that
//   fell behind in a burst, often just before a stop.
// The deadline bounds them all. Other links (not yet connected, backing
// off, or connecting again after a failure or a drop) are not owed: that
// peer was unreachable or failing before the stop, and a stopping node
// starts no new attempt. A link dropped during the drain, or whose
// reconnection fails, is not retried.
//
// Wake-ups without a lost one: the worker publishes its record (a seq_cst
// store of the ring's tail), then reads `sleeping_` (seq_cst); the thread
// sets `sleeping_` (seq_cst), then reads every ring's tail (seq_cst) before
// epoll_wait. In the single order of seq_cst operations one of the two reads
// comes after the other side's write, so either the worker wakes the thread
// or the thread sees the record. (Atomics rather than fences: TSan checks
// these.)
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/non_copyable.h"
#include "server/replication/handoff_ring.h"
#include "server/replication/peer_allowlist.h"
#include "server/replication/peer_resolver.h"
#include "server/replication/replication_config.h"
#include "server/replication/replication_stats.h"
#include "server/replication/trust_log.h"
#include "server/replication/version_clock.h"
#include "store/store.h"

namespace ringcache::replication {

class Replicator;
class ReplicationLog;
class PeerLink;

// Records drained from one ring per turn of the loop, so that a busy worker
// cannot keep the thread from sending.
inline constexpr size_t drain_records_max = 65536;
inline constexpr int epoll_events_max = 64;

// A worker's side: versions for its client writes and the handoff of the
// writes it accepted. Used by exactly one worker thread.
class WorkerReplication {
 public:
  WorkerReplication(Replicator& owner, const ReplicationTuning& tuning);

  // A fresh version for a client write (then stored with PutMode::newer).
  uint64_t next_version();
  // Hands over a client write the store accepted. Values larger than
  // server::copy_value_bytes_max (and streamed PUTs) go as a lookup of the key.
  void put(std::string_view key, std::string_view value, const store::ItemMeta& meta);
  void put_lookup(std::string_view key, uint64_t version);
  void del(std::string_view key, uint64_t version);
  // Hands over a flush_all already applied here (client_writes.h).
  void flush(uint64_t version, uint32_t at_s);
  // When a tombstone written at now_s may go.
  uint32_t tombstone_expires_at(uint32_t now_s) const;

  HandoffRing& ring() { return ring_; }

 private:
  void publish();
  void lost(uint64_t version);

  Replicator& owner_;
  HandoffRing ring_;
  const uint32_t tombstone_lifetime_s_;
};

// What an incoming stream needs from the node; see incoming_stream.h.
struct IncomingContext {
  HybridClock& clock;
  ReceiverCounters& counters;
  const ReplicationConfig& config;
  TrustLog& trust_log;
};

enum class AdmitStatus : uint8_t {
  admitted,
  own_node_id,  // the hello carries our own node id: we are our own peer, or a clash
  tag_clash,    // another id with our version tag (version_clock.h)
  too_many,     // incoming_streams_max streams are open already
};
const char* admit_status_text(AdmitStatus status);

class Replicator : NonCopyable {
 public:
  // The store must be versioned and allow one more StoreThread than the
  // workers use (the replication thread has its own).
  Replicator(store::Store& store, ReplicationConfig config);
  ~Replicator();

  // Creates the eventfds, the epoll set, the thread and the resolvers of the
  // peers given by name (peer_resolver.h). False with `error`.
  bool start(std::string& error);
  // Sends what is queued to the streaming peers (bounded by
  // stop_drain_ms_max, see "Stopping" above), then stops and joins the
  // thread; idempotent. Workers must be done with worker() by then.
  void stop();

  const ReplicationConfig& config() const { return config_; }
  uint16_t node_tag() const { return clock_.tag(); }
  HybridClock& clock() { return clock_; }
  WorkerReplication& worker(uint32_t index);
  IncomingContext incoming_context(uint32_t worker);
  // Whether a stream whose hello names `peer_node_id` may be applied.
  AdmitStatus admit(std::string_view peer_node_id) const;
  // Where unauthenticated streams may come from (no secret).
  const PeerAllowlist& allowlist() const { return allowlist_; }

  ReplicationStats stats() const;
  // Producers call this after publishing (cheap unless the thread sleeps).
  void wake();

 private:
  void run();
  void loop(ReplicationLog& log, std::vector<std::unique_ptr<PeerLink>>& links);
  uint64_t drain(ReplicationLog& log, std::vector<std::unique_ptr<PeerLink>>& links, int64_t now_ms);
  bool append(ReplicationLog& log, std::vector<std::unique_ptr<PeerLink>>& links, int64_t now_ms,
              bool lookup, std::string_view bytes);
  void trim(ReplicationLog& log, std::vector<std::unique_ptr<PeerLink>>& links);
  bool rings_empty() const;
  // Wakes the thread from epoll_wait, or makes its next one return at once.
  void signal_wake_fd();

  // What the stop's drain owes, and to whom.
  struct StopDrain;
  void begin_stop(StopDrain& stop, const std::vector<std::unique_ptr<PeerLink>>& links, int64_t now_ms);
  // True when the drain is over (done, or out of time), after its log line.
  bool end_stop(const StopDrain& stop, const std::vector<std::unique_ptr<PeerLink>>& links, int64_t now_ms);

  store::Store& store_;
  const ReplicationConfig config_;
  HybridClock clock_;
  std::vector<std::unique_ptr<WorkerReplication>> workers_;
  std::unique_ptr<ReceiverCounters[]> receivers_;
  SenderCounters sender_;
  PeerAllowlist allowlist_;
  TrustLog trust_log_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int stop_fd_ = -1;
  // By the peers' index: the resolver of a peer given by name (nullptr for
  // an address), started with the thread, ended after it.
  std::vector<std::unique_ptr<PeerResolver>> resolvers_;
  std::thread thread_;
  alignas(64) std::atomic<bool> sleeping_{false};
};

}  // namespace ringcache::replication
