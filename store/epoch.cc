#include "store/epoch.h"

#include <cassert>

namespace ringcache::store {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

EpochDomain::EpochDomain(uint32_t participants_max)
    : participants_max_(participants_max),
      participants_(std::make_unique<Participant[]>(participants_max)) {}

EpochDomain::Participant* EpochDomain::join() {
  std::lock_guard<std::mutex> lock(join_mutex_);
  for (uint32_t i = 0; i < participants_max_; ++i) {
    if (!participants_[i].in_use.load(std::memory_order_relaxed)) {
      participants_[i].active.store(0, std::memory_order_relaxed);
      participants_[i].in_use.store(true, std::memory_order_release);
      assert(participants_[i].active.load(std::memory_order_relaxed) == 0);  // joins quiescent
      return &participants_[i];
    }
  }
  return nullptr;
}

void EpochDomain::leave(Participant* p) {
  assert(p->active.load() == 0);
  std::lock_guard<std::mutex> lock(join_mutex_);
  p->in_use.store(false, std::memory_order_release);
}

void EpochDomain::synchronize() {
  const uint64_t target = global_.fetch_add(1, std::memory_order_seq_cst) + 1;
  // 0 means quiescent, so the epoch must never come back to it.
  assert(target > 1);
  for (uint32_t i = 0; i < participants_max_; ++i) {
    Participant& p = participants_[i];
    for (;;) {
      uint64_t a = p.active.load(std::memory_order_seq_cst);
      if (a == 0 || a >= target) break;
      cpu_relax();
    }
  }
}

}  // namespace ringcache::store
