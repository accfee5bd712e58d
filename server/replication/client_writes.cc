#include "server/replication/client_writes.h"

#include <algorithm>
#include <cassert>

#include "server/replication/version_clock.h"

namespace ringcache::replication {
namespace {

store::PutOptions newest_wins_for_set(store::PutOptions options) {
  if (options.mode == store::PutMode::set) options.mode = store::PutMode::newer;
  return options;
}

}  // namespace

store::PutStatus put_replicated(store::StoreThread& store, WorkerReplication& replication,
                                std::string_view key, std::string_view value, store::ItemMeta meta,
                                store::PutOptions options) {
  assert(store.store().config().versioned);
  meta.version = replication.next_version();
  const store::PutStatus status = store.put(key, value, meta, newest_wins_for_set(options));
  if (status == store::PutStatus::stored) replication.put(key, value, meta);
  return status == store::PutStatus::older ? store::PutStatus::stored : status;
}

store::Reservation reserve_replicated(store::StoreThread& store, WorkerReplication& replication,
                                      std::string_view key, uint64_t value_size, store::ItemMeta meta,
                                      store::PutOptions options, uint64_t& version) {
  assert(store.store().config().versioned);
  meta.version = replication.next_version();
  version = meta.version;
  return store.reserve(key, value_size, meta, newest_wins_for_set(options));
}

store::PutStatus finish_reserved(WorkerReplication& replication, std::string_view key, uint64_t version,
                                 store::PutStatus status) {
  // Too large to copy: the replication thread reads it from the store.
  if (status == store::PutStatus::stored) replication.put_lookup(key, version);
  return status == store::PutStatus::older ? store::PutStatus::stored : status;
}

bool delete_replicated(store::StoreThread& store, WorkerReplication& replication, std::string_view key) {
  const bool present = store.get(key, [](const store::ItemView&) {});
  const uint64_t version = replication.next_version();
  const store::PutStatus status =
      store.del_versioned(key, version, replication.tombstone_expires_at(store.store().now_s()));
  // No room for a tombstone: the key still goes here, only without one.
  if (status == store::PutStatus::no_memory) (void)store.del(key);
  if (status != store::PutStatus::older) replication.del(key, version);
  return present;
}

uint64_t flush_replicated(store::StoreThread& store, WorkerReplication& replication, uint32_t at_s) {
  assert(store.store().config().versioned);
  if (at_s <= store.store().now_s()) at_s = 0;
  const uint64_t fresh = replication.next_version();
  const uint64_t threshold = at_s == 0 ? fresh : std::max(fresh, version_at_unix_ms(uint64_t{at_s} * 1000));
  store.flush_versions_before(threshold, at_s);
  replication.flush(threshold, at_s);
  return threshold;
}

void replicate_current(store::StoreThread& store, WorkerReplication& replication, std::string_view key) {
  uint64_t version = 0;
  if (store.get(key, [&](const store::ItemView& item) { version = item.version(); })) {
    // An unversioned item would be the oldest possible write.
    replication.put_lookup(key, version != 0 ? version : 1);
  }
}

}  // namespace ringcache::replication
