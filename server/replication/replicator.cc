#include "server/replication/replicator.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "server/io/value_copy.h"
#include "server/replication/log_sink.h"
#include "server/replication/peer_link.h"
#include "server/replication/replication_log.h"
#include "server/replication/wire.h"

namespace ringcache::replication {
namespace {

constexpr uint64_t epoll_tag_stop = 1;
constexpr uint64_t epoll_tag_wake = 2;
constexpr uint64_t epoll_tag_link_base = 16;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

// ------------------------------------------------------------ WorkerReplication

WorkerReplication::WorkerReplication(Replicator& owner, const ReplicationTuning& tuning)
    : owner_(owner),
      ring_(tuning.handoff_ring_bytes),
      tombstone_lifetime_s_(tuning.tombstone_lifetime_s) {}

uint64_t WorkerReplication::next_version() { return owner_.clock().next(); }

uint32_t WorkerReplication::tombstone_expires_at(uint32_t now_s) const {
  return now_s + tombstone_lifetime_s_;
}

void WorkerReplication::publish() {
  ring_.commit();
  owner_.wake();
}

void WorkerReplication::lost(uint64_t version) {
  ring_.mark_lost(version);
  owner_.wake();
}

void WorkerReplication::put(std::string_view key, std::string_view value, const store::ItemMeta& meta) {
  if (value.size() > server::copy_value_bytes_max) {
    put_lookup(key, meta.version);
    return;
  }
  char* at = ring_.reserve(HandoffKind::frame, put_frame_bytes(key.size(), value.size()));
  if (at == nullptr) {
    lost(meta.version);
    return;
  }
  write_put(at, key, value, PutMeta{meta.version, meta.flags, meta.expires_at});
  publish();
}

void WorkerReplication::put_lookup(std::string_view key, uint64_t version) {
  char* at = ring_.reserve(HandoffKind::lookup, key.size());
  if (at == nullptr) {
    lost(version);
    return;
  }
  if (!key.empty()) std::memcpy(at, key.data(), key.size());
  publish();
}

void WorkerReplication::del(std::string_view key, uint64_t version) {
  char* at = ring_.reserve(HandoffKind::frame, del_frame_bytes(key.size()));
  if (at == nullptr) {
    lost(version);
    return;
  }
  write_del(at, key, version);
  publish();
}

void WorkerReplication::flush(uint64_t version, uint32_t at_s) {
  assert(version != 0);
  char* at = ring_.reserve(HandoffKind::frame, flush_bytes);
  if (at == nullptr) {
    // The catch-up resync this triggers starts with the node's flush
    // threshold (peer_link.h), which already includes a flush for now.
    lost(version);
    return;
  }
  write_flush(at, version, at_s);
  publish();
}

// ------------------------------------------------------------------ Replicator

const char* admit_status_text(AdmitStatus status) {
  switch (status) {
    case AdmitStatus::admitted:
      return "admitted";
    case AdmitStatus::own_node_id:
      return "it carries this node's own node id (is this node listed as its own peer?)";
    case AdmitStatus::tag_clash:
      return "its node id maps to this node's version tag; give the nodes other --node-id values";
    case AdmitStatus::too_many:
      return "too many incoming replication streams";
  }
  return "unknown";
}

Replicator::Replicator(store::Store& store, ReplicationConfig config)
    : store_(store),
      config_(std::move(config)),
      clock_(node_tag_of(config_.node_id)),
      allowlist_(config_.peers.size()),
      trust_log_(config_.info) {
  assert(is_valid_node_id(config_.node_id));
  assert(config_.workers >= 1);
  assert(config_.item_bytes_max > 0);
  assert(store.config().versioned && "replication needs a versioned store");
  for (uint32_t i = 0; i < config_.workers; ++i) {
    workers_.push_back(std::make_unique<WorkerReplication>(*this, config_.tuning));
  }
  receivers_ = std::make_unique<ReceiverCounters[]>(config_.workers);
}

Replicator::~Replicator() {
  stop();
  close_fd(epoll_fd_);
  close_fd(wake_fd_);
  close_fd(stop_fd_);
}

WorkerReplication& Replicator::worker(uint32_t index) {
  assert(index < workers_.size());
  return *workers_[index];
}

IncomingContext Replicator::incoming_context(uint32_t worker) {
  assert(worker < config_.workers);
  return IncomingContext{clock_, receivers_[worker], config_, trust_log_};
}

AdmitStatus Replicator::admit(std::string_view peer_node_id) const {
  if (peer_node_id == config_.node_id) return AdmitStatus::own_node_id;
  if (node_tag_of(peer_node_id) == clock_.tag()) return AdmitStatus::tag_clash;
  uint64_t open = 0;
  for (uint32_t i = 0; i < config_.workers; ++i) open += receivers_[i].streams.get();
  if (open >= config_.tuning.incoming_streams_max) return AdmitStatus::too_many;
  return AdmitStatus::admitted;
}

ReplicationStats Replicator::stats() const {
  ReplicationStats s;
  s.node_tag = clock_.tag();
  s.peers = config_.peers.size();
  s.peers_connected = sender_.peers_connected.get();
  s.writes_queued = sender_.writes_queued.get();
  s.resync_items = sender_.resync_items.get();
  s.resyncs_started = sender_.resyncs_started.get();
  s.resyncs_done = sender_.resyncs_done.get();
  s.queue_overflows = sender_.queue_overflows.get();
  s.handoff_overflows = sender_.handoff_overflows.get();
  s.queued_bytes = sender_.queued_bytes.get();
  s.resyncing = sender_.resyncing.get();
  s.bytes_sent = sender_.bytes_sent.get();
  s.authenticated = config_.secret != nullptr ? 1 : 0;
  s.tls = config_.tls != nullptr ? 1 : 0;
  s.auth_failures = sender_.auth_failures.get();
  s.tls_failures = sender_.tls_failures.get();
  for (uint32_t i = 0; i < config_.workers; ++i) {
    const ReceiverCounters& r = receivers_[i];
    s.incoming += r.streams.get();
    s.applied += r.applied.get();
    s.ignored_older += r.ignored_older.get();
    s.apply_failed += r.apply_failed.get();
    s.apply_waits += r.apply_waits.get();
    s.too_big += r.too_big.get();
    s.resyncs_received += r.resyncs_received.get();
    s.flushes_received += r.flushes_received.get();
    s.lag_us = std::max(s.lag_us, r.lag_us.get());
    s.auth_failures += r.auth_failures.get();
    s.address_refused += r.address_refused.get();
    s.hellos_refused += r.hellos_refused.get();
    s.skew_refused += r.skew_refused.get();
    s.tls_failures += r.tls_failures.get();
  }
  return s;
}

bool Replicator::start(std::string& error) {
  assert(!thread_.joinable());
  assert(resolvers_.empty());
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0 || stop_fd_ < 0) {
    error = std::string("replication: epoll/eventfd: ") + std::strerror(errno);
    return false;
  }
  for (const auto& [fd, tag] : {std::pair{stop_fd_, epoll_tag_stop}, std::pair{wake_fd_, epoll_tag_wake}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      error = std::string("replication: epoll_ctl: ") + std::strerror(errno);
      return false;
    }
  }
  for (const PeerAddress& peer : config_.peers) {
    if (is_numeric_host(peer.host)) {
      resolvers_.push_back(nullptr);
      continue;
    }
    // Answers are rare: signalled whether the thread sleeps or not, so that
    // none waits for the next heartbeat (the rings' check of `sleeping_`
    // does not cover them).
    resolvers_.push_back(std::make_unique<PeerResolver>(peer, [this] { signal_wake_fd(); }));
    if (!resolvers_.back()->start(error)) return false;
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::exception& e) {
    error = std::string("replication: cannot start its thread: ") + e.what();
    return false;
  }
  return true;
}

void Replicator::stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    while (::write(stop_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  // After the links that ask them; before wake_fd_ closes (they wake the thread).
  resolvers_.clear();
}

void Replicator::wake() {
  if (sleeping_.load(std::memory_order_seq_cst) && sleeping_.exchange(false, std::memory_order_seq_cst)) {
    signal_wake_fd();
  }
}

void Replicator::signal_wake_fd() {
  const uint64_t one = 1;
  // EAGAIN only when the counter is saturated: the thread is awake anyway.
  while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

bool Replicator::rings_empty() const {
  for (const auto& w : workers_) {
    if (!w->ring().empty()) return false;
  }
  return true;
}

void Replicator::run() {
  try {
    store::StoreThread store_thread(store_);
    ReplicationLog log(config_.tuning.log_bytes_max, config_.tuning.log_chunk_bytes);
    LinkShared shared{log, store_thread, config_, sender_, allowlist_, epoll_fd_};
    // Links (holding pins) go before the log and the store handle.
    std::vector<std::unique_ptr<PeerLink>> links;
    for (size_t i = 0; i < config_.peers.size(); ++i) {
      links.push_back(
          std::make_unique<PeerLink>(config_.peers[i], i, epoll_tag_link_base + i, shared, resolvers_[i].get()));
    }
    emit(config_.info, "replication: node id %s (version tag %u), %zu peers", config_.node_id.c_str(),
         static_cast<unsigned>(clock_.tag()), config_.peers.size());
    if (config_.tls != nullptr) {
      emit(config_.info,
           "replication: links are TLS, mutually authenticated: both ends present a certificate and verify "
           "the other's against --tls-ca (every certificate it signed is a member of this mesh)%s",
           config_.secret != nullptr ? "; and --peer-secret-file on top" : "; streams also only from --peer addresses");
    }
    if (config_.secret != nullptr) {
      emit(config_.info,
           "replication: streams are mutually authenticated with --peer-secret-file (HMAC-SHA256); versions "
           "more than %lld s ahead of this node's clock are refused",
           static_cast<long long>(config_.max_clock_skew_ms / 1000));
    } else if (config_.tls == nullptr) {
      emit(config_.info,
           "replication: UNAUTHENTICATED: streams are accepted from the addresses the --peer names resolve "
           "to, so anyone who can send from those addresses can write to this node. Turn authentication on "
           "with --peer-secret-file PATH on every node (PATH: the same 32 or more random bytes, e.g. "
           "head -c 32 /dev/urandom, owned by the daemon's user, mode 600)");
    }
    loop(log, links);
    links.clear();
  } catch (const std::exception& e) {
    // Only allocation can throw here; the node keeps serving clients, its
    // peers resync it when they reconnect, and our writes stop flowing out.
    emit(config_.info, "replication: fatal: %s; this node no longer sends its writes to peers", e.what());
  }
}

struct Replicator::StopDrain {
  bool started = false;
  int64_t started_ms = 0;
  int64_t deadline_ms = 0;
  uint64_t bytes_sent_before = 0;
  // By the links' index: streaming, or rejoining, when the stop came.
  std::vector<bool> owed;

  // Whether link i still ticks (connects, times out): every link until the
  // stop; then only one owed the writes and rejoining (cut for lag), since
  // no other starts an attempt nor times one out: it is not waited for.
  bool ticks(size_t i, const PeerLink& link) const { return !started || (owed[i] && link.rejoining()); }
};

void Replicator::begin_stop(StopDrain& stop, const std::vector<std::unique_ptr<PeerLink>>& links, int64_t now_ms) {
  assert(!stop.started);
  // Level-triggered: read, or every epoll_wait of the drain would return at once.
  uint64_t count = 0;
  (void)::read(stop_fd_, &count, sizeof(count));
  stop.started = true;
  stop.started_ms = now_ms;
  stop.deadline_ms = now_ms + config_.tuning.stop_drain_ms_max;
  stop.bytes_sent_before = sender_.bytes_sent.get();
  stop.owed.clear();
  for (const auto& link : links) {
    // A link stops rejoining when it streams again.
    assert(!(link->streaming() && link->rejoining()));
    stop.owed.push_back(link->streaming() || link->rejoining());
  }
}

bool Replicator::end_stop(const StopDrain& stop, const std::vector<std::unique_ptr<PeerLink>>& links,
                          int64_t now_ms) {
  assert(stop.started);
  assert(stop.owed.size() == links.size());
  size_t owed = 0;
  size_t served = 0;
  bool waiting = !rings_empty();
  std::string failed;  // "; peer X: why", for each peer owed that did not get everything
  for (size_t i = 0; i < links.size(); ++i) {
    if (!stop.owed[i]) continue;
    ++owed;
    const PeerLink& link = *links[i];
    if (link.rejoining()) {
      waiting = true;
      failed += "; peer " + link.address().text() + ": reconnecting to resync";
    } else if (!link.streaming()) {
      // Dropped, or its reconnection failed: it does not retry while stopping.
      failed += "; peer " + link.address().text() + ": not connected";
    } else if (link.sent_everything()) {
      ++served;
    } else {
      waiting = true;
      failed += "; peer " + link.address().text() + ": " + std::to_string(link.queued_bytes()) + " bytes unsent";
      if (link.resyncing()) failed += ", resync unfinished";
    }
  }
  if (waiting && now_ms < stop.deadline_ms) return false;
  assert(!(served > owed));
  const long long took_ms = static_cast<long long>(now_ms - stop.started_ms);
  const auto sent = static_cast<unsigned long long>(sender_.bytes_sent.get() - stop.bytes_sent_before);
  if (owed == 0) {
    emit(config_.info, "replication: stop: no peer streaming (%zu not connected), nothing sent", links.size());
  } else if (waiting) {
    emit(config_.info, "replication: stop: gave up after %lld ms (stop_drain_ms_max), %llu bytes sent%s%s",
         took_ms, sent, rings_empty() ? "" : "; writes left in the handoff rings", failed.c_str());
  } else {
    emit(config_.info,
         "replication: stop: sent every write accepted before the stop to %zu of %zu streaming peers in %lld ms "
         "(%llu bytes)%s%s",
         served, owed, took_ms, sent, failed.c_str(),
         owed == links.size() ? "" : "; peers not streaming were not waited for");
  }
  return true;
}

void Replicator::loop(ReplicationLog& log, std::vector<std::unique_ptr<PeerLink>>& links) {
  epoll_event events[epoll_events_max];
  int64_t next_heartbeat_ms = monotonic_ms();
  StopDrain stop;
  while (true) {
    const int64_t now_ms = monotonic_ms();
    if (const uint64_t lost = drain(log, links, now_ms); lost != 0) {
      sender_.handoff_overflows.add();
      emit(config_.info,
           "replication: a worker's handoff queue overflowed; sending every peer what is at least as "
           "new as the first write lost (version %llu)",
           static_cast<unsigned long long>(lost));
      for (auto& link : links) link->restart_resync(now_ms, lost);
    }
    if (!stop.started && now_ms >= next_heartbeat_ms) {
      std::string frame;
      append_heartbeat(frame, wall_clock_unix_us());
      (void)append(log, links, now_ms, false, frame);
      next_heartbeat_ms = now_ms + config_.tuning.heartbeat_interval_ms;
    }
    for (size_t i = 0; i < links.size(); ++i) {
      if (stop.ticks(i, *links[i])) links[i]->tick(now_ms);
    }
    bool more = false;
    for (auto& link : links) {
      if (link->streaming()) more |= link->pump(config_.tuning.send_burst_bytes, now_ms);
    }
    trim(log, links);
    if (stop.started && end_stop(stop, links, now_ms)) return;

    int64_t deadline_ms = next_heartbeat_ms;
    if (stop.started) deadline_ms = stop.deadline_ms;
    for (size_t i = 0; i < links.size(); ++i) {
      if (stop.ticks(i, *links[i])) deadline_ms = std::min(deadline_ms, links[i]->deadline_ms());
    }
    int timeout_ms = more ? 0 : static_cast<int>(std::clamp<int64_t>(deadline_ms - now_ms, 0, 1000));
    sleeping_.store(true, std::memory_order_seq_cst);
    if (!rings_empty()) timeout_ms = 0;
    const int n = ::epoll_wait(epoll_fd_, events, epoll_events_max, timeout_ms);
    sleeping_.store(false, std::memory_order_relaxed);
    if (n < 0 && errno != EINTR) {
      emit(config_.info, "replication: epoll_wait: %s", std::strerror(errno));
      return;
    }
    const int64_t woke_ms = monotonic_ms();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == epoll_tag_stop) {
        begin_stop(stop, links, woke_ms);
        continue;
      }
      if (tag == epoll_tag_wake) {
        uint64_t count = 0;
        (void)::read(wake_fd_, &count, sizeof(count));
        continue;
      }
      assert(tag >= epoll_tag_link_base);
      assert(tag - epoll_tag_link_base < links.size());
      links[tag - epoll_tag_link_base]->on_socket_event(events[i].events, woke_ms);
    }
  }
}

// Moves handed-over writes into the log. Returns the lowest version a ring
// could not take (0: none was lost).
uint64_t Replicator::drain(ReplicationLog& log, std::vector<std::unique_ptr<PeerLink>>& links,
                           int64_t now_ms) {
  uint64_t lost = 0;
  for (auto& w : workers_) {
    HandoffRing& ring = w->ring();
    // Taken before draining: a write that was lost is in the store already,
    // so a resync decided now includes it.
    const uint64_t ring_lost = ring.take_lost();
    if (ring_lost != 0 && (lost == 0 || ring_lost < lost)) lost = ring_lost;
    HandoffRing::Record record{};
    for (size_t n = 0; n < drain_records_max && ring.peek(record); ++n) {
      (void)append(log, links, now_ms, record.kind == HandoffKind::lookup, record.payload);
      ring.pop();
    }
  }
  return lost;
}

// Appends to the log for every streaming peer, cutting the slowest ones if
// the log is full. False when no peer streams (nothing to keep).
bool Replicator::append(ReplicationLog& log, std::vector<std::unique_ptr<PeerLink>>& links, int64_t now_ms,
                        bool lookup, std::string_view bytes) {
  const auto try_append = [&] { return lookup ? log.append_lookup(bytes) : log.append_frame(bytes); };
  while (true) {
    uint64_t streaming = 0;
    PeerLink* slowest = nullptr;
    for (auto& link : links) {
      if (!link->streaming()) continue;
      ++streaming;
      if (slowest == nullptr || link->cursor() < slowest->cursor()) slowest = link.get();
    }
    if (streaming == 0) {
      // Whoever connects next starts from a full copy of the store.
      log.clear();
      return false;
    }
    bool appended = try_append();
    if (!appended) {
      trim(log, links);
      appended = try_append();
    }
    if (appended) {
      if (lookup || bytes[0] != static_cast<char>(WireOp::heartbeat)) sender_.writes_queued.add(streaming);
      return true;
    }
    const std::string reason = "its send queue overflowed (" + std::to_string(log.end() - slowest->cursor()) +
                               " bytes behind, limit " + std::to_string(log.bytes_max()) + "); resyncing it";
    slowest->cut(reason.c_str(), now_ms);
    trim(log, links);
  }
}

void Replicator::trim(ReplicationLog& log, std::vector<std::unique_ptr<PeerLink>>& links) {
  uint64_t oldest = log.end();
  bool any = false;
  uint64_t queued = 0;
  uint64_t resyncing = 0;
  for (const auto& link : links) {
    if (!link->streaming()) continue;
    any = true;
    oldest = std::min(oldest, link->cursor());
    queued += link->queued_bytes();
    // A scan still under way has items to send that queued_bytes cannot
    // count yet: only both at zero say that nothing waits for any peer.
    if (link->resyncing()) ++resyncing;
  }
  if (any) {
    log.trim(oldest);
  } else {
    log.clear();
  }
  sender_.queued_bytes.set(queued);
  sender_.resyncing.set(resyncing);
}

}  // namespace ringcache::replication
