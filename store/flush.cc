// flush_all: making every item stored before a moment invisible, now or
// at a time to come, without touching the items.
//
// A flush takes a segment sequence number: items in segments created
// before it are invisible (StoreImpl::flushed), and eviction reclaims a
// flushed segment at the FIFO head as if it had expired. A versioned store
// (replication) can also flush by version (flush_versions_before), so that
// nodes applying the same flush agree on what it removed, whatever order
// the writes around it arrive in (docs/replication.md, section 4). A
// delayed flush takes effect at the first put or expire() at or after its
// time (flush_seq_now).
#include "store/store_impl.h"

#include <cassert>
#include <mutex>

namespace ringcache::store {

void StoreThread::flush_all(uint32_t at_s) {
  const uint32_t now = impl_.now_s();
  if (at_s <= now) {
    impl_.flush_pending_at_s.store(0, std::memory_order_relaxed);
    impl_.flush_seq.store(impl_.next_seq.fetch_add(1, std::memory_order_relaxed) + 1,
                          std::memory_order_release);
    // A flush never hides a segment created after it.
    assert(impl_.flush_seq.load(std::memory_order_acquire) <= impl_.next_seq.load(std::memory_order_relaxed));
  } else {
    assert(at_s > now);
    impl_.flush_pending_at_s.store(at_s, std::memory_order_release);
  }
}

void StoreThread::flush_versions_before(uint64_t version, uint32_t at_s) {
  assert(impl_.config.versioned);
  if (at_s <= impl_.now_s()) {
    impl_.raise_flush_version(version);
    assert(impl_.flush_version.load(std::memory_order_relaxed) >= version);  // it only grows
    return;
  }
  std::lock_guard<std::mutex> lock(impl_.flush_mutex);
  impl_.flush_version_pending = version;
  impl_.flush_version_pending_at_s.store(at_s, std::memory_order_relaxed);
}

uint64_t StoreThread::flush_version() const {
  return impl_.flush_version.load(std::memory_order_relaxed);
}

uint64_t StoreImpl::flush_seq_now(uint32_t now) {
  uint32_t at = flush_pending_at_s.load(std::memory_order_relaxed);
  if (at != 0 && now >= at &&
      flush_pending_at_s.compare_exchange_strong(at, 0, std::memory_order_acq_rel)) {
    flush_seq.store(next_seq.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  const uint32_t version_at = flush_version_pending_at_s.load(std::memory_order_relaxed);
  if (version_at != 0 && now >= version_at) {
    std::lock_guard<std::mutex> lock(flush_mutex);
    if (flush_version_pending_at_s.load(std::memory_order_relaxed) == version_at) {
      raise_flush_version(flush_version_pending);
      flush_version_pending_at_s.store(0, std::memory_order_relaxed);
    }
  }
  const uint64_t seq = flush_seq.load(std::memory_order_acquire);
  assert(seq <= next_seq.load(std::memory_order_relaxed));
  return seq;
}

void StoreImpl::raise_flush_version(uint64_t version) {
  uint64_t v = flush_version.load(std::memory_order_relaxed);
  while (v < version &&
         !flush_version.compare_exchange_weak(v, version, std::memory_order_release, std::memory_order_relaxed)) {
  }
}

}  // namespace ringcache::store
