// SingleWriterCounter: a statistics counter with exactly one writing thread
// (a worker, or the replication thread), read by any thread. An increment is a relaxed
// load and store of the writer's own cache line, so the hot path does no
// shared read-modify-write; a reader summing counters with relaxed loads may
// miss increments in flight at that instant, which is all a counter promises.
//
// Header-only and dependency-free: io/ (connection counters), process/
// (request counters) and replication/ use this one type.
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>

namespace ringcache::server {

class SingleWriterCounter {
 public:
  void add(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n = 1) {
    const uint64_t now = value_.load(std::memory_order_relaxed);
    assert(now >= n);
    value_.store(now - n, std::memory_order_relaxed);
  }
  // A gauge sampled by its writer (bytes queued, the latest lag).
  void set(uint64_t n) { value_.store(n, std::memory_order_relaxed); }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Counters of different writers are kept this far apart (alignas).
inline constexpr size_t cache_line_bytes = 64;

}  // namespace ringcache::server
