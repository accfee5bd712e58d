#include "server/process/write_path.h"

#include <cassert>
#include <string>

#include "server/replication/client_writes.h"
#include "server/replication/replicator.h"

namespace ringcache::server {
namespace {

class LocalWritePath final : public WritePath {
 public:
  explicit LocalWritePath(store::StoreThread& store) : WritePath(store) {}

  store::PutStatus put(std::string_view key, std::string_view value, const store::ItemMeta& meta,
                       const store::PutOptions& options) override {
    return store_.put(key, value, meta, options);
  }
  void reserve(StreamedWrite& write, std::string_view key, uint64_t value_size, const store::ItemMeta& meta,
               const store::PutOptions& options) override {
    assert(!write.reservation.ok() && write.key.empty());
    write.reservation = store_.reserve(key, value_size, meta, options);
  }
  store::PutStatus finish(StreamedWrite& write) override { return commit(write); }
  bool del(std::string_view key) override { return store_.del(key) == store::DelStatus::deleted; }
  void flush_all(uint32_t at_s) override { store_.flush_all(at_s); }
  void changed(std::string_view) override {}
};

class ReplicatedWritePath final : public WritePath {
 public:
  ReplicatedWritePath(store::StoreThread& store, replication::WorkerReplication& replication)
      : WritePath(store), replication_(replication) {
    assert(store.store().config().versioned);
  }

  store::PutStatus put(std::string_view key, std::string_view value, const store::ItemMeta& meta,
                       const store::PutOptions& options) override {
    return replication::put_replicated(store_, replication_, key, value, meta, options);
  }
  void reserve(StreamedWrite& write, std::string_view key, uint64_t value_size, const store::ItemMeta& meta,
               const store::PutOptions& options) override {
    assert(!write.reservation.ok() && write.key.empty());
    write.reservation =
        replication::reserve_replicated(store_, replication_, key, value_size, meta, options, write.version);
    write.key.assign(key);
  }
  store::PutStatus finish(StreamedWrite& write) override {
    const store::PutStatus status =
        replication::finish_reserved(replication_, write.key, write.version, commit(write));
    std::string().swap(write.key);
    write.version = 0;
    return status;
  }
  bool del(std::string_view key) override { return replication::delete_replicated(store_, replication_, key); }
  void flush_all(uint32_t at_s) override { (void)replication::flush_replicated(store_, replication_, at_s); }
  void changed(std::string_view key) override { replication::replicate_current(store_, replication_, key); }

 private:
  replication::WorkerReplication& replication_;
};

}  // namespace

std::unique_ptr<WritePath> WritePath::make(store::StoreThread& store, replication::Replicator* replicator,
                                           uint32_t worker) {
  if (replicator == nullptr) return std::make_unique<LocalWritePath>(store);
  return std::make_unique<ReplicatedWritePath>(store, replicator->worker(worker));
}

store::PutStatus WritePath::commit(StreamedWrite& write) {
  store::PutStatus status = write.reservation.status();
  if (write.reservation.ok()) {
    assert(write.reservation.remaining() == 0);
    status = write.reservation.commit();
  }
  write.reservation = store::Reservation();
  return status;
}

store::ArithStatus WritePath::add_delta_or_create(std::string_view key, uint64_t delta, bool decrement,
                                                  const ArithInitial* initial, uint64_t* new_value) {
  const store::ArithStatus status = add_delta(key, delta, decrement, new_value);
  if (status != store::ArithStatus::not_found || initial == nullptr) return status;
  const std::string digits = std::to_string(initial->value);
  const store::ItemMeta meta{0, initial->expires_at, 0};
  switch (put(key, digits, meta, store::PutOptions{store::PutMode::add, 0})) {
    case store::PutStatus::stored:
      *new_value = initial->value;
      return store::ArithStatus::ok;
    case store::PutStatus::not_stored:
      return add_delta(key, delta, decrement, new_value);
    case store::PutStatus::exists:
    case store::PutStatus::not_found:
      assert(false && "an add compares no cas");
      return store::ArithStatus::no_memory;
    case store::PutStatus::no_memory:
    case store::PutStatus::evicted:
    case store::PutStatus::aborted:
    case store::PutStatus::older:
      return store::ArithStatus::no_memory;
  }
  assert(false && "unknown PutStatus");
  return store::ArithStatus::no_memory;
}

}  // namespace ringcache::server
