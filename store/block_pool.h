// A pool of equal-sized blocks: segments, chained blocks of large items and
// overflow index buckets all come from here.
//
// Blocks are obtained from the allocator until `blocks_max` exist (the
// memory budget), then only recycled. An evicted block goes back to the free
// list rather than to the allocator, so any thread can reuse it at once:
// with mimalloc a block freed by another thread than its owner is only
// reusable after that owner collects it, which would leave a thread that
// evicted under RLIMIT_AS still unable to allocate.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "common/non_copyable.h"

namespace ringcache::store {

class BlockPool : NonCopyable {
 public:
  BlockPool(uint32_t block_bytes, uint64_t blocks_max);
  ~BlockPool();

  // A free block, or nullptr when the budget is reached or the allocator
  // failed (the caller evicts and retries).
  char* take();
  void give(char* block);
  // A piece smaller than a block (the tail of a large item), allocated at
  // its exact size under the same budget; pooled blocks are handed back to
  // the allocator when the budget has no room left for it.
  char* take_exact(uint64_t bytes);
  void give_exact(char* piece, uint64_t bytes);

  uint32_t block_bytes() const { return block_bytes_; }
  uint64_t blocks_max() const { return blocks_max_; }
  uint64_t blocks_allocated() const { return allocated_.load(std::memory_order_relaxed); }
  uint64_t blocks_free() const { return free_count_.load(std::memory_order_relaxed); }
  uint64_t alloc_failures() const { return alloc_failures_.load(std::memory_order_relaxed); }
  uint64_t exact_bytes() const { return exact_bytes_.load(std::memory_order_relaxed); }
  uint64_t bytes_held() const { return blocks_allocated() * block_bytes_ + exact_bytes(); }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  const uint32_t block_bytes_;
  const uint64_t blocks_max_;
  std::mutex mutex_;
  FreeBlock* free_ = nullptr;
  std::atomic<uint64_t> free_count_{0};
  std::atomic<uint64_t> allocated_{0};
  std::atomic<uint64_t> alloc_failures_{0};
  std::atomic<uint64_t> exact_bytes_{0};
  // Budget check for one more allocation of `bytes` (mutex held).
  bool fits_locked(uint64_t bytes) const;
  void forget_locked(char* block);
  // Every block ever allocated, so the destructor can free them all.
  struct Chunk;
  Chunk* all_ = nullptr;
};

}  // namespace ringcache::store
