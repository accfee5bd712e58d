// WritePath: the one way a worker's processors (binary_process.h,
// text_process.h, the meta commands included) change the store. Whether
// writes replicate is decided once, when the worker builds its write path
// (WritePath::make), never at a call site:
// - without --peer (LocalWritePath): every call is the store's own;
// - with --peer (ReplicatedWritePath): every write gets a version from the
//   node's clock, applies newest-wins and, once the store accepted it, is
//   handed to the replication thread; flush_all becomes a version
//   threshold; a delete leaves a tombstone (replication/client_writes.h,
//   which only this file's replicated implementation uses).
// Replicated writes from peers do not come through here: a peer's stream is
// applied by replication::IncomingStream and never replicated again.
//
// The store's read-modify-writes (touch, concat, add_delta) keep their own
// retry loop in the store; a processor reports each one that succeeded
// with changed(), once the request is complete (ma with T touches after
// the arithmetic and reports once), and the replicated path hands over the
// key's item as it then is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/non_copyable.h"
#include "store/store.h"

namespace ringcache::replication {
class Replicator;
}  // namespace ringcache::replication

namespace ringcache::server {

// A value that streams in: WritePath::reserve(), then the caller appends the
// bytes to `reservation` as they arrive, then WritePath::finish().
struct StreamedWrite {
  store::Reservation reservation;
  // With replication: the key and version handed over once stored (the
  // parser's view of the key ends before the value does).
  std::string key;
  uint64_t version = 0;
};

class WritePath : NonCopyable {
 public:
  // A replicated write path when `replicator` is given (the store must be
  // versioned), a local one otherwise. Called once per worker, in its thread.
  static std::unique_ptr<WritePath> make(store::StoreThread& store, replication::Replicator* replicator,
                                         uint32_t worker);
  virtual ~WritePath() = default;

  // A whole value. With replication, a plain set superseded meanwhile by a
  // newer version of the key counts as stored (every peer concludes the same).
  virtual store::PutStatus put(std::string_view key, std::string_view value, const store::ItemMeta& meta = {},
                               const store::PutOptions& options = {}) = 0;
  // Starts a streamed value in `write` (which must be empty).
  virtual void reserve(StreamedWrite& write, std::string_view key, uint64_t value_size,
                       const store::ItemMeta& meta = {}, const store::PutOptions& options = {}) = 0;
  // Commits a complete reservation (a dead one keeps its status), hands it
  // over, and leaves `write` empty.
  virtual store::PutStatus finish(StreamedWrite& write) = 0;
  // Whether a live item was there.
  virtual bool del(std::string_view key) = 0;
  // at_s: unix seconds, 0 = now.
  virtual void flush_all(uint32_t at_s) = 0;
  // A read-modify-write of the key succeeded (see above).
  virtual void changed(std::string_view key) = 0;

  store::PutStatus touch(std::string_view key, uint32_t expires_at) { return store_.touch(key, expires_at); }
  store::PutStatus concat(std::string_view key, std::string_view data, bool prepend) {
    return store_.concat(key, data, prepend);
  }
  store::ArithStatus add_delta(std::string_view key, uint64_t delta, bool decrement, uint64_t* new_value) {
    return store_.add_delta(key, delta, decrement, new_value);
  }
  // What an incr/decr that may create its key starts from on a miss.
  struct ArithInitial {
    uint64_t value = 0;
    uint32_t expires_at = 0;
  };
  // add_delta; on a miss with `initial` given, the key is created (an add,
  // replicated like any put) holding initial->value, which is the answer. If
  // another writer created it meanwhile, the delta applies to theirs.
  store::ArithStatus add_delta_or_create(std::string_view key, uint64_t delta, bool decrement,
                                         const ArithInitial* initial, uint64_t* new_value);

 protected:
  explicit WritePath(store::StoreThread& store) : store_(store) {}
  // Commits `write` if its reservation is whole and alive; drops the reservation.
  static store::PutStatus commit(StreamedWrite& write);

  store::StoreThread& store_;
};

}  // namespace ringcache::server
