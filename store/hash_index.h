// HashIndex: the one index shared by every thread.
//
//   Bucket (64 bytes, one cache line)
//   +--------+--------+-----+--------+-------------------------------+
//   | slot 0 | slot 1 | ... | slot 6 | next overflow bucket | lock bit |
//   +--------+--------+-----+--------+-------------------------------+
//
// A slot is 8 bytes (segment.h: tag, segment id, offset): 9.1 bytes of index
// per item at full load, nothing else per item outside the segment. The
// primary bucket array is sized once from the budget; a bucket that fills
// chains overflow buckets, taken from the block pool (so index growth goes
// through the same evict-and-retry path as items). Overflow buckets are never
// freed, so a reader can follow a chain without protection.
//
// Readers load slots with acquire and never lock. Writers lock the primary
// bucket (bit 0 of its next word) for the whole chain, so an upsert or a
// removal is atomic per key. Slot stores are release: the item bytes a slot
// points to are visible before the slot.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>

#include "common/non_copyable.h"
#include "store/segment.h"

namespace ringcache::store {

struct alignas(64) Bucket {
  static constexpr int slot_count = 7;
  std::atomic<uint64_t> slots[slot_count];
  std::atomic<uintptr_t> next_and_lock;  // Bucket* | lock bit (primary buckets only)
};
static_assert(sizeof(Bucket) == 64);

__extension__ typedef unsigned __int128 uint128_t;

class HashIndex {
 public:
  // `buckets` primary buckets, memory owned by the caller (zeroed).
  HashIndex(Bucket* buckets, uint64_t bucket_count) : buckets_(buckets), count_(bucket_count) {
    assert(buckets_ != nullptr);
    assert(count_ > 0);
  }

  uint64_t bucket_count() const { return count_; }

  // Lemire's multiply-shift range reduction: any bucket count, no modulo.
  Bucket& primary(uint64_t hash) const {
    return buckets_[static_cast<uint64_t>((static_cast<uint128_t>(hash) * count_) >> 64)];
  }
  static Bucket* next(const Bucket& b) {
    return reinterpret_cast<Bucket*>(b.next_and_lock.load(std::memory_order_acquire) &
                                     ~uintptr_t{1});
  }

  // Lock-free lookup: the first slot with the hash's tag for which
  // matches(slot) holds, or 0.
  template <class Matches>
  uint64_t find(uint64_t hash, Matches&& matches) const {
    const uint16_t tag = hash_tag(hash);
    for (const Bucket* b = &primary(hash); b != nullptr; b = next(*b)) {
      for (const auto& s : b->slots) {
        uint64_t v = s.load(std::memory_order_acquire);
        if (v != 0 && slot_tag(v) == tag && matches(v)) return v;
      }
    }
    return 0;
  }

  class Locked : NonCopyable {
   public:
    Locked(const HashIndex& index, uint64_t hash) : head_(index.primary(hash)), tag_(hash_tag(hash)) {
      lock(head_);
    }
    ~Locked() { head_.next_and_lock.fetch_and(~uintptr_t{1}, std::memory_order_release); }

    // The slot holding the key, or nullptr.
    template <class Matches>
    std::atomic<uint64_t>* find(Matches&& matches) {
      for (Bucket* b = &head_; b != nullptr; b = next(*b)) {
        for (auto& s : b->slots) {
          uint64_t v = s.load(std::memory_order_relaxed);
          if (v != 0 && slot_tag(v) == tag_ && matches(v)) return &s;
        }
      }
      return nullptr;
    }
    std::atomic<uint64_t>* find_exact(uint64_t slot_value) {
      for (Bucket* b = &head_; b != nullptr; b = next(*b)) {
        for (auto& s : b->slots) {
          if (s.load(std::memory_order_relaxed) == slot_value) return &s;
        }
      }
      return nullptr;
    }
    // An empty slot, or nullptr when the chain is full (add_overflow first).
    std::atomic<uint64_t>* find_empty() {
      for (Bucket* b = &head_; b != nullptr; b = next(*b)) {
        for (auto& s : b->slots) {
          if (s.load(std::memory_order_relaxed) == 0) return &s;
        }
      }
      return nullptr;
    }
    // Appends a zeroed bucket at the end of the chain.
    void add_overflow(Bucket* fresh) {
      Bucket* tail = &head_;
      while (Bucket* n = next(*tail)) tail = n;
      const uintptr_t keep_lock = tail == &head_ ? 1 : 0;
      tail->next_and_lock.store(reinterpret_cast<uintptr_t>(fresh) | keep_lock,
                                std::memory_order_release);
    }

   private:
    static void lock(Bucket& b) {
      for (;;) {
        uintptr_t v = b.next_and_lock.load(std::memory_order_relaxed);
        if ((v & 1) == 0 &&
            b.next_and_lock.compare_exchange_weak(v, v | 1, std::memory_order_acquire,
                                                  std::memory_order_relaxed)) {
          return;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
    }
    Bucket& head_;
    uint16_t tag_;
  };

 private:
  Bucket* buckets_;
  uint64_t count_;
};

}  // namespace ringcache::store
