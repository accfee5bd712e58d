// InputBudget: the process-wide cap on request bytes held before they reach
// the store (partial keys and small values inside the parsers, input stashed
// while a connection is paused).
//
// Per connection these are bounded by the frame parser and the stash limit,
// but a thousand connections that each stop half-way through a large key
// would together hold far more than -m allows for: the daemon keeps resident
// memory within 1.25 x SIZE + 48 MiB whatever clients send. So each
// connection holds its first connection_input_free_bytes for free (every
// ordinary split frame fits, and the shared counter is never touched), and
// anything beyond must be charged here. A connection whose charge does not
// fit is closed with a log line; the others keep going.
//
// The limit, SIZE/4 + input_budget_base_bytes, admits one key of the default
// --max-item (SIZE/2) only while little else is buffered; a client that
// needs several such keys in flight at once is asking for more memory than
// the budget has.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ringcache::server {

inline constexpr size_t connection_input_free_bytes = 4 * 1024;
inline constexpr uint64_t input_budget_base_bytes = 16ull << 20;

uint64_t input_budget_bytes(uint64_t memory_bytes);

class InputBudget {
 public:
  explicit InputBudget(uint64_t limit_bytes) : limit_bytes_(limit_bytes) {}

  // False (and nothing charged) when bytes do not fit.
  bool try_charge(uint64_t bytes);
  void release(uint64_t bytes);

  uint64_t used_bytes() const { return used_bytes_.load(std::memory_order_relaxed); }
  uint64_t limit_bytes() const { return limit_bytes_; }

 private:
  const uint64_t limit_bytes_;
  std::atomic<uint64_t> used_bytes_{0};
};

}  // namespace ringcache::server
