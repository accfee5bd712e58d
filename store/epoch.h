// Epoch-based protection of segment memory for lock-free readers.
//
// A reader announces the global epoch in its own cache line before it loads
// an index slot, and clears it when done. An evictor that has unlinked a
// segment from the index calls synchronize(): it bumps the epoch and waits
// until no reader still announces an older one. After that no reader can
// hold a pointer into the segment except through a pin (Segment::refs).
//
// Read sections are short (one lookup, one copy of at most a small value), so
// synchronize() spins briefly rather than sleeping. A thread must never call
// synchronize() from inside its own read section.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace ringcache::store {

class EpochDomain {
 public:
  struct alignas(64) Participant {
    std::atomic<uint64_t> active{0};  // 0 = quiescent
    std::atomic<bool> in_use{false};
  };

  explicit EpochDomain(uint32_t participants_max);

  // nullptr when participants_max handles are registered already.
  Participant* join();
  void leave(Participant* p);

  void enter(Participant* p) {
    // A seq_cst exchange (a full barrier, like store + mfence, and visible to
    // TSan, which does not model fences) pairs with the seq_cst operations in
    // synchronize(): either the evictor sees this announcement or this
    // reader sees the unlinked slot.
    p->active.exchange(global_.load(std::memory_order_acquire), std::memory_order_seq_cst);
  }
  void exit(Participant* p) { p->active.store(0, std::memory_order_release); }
  bool inside(const Participant* p) const {
    return p->active.load(std::memory_order_relaxed) != 0;
  }

  void synchronize();

 private:
  std::atomic<uint64_t> global_{1};
  uint32_t participants_max_;
  std::unique_ptr<Participant[]> participants_;
  std::mutex join_mutex_;
};

}  // namespace ringcache::store
