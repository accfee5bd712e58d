#include "store/block_pool.h"

#include <cassert>
#include <cstdint>
#include <new>

#include "store/allocator.h"

namespace ringcache::store {

// Records of allocated blocks, kept outside the blocks so that freeing at
// destruction does not depend on what the blocks hold.
struct BlockPool::Chunk {
  static constexpr uint32_t chunk_blocks_max = 510;
  Chunk* next = nullptr;
  uint32_t count = 0;
  char* blocks[chunk_blocks_max];
};

BlockPool::BlockPool(uint32_t block_bytes, uint64_t blocks_max)
    : block_bytes_(block_bytes), blocks_max_(blocks_max) {
  assert(block_bytes_ >= 1024);
  assert((block_bytes_ & (block_bytes_ - 1)) == 0);
}

BlockPool::~BlockPool() {
  for (Chunk* c = all_; c != nullptr;) {
    for (uint32_t i = 0; i < c->count; ++i) allocator_free(c->blocks[i]);
    Chunk* next = c->next;
    allocator_free(c);
    c = next;
  }
}

char* BlockPool::take() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_ != nullptr) {
      FreeBlock* b = free_;
      free_ = b->next;
      assert(free_count_.load(std::memory_order_relaxed) > 0);
      free_count_.fetch_sub(1, std::memory_order_relaxed);
      return reinterpret_cast<char*>(b);
    }
    if (!fits_locked(block_bytes_)) return nullptr;
    // Count it now so two threads cannot both pass the budget check.
    allocated_.fetch_add(1, std::memory_order_relaxed);
  }
  auto* block = static_cast<char*>(allocator_alloc(block_bytes_, 64));
  std::lock_guard<std::mutex> lock(mutex_);
  if (block != nullptr && (all_ == nullptr || all_->count == Chunk::chunk_blocks_max)) {
    auto* c = static_cast<Chunk*>(allocator_alloc(sizeof(Chunk), alignof(Chunk)));
    if (c == nullptr) {
      allocator_free(block);
      block = nullptr;
    } else {
      new (c) Chunk();
      c->next = all_;
      all_ = c;
    }
  }
  if (block == nullptr) {
    allocated_.fetch_sub(1, std::memory_order_relaxed);
    alloc_failures_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  all_->blocks[all_->count++] = block;
  assert(all_->count <= Chunk::chunk_blocks_max);
  assert(reinterpret_cast<uintptr_t>(block) % 64 == 0);
  return block;
}

bool BlockPool::fits_locked(uint64_t bytes) const {
  return allocated_.load(std::memory_order_relaxed) * block_bytes_ +
             exact_bytes_.load(std::memory_order_relaxed) + bytes <=
         blocks_max_ * block_bytes_;
}

void BlockPool::forget_locked(char* block) {
  assert(allocated_.load(std::memory_order_relaxed) > 0);
  for (Chunk* c = all_; c != nullptr; c = c->next) {
    for (uint32_t i = 0; i < c->count; ++i) {
      if (c->blocks[i] == block) {
        c->blocks[i] = c->blocks[--c->count];
        allocated_.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
    }
  }
  assert(false && "block not from this pool");
}

char* BlockPool::take_exact(uint64_t bytes) {
  assert(bytes > 0);
  assert(bytes < block_bytes_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Pooled blocks count against the budget: give idle ones back to the
    // allocator until the piece fits.
    while (!fits_locked(bytes) && free_ != nullptr) {
      FreeBlock* b = free_;
      free_ = b->next;
      free_count_.fetch_sub(1, std::memory_order_relaxed);
      forget_locked(reinterpret_cast<char*>(b));
      allocator_free(b);
    }
    if (!fits_locked(bytes)) return nullptr;
    exact_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  auto* piece = static_cast<char*>(allocator_alloc(bytes, 64));
  if (piece == nullptr) {
    exact_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    alloc_failures_.fetch_add(1, std::memory_order_relaxed);
  }
  return piece;
}

void BlockPool::give_exact(char* piece, uint64_t bytes) {
  allocator_free(piece);
  [[maybe_unused]] const uint64_t before = exact_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  assert(before >= bytes);  // never below zero
}

void BlockPool::give(char* block) {
  assert(block != nullptr);
  auto* b = reinterpret_cast<FreeBlock*>(block);
  std::lock_guard<std::mutex> lock(mutex_);
  b->next = free_;
  free_ = b;
  free_count_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace ringcache::store
