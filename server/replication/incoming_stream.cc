#include "server/replication/incoming_stream.h"

#include <time.h>

#include <cassert>

#include "server/replication/log_sink.h"

namespace ringcache::replication {
namespace {

uint64_t unix_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

DecoderLimits decoder_limits(const ReplicationConfig& config) {
  DecoderLimits limits;
  limits.item_max_bytes = config.item_max_bytes;
  return limits;
}

}  // namespace

IncomingStream::IncomingStream(const IncomingContext& context, store::StoreThread& store,
                               std::string peer_node_id)
    : context_(context),
      store_(store),
      peer_node_id_(std::move(peer_node_id)),
      decoder_(decoder_limits(context.config)) {
  context_.counters.streams.add();
  emit(context_.config.info, "replication: stream from node %s opened", peer_node_id_.c_str());
}

IncomingStream::~IncomingStream() {
  context_.counters.streams.set(context_.counters.streams.get() - 1);
  emit(context_.config.info, "replication: stream from node %s closed", peer_node_id_.c_str());
}

StreamStatus IncomingStream::feed(std::string_view bytes) {
  while (true) {
    size_t used = 0;
    const DecodeEvent event = decoder_.next(bytes, used);
    bytes.remove_prefix(used);
    if (event.kind == DecodeKind::need_more) return StreamStatus::ok;
    if (event.kind == DecodeKind::bad_opcode) {
      emit(context_.config.info, "replication: stream from node %s sent byte %u where an opcode belongs; closing it",
           peer_node_id_.c_str(), static_cast<unsigned>(event.byte));
      reservation_ = store::Reservation();
      put_active_ = false;
      return StreamStatus::protocol_error;
    }
    apply(event);
  }
}

void IncomingStream::count(store::PutStatus status) {
  switch (status) {
    case store::PutStatus::stored:
      context_.counters.applied.add();
      return;
    case store::PutStatus::older:
      context_.counters.ignored_older.add();
      return;
    case store::PutStatus::no_memory:
    case store::PutStatus::evicted:
    case store::PutStatus::aborted:
      context_.counters.apply_failed.add();
      return;
    case store::PutStatus::not_stored:
    case store::PutStatus::exists:
    case store::PutStatus::not_found:
      break;
  }
  assert(false && "not a status of a newest-wins put");
  context_.counters.apply_failed.add();
}

// The store checks newest-wins only when it links a written item, so an
// older write would still take segment space. A resync repeats mostly what
// the receiver has: look first, and skip what is not newer. (Tombstones are
// invisible to get(); for them the store's own check decides.)
bool IncomingStream::holds_newer(std::string_view key, uint64_t version) {
  uint64_t held = 0;
  const bool present = store_.get(key, [&](const store::ItemView& item) { held = item.version(); });
  return present && held >= version;
}

void IncomingStream::apply(const DecodeEvent& event) {
  const store::PutOptions newer{store::PutMode::newer, 0};
  switch (event.kind) {
    case DecodeKind::put: {
      context_.clock.observe(event.meta.version);
      if (holds_newer(event.key, event.meta.version)) {
        count(store::PutStatus::older);
        return;
      }
      const store::ItemMeta meta{event.meta.flags, event.meta.expires_at, event.meta.version};
      count(store_.put(event.key, event.data, meta, newer));
      return;
    }
    case DecodeKind::put_begin: {
      assert(!put_active_);
      context_.clock.observe(event.meta.version);
      put_active_ = true;
      skip_put_ = holds_newer(event.key, event.meta.version);
      if (skip_put_) return;
      const store::ItemMeta meta{event.meta.flags, event.meta.expires_at, event.meta.version};
      reservation_ = store_.reserve(event.key, event.value_size, meta, newer);
      return;
    }
    case DecodeKind::put_data:
      assert(put_active_);
      // After a failed append the rest of the value is still read; the
      // outcome is counted at put_end.
      if (!skip_put_ && reservation_.ok()) (void)reservation_.append(event.data);
      return;
    case DecodeKind::put_end: {
      assert(put_active_);
      store::PutStatus status = store::PutStatus::older;
      if (!skip_put_) status = reservation_.ok() ? reservation_.commit() : reservation_.status();
      reservation_ = store::Reservation();
      put_active_ = false;
      skip_put_ = false;
      count(status);
      return;
    }
    case DecodeKind::del: {
      context_.clock.observe(event.meta.version);
      const uint32_t expires_at = store_.store().now_s() + context_.config.tuning.tombstone_lifetime_s;
      count(store_.del_versioned(event.key, event.meta.version, expires_at));
      return;
    }
    case DecodeKind::flush: {
      const auto at_s = static_cast<uint32_t>(event.number);
      const bool due_now = at_s <= store_.store().now_s();
      // A threshold that is the instant of a future at_s (tag 0, see
      // client_writes.h) must not drag the clock there: this node's writes
      // until at_s have to stay below it. Any other one was issued by the
      // peer's clock, like a PUT's version.
      if (due_now || version_tag(event.meta.version) != 0) context_.clock.observe(event.meta.version);
      store_.flush_versions_before(event.meta.version, due_now ? 0 : at_s);
      context_.counters.flushes_received.add();
      emit(context_.config.info, "replication: node %s flushed versions below %llu (at %u)",
           peer_node_id_.c_str(), static_cast<unsigned long long>(event.meta.version), at_s);
      return;
    }
    case DecodeKind::resync_begin:
      context_.counters.resyncs_received.add();
      emit(context_.config.info, "replication: resync from node %s started", peer_node_id_.c_str());
      return;
    case DecodeKind::resync_end:
      emit(context_.config.info, "replication: resync from node %s done (%llu items)", peer_node_id_.c_str(),
           static_cast<unsigned long long>(event.number));
      return;
    case DecodeKind::heartbeat: {
      const uint64_t now = unix_us();
      context_.counters.lag_us.set(now > event.number ? now - event.number : 0);
      return;
    }
    case DecodeKind::mesh:
      if (event.number != context_.config.peers.size() && !warned_mesh_) {
        warned_mesh_ = true;
        emit(context_.config.info,
             "replication: node %s lists %llu peers, this node lists %zu: not a full mesh? "
             "(every node must list every other; writes reach only the nodes that list their origin)",
             peer_node_id_.c_str(), static_cast<unsigned long long>(event.number),
             context_.config.peers.size());
      }
      return;
    case DecodeKind::too_big:
      context_.counters.too_big.add();
      if (!warned_too_big_) {
        warned_too_big_ = true;
        emit(context_.config.info,
             "replication: node %s sent an item over this node's --max-item (%llu bytes); skipped "
             "(give every node the same --max-item)",
             peer_node_id_.c_str(), static_cast<unsigned long long>(context_.config.item_max_bytes));
      }
      return;
    case DecodeKind::need_more:
    case DecodeKind::bad_opcode:
      break;
  }
  assert(false && "handled by feed()");
}

std::unique_ptr<IncomingStream> open_incoming_stream(Replicator& replicator, uint32_t worker,
                                                     store::StoreThread& store, std::string_view hello,
                                                     std::string& refusal) {
  std::string_view node_id;
  const HelloStatus hello_status = parse_hello(hello, node_id);
  if (hello_status != HelloStatus::ok) {
    refusal = hello_status_text(hello_status);
    return nullptr;
  }
  const AdmitStatus admit = replicator.admit(node_id);
  if (admit != AdmitStatus::admitted) {
    refusal = "node " + std::string(node_id) + ": " + admit_status_text(admit);
    return nullptr;
  }
  return std::make_unique<IncomingStream>(replicator.incoming_context(worker), store, std::string(node_id));
}

}  // namespace ringcache::replication
