#include "server/io/input_budget.h"

#include <cassert>

namespace ringcache::server {

uint64_t input_budget_bytes(uint64_t memory_bytes) { return memory_bytes / 4 + input_budget_base_bytes; }

bool InputBudget::try_charge(uint64_t bytes) {
  uint64_t used = used_bytes_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_bytes_ - used) return false;
  } while (!used_bytes_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

void InputBudget::release(uint64_t bytes) {
  const uint64_t before = used_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  assert(before >= bytes);
  (void)before;
}

}  // namespace ringcache::server
