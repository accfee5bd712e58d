// Client writes with replication on: the versioning and handoff behind the
// replicated write path (server/process/write_path.h), the only caller, so
// both ports' writes replicate the same way.
//
// - Every write gets a fresh version from the node's clock. A plain set is
//   stored newest-wins (PutMode::newer): if another worker stored a newer
//   version of the key meanwhile, this write counts as done and superseded,
//   exactly what every peer will conclude. add/replace/cas keep their own
//   condition, checked on this node only.
// - A write the store accepted is handed to the replication thread; one it
//   refused is not.
// - flush_all becomes a version threshold (store::StoreThread::
//   flush_versions_before) applied here and on every peer; see
//   flush_replicated() for how it is chosen.
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

// flush_all with replication (at_s: unix seconds, 0 or not after now =
// now). Applies a version threshold here and hands the same (threshold,
// at_s) to every peer. Returns the threshold.
//
// - Now: the threshold is a fresh version from the node's clock. It is
//   above every version this node issued or observed before, so it hides
//   every write this node acknowledged or applied before the flush, and
//   every write made here after it gets a higher version and stays. A peer
//   applying it moves its clock past it, so the same holds there.
// - Delayed to at_s: the threshold is the version of the wall-clock instant
//   at_s (version_at_unix_ms), so on every node a write made before at_s
//   (its HLC below at_s) is hidden and one made at or after at_s is not,
//   whichever node took it, and each node applies it when its own clock
//   reaches at_s, so nothing needs to travel at at_s. It is raised to the
//   fresh version when the clock already runs past at_s (it observed a peer
//   whose wall clock is ahead): what this node has acknowledged so far must
//   go whatever its clock says. A write stamped by a clock ahead of the wall
//   clock may then survive a flush that was due before it in real time;
//   with synchronised clocks (docs/replication.md §12) that never happens.
uint64_t flush_replicated(store::StoreThread& store, WorkerReplication& replication, uint32_t at_s);

// After a read-modify-write (append, incr, touch, ...) the store changed:
// hands over the key's current item, read when sent.
void replicate_current(store::StoreThread& store, WorkerReplication& replication, std::string_view key);

}  // namespace ringcache::replication
