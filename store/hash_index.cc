// Keys in the index: the key hash, whether a slot holds a given key, the
// overflow buckets the index grows by, and SegmentItems, the walk over a
// segment's items that eviction and compaction use to update the index.
//
// store/hash_index.h is the index itself (buckets, lock-free lookup, locked
// updates) and knows nothing of items: whether the item a slot points to
// has a given key is decided here (slot_matches). XXH3 is compiled into
// this file (XXH_INLINE_ALL) so that hashing inlines into SegmentItems,
// which hashes every item of a segment.
#include "store/store_impl.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "store/bytes.h"

namespace ringcache::store {

uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

bool StoreImpl::slot_matches(uint64_t slot, std::string_view key, uint64_t hash) const {
  const Segment* s = segment_by_id(slot_segment(slot));
  if (s == nullptr) return false;
  const uint32_t offset = slot_offset(slot);
  assert(offset >= segment_header_bytes);
  assert(s->kind == SegmentKind::shared || offset == segment_header_bytes);
  if (s->kind == SegmentKind::shared) {
    const DecodedHeader h = header_at(s, offset);
    return h.fields.key_size == key.size() &&
           equal_bytes(s->block() + offset + h.header_bytes, key.data(), key.size());
  }
  if (s->large_hash != hash) return false;
  const DecodedHeader h = header_at(s, offset);
  if (h.fields.key_size != key.size()) return false;
  const char* cursor = nullptr;
  uint64_t base = 0;
  uint64_t pos = h.header_bytes;
  for (uint64_t done = 0; done < key.size();) {
    std::string_view span = large_span(s, pos + done, &cursor, &base);
    const uint64_t n = std::min<uint64_t>(span.size(), key.size() - done);
    if (std::memcmp(span.data(), key.data() + done, n) != 0) return false;
    done += n;
  }
  return true;
}

Bucket* StoreImpl::alloc_overflow_bucket(ThreadState* st) {
  // It may evict, which waits for readers.
  assert(st == nullptr || !epoch.inside(st->epoch));
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(fifo_mutex);
      if (index_block != nullptr && index_block_used_bytes + sizeof(Bucket) <= block_bytes) {
        auto* b = new (index_block + index_block_used_bytes) Bucket();
        for (auto& slot : b->slots) slot.store(0, std::memory_order_relaxed);
        b->next_and_lock.store(0, std::memory_order_relaxed);
        index_block_used_bytes += sizeof(Bucket);
        assert(index_block_used_bytes <= block_bytes);
        assert(reinterpret_cast<uintptr_t>(b) % alignof(Bucket) == 0);
        return b;
      }
    }
    char* block = alloc_block(st);
    if (block == nullptr) return nullptr;
    std::lock_guard<std::mutex> lock(fifo_mutex);
    if (index_block != nullptr && index_block_used_bytes + sizeof(Bucket) <= block_bytes) {
      pool->give(block);  // another thread refilled meanwhile
    } else {
      index_block = block;
      index_block_used_bytes = 0;
      index_blocks.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

SegmentItems::SegmentItems(const HashIndex& index, const Segment* s, bool versioned)
    : index_(index), segment_(s), versioned_(versioned), offset_(segment_header_bytes) {
  assert(s->kind == SegmentKind::shared);
  while (count_ < items_ahead && offset_ < segment_->write_offset) decode_one();
}

void SegmentItems::decode_one() {
  assert(count_ < items_ahead);
  Item& item = ring_[(head_ + count_) % items_ahead];
  item.offset = offset_;
  item.header = decode_item_header(segment_->block() + offset_, segment_->bases(), versioned_);
  item.hash = hash_key({segment_->block() + offset_ + item.header.header_bytes, item.header.fields.key_size});
  __builtin_prefetch(&index_.primary(item.hash));
  offset_ += static_cast<uint32_t>(item.header.total_bytes());
  assert(offset_ <= segment_->write_offset);  // no item runs past the last one written
  ++count_;
}

bool SegmentItems::next(Item& out) {
  if (count_ == 0) return false;
  out = ring_[head_];
  head_ = (head_ + 1) % items_ahead;
  --count_;
  if (offset_ < segment_->write_offset) decode_one();
  return true;
}

}  // namespace ringcache::store
