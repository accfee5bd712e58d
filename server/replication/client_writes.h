// Client writes with replication on, for both ports (server/process.cc for
// the binary protocol, server/text_process.cc for the text protocol): the
// same versioning and handoff whichever protocol a write came through.
//
// - Every write gets a fresh version from the node's clock. A plain set is
//   stored newest-wins (PutMode::newer): if another worker stored a newer
//   version of the key meanwhile, this write counts as done and superseded,
//   exactly what every peer will conclude. add/replace/cas keep their own
//   condition, checked on this node only.
// - A write the store accepted is handed to the replication thread; one it
//   refused is not.
// - A delete leaves a tombstone with a fresh version, so a late and older
//   write from a peer cannot bring the key back; it is replicated even when
//   the key is absent here, since a peer may hold a write this node has not
//   seen yet.
#pragma once

#include <cstdint>
#include <string_view>

#include "server/replication/replicator.h"
#include "store/store.h"

namespace ringcache::replication {

// Stores a whole value (meta.version is filled in) and hands it over.
// Returns stored for a write superseded by a concurrent newer one.
store::PutStatus put_replicated(store::StoreThread& store, WorkerReplication& replication,
                                std::string_view key, std::string_view value, store::ItemMeta meta,
                                store::PutOptions options);

// A value that streams in: reserve with a fresh version (written to
// `version`), then, once committed, finish_reserved() with the status.
store::Reservation reserve_replicated(store::StoreThread& store, WorkerReplication& replication,
                                      std::string_view key, uint64_t value_size, store::ItemMeta meta,
                                      store::PutOptions options, uint64_t& version);
store::PutStatus finish_reserved(WorkerReplication& replication, std::string_view key, uint64_t version,
                                 store::PutStatus status);

// Removes the key with a tombstone; returns whether a live item was there.
bool delete_replicated(store::StoreThread& store, WorkerReplication& replication, std::string_view key);

// After a read-modify-write (append, incr, touch, ...) the store changed:
// hands over the key's current item, read when sent.
void replicate_current(store::StoreThread& store, WorkerReplication& replication, std::string_view key);

}  // namespace ringcache::replication
