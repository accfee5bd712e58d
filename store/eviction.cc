// Eviction: freeing a block when the store needs one, and reclaiming what
// has expired. evict_one runs steps; a step takes a victim (the head of a
// TTL class whose items have all expired, or a flushed FIFO head, first;
// else the sparsest old segment if compaction.cc takes it; else the FIFO
// head), removes its items from the index or moves them, counts what went,
// waits until no reader can still reach the segment
// (EpochDomain::synchronize) and retires it: its block goes back now, or at
// its last unpin.
//
// Why FIFO by segment rather than LRU: O(1) per item with no per-item
// links, and reads that write nothing shared (docs/store.md, "Eviction
// policy"). Expiry reclaims whole segments the same way
// (StoreThread::expire), and a large segment whose one item was
// overwritten or deleted is retired at once (reclaim_dead_large).
#include "store/store_impl.h"

#include <cassert>
#include <mutex>

namespace ringcache::store {

namespace {
// Compactions into the spare block that one evict_one may run before its
// last step must free a block (evict_one says why).
constexpr int compact_steps_max = 8;

}  // namespace

bool StoreImpl::evict_one(ThreadState* st, bool expired_only) {
  assert(st == nullptr || !epoch.inside(st->epoch));
  // A compaction that fills the merge segment and starts the next one in
  // the spare block frees no block (the victim's becomes the new spare),
  // though it packs live items densely. After compact_steps_max of those the
  // last step may only compact into the room left, or evict: every call
  // frees a block, even where items are too large to pack well.
  for (int step = 0; step < compact_steps_max; ++step) {
    const EvictStep done = evict_step(st, expired_only, true);
    if (done != EvictStep::compacted_into_spare) return done != EvictStep::nothing;
  }
  [[maybe_unused]] const EvictStep last = evict_step(st, expired_only, false);
  assert(last != EvictStep::compacted_into_spare);  // without the spare, a step frees a block
  return true;
}

StoreImpl::EvictStep StoreImpl::evict_step(ThreadState* st, bool expired_only, bool may_use_spare) {
  assert(st == nullptr || !epoch.inside(st->epoch));
  Victim victim = choose_victim(st, expired_only, may_use_spare);
  if (victim.segment == nullptr) return EvictStep::nothing;
  assert(victim.segment->state.load(std::memory_order_relaxed) == SegmentState::evicting);
  assert(!victim.compaction || !victim.expired);  // expired segments are dropped, not compacted
  Removed removed;
  bool used_spare = false;
  if (victim.compaction) {
    used_spare = compact_victim(victim, removed);
  } else {
    unlink_victim_items(victim.segment, removed);
  }
  count_removed(removed, victim);
  if (victim.compaction) end_compaction(victim.target);
  // No reader may still hold a pointer found through the index.
  epoch.synchronize();
  retire(victim.segment);
  return used_spare ? EvictStep::compacted_into_spare : EvictStep::done;
}

StoreImpl::Victim StoreImpl::choose_victim(ThreadState* st, bool expired_only, bool may_use_spare) {
  assert(st == nullptr || !epoch.inside(st->epoch));
  Victim victim;
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(fifo_mutex);
      victim.segment = expired_victim_locked(now_s());
      victim.expired = victim.segment != nullptr;
      if (victim.segment == nullptr && !expired_only) {
        victim.segment = fifo_head;
        if (victim.segment != nullptr) plan_compaction_locked(victim, may_use_spare);
      }
      if (victim.segment != nullptr) {
        assert(victim.segment != merge_open);
        unlink_segment(victim.segment);
        return victim;
      }
    }
    // Nothing sealed: this thread's own open segments become evictable.
    if (expired_only || st == nullptr || attempt != 0 || !seal_open_segments(st)) break;
  }
  return victim;
}

Segment* StoreImpl::expired_victim_locked(uint32_t now) {
  for (uint32_t c = 1; c < ttl_class_count; ++c) {
    Segment* head = class_head[c];
    if (head != nullptr && head->expires_at_max.load(std::memory_order_relaxed) <= now) return head;
  }
  // Flushed segments are as good as expired.
  if (fifo_head != nullptr && fifo_head->seq < flush_seq_now(now)) return fifo_head;
  return nullptr;
}

void StoreImpl::unlink_victim_items(Segment* victim, Removed& removed) {
  assert(victim->state.load(std::memory_order_relaxed) == SegmentState::evicting);
  if (victim->kind == SegmentKind::shared) {
    SegmentItems items(*index, victim, config.versioned);
    for (SegmentItems::Item item; items.next(item);) {
      unlink_item(victim, item.offset, item.hash, item.header, removed);
    }
  } else {
    unlink_item(victim, segment_header_bytes, victim->large_hash, header_at(victim, segment_header_bytes),
                removed);
    assert(removed.items <= 1);  // a large segment holds one item
  }
}

void StoreImpl::unlink_item(Segment* s, uint32_t offset, uint64_t hash, const DecodedHeader& h,
                            Removed& removed) {
  HashIndex::Locked locked(*index, hash);
  std::atomic<uint64_t>* slot = locked.find_exact(make_slot(hash_tag(hash), s->id, offset));
  if (slot == nullptr) return;
  slot->store(0, std::memory_order_release);
  removed.add(h);
}

void StoreImpl::count_removed(const Removed& removed, const Victim& victim) {
  assert(removed.keys >= 0);
  assert(removed.keys <= removed.items);  // tombstones are items, not keys
  assert(removed.live_bytes <= removed.item_bytes);
  shared.keys.fetch_sub(removed.keys, std::memory_order_relaxed);
  shared.item_bytes.fetch_sub(removed.item_bytes, std::memory_order_relaxed);
  shared.live_bytes.fetch_sub(removed.live_bytes, std::memory_order_relaxed);
  (victim.expired ? shared.expirations : shared.evictions)
      .fetch_add(static_cast<uint64_t>(removed.keys), std::memory_order_relaxed);
  if (victim.compaction) {
    shared.merged_segments.fetch_add(1, std::memory_order_relaxed);
  } else if (!victim.expired) {
    shared.evicted_segments.fetch_add(1, std::memory_order_relaxed);
  }
}

void StoreImpl::retire(Segment* victim) {
  assert(victim->state.load(std::memory_order_relaxed) == SegmentState::evicting);
  assert(segments_by_id[victim->id].load(std::memory_order_relaxed) == victim);
  segments_by_id[victim->id].store(nullptr, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(fifo_mutex);
    free_ids.push_back(victim->id);
  }
  const uint64_t prev = victim->refs.fetch_or(segment_evicted_bit, std::memory_order_acq_rel);
  assert((prev & segment_evicted_bit) == 0);  // retired once
  if (prev != 0) return;  // the last unpin recycles it
  if (victim->kind == SegmentKind::shared) {
    std::lock_guard<std::mutex> lock(fifo_mutex);
    if (merge_block == nullptr) {
      victim->~Segment();
      merge_block = reinterpret_cast<char*>(victim);
      shared.segments.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
  }
  recycle(victim);
}

void StoreImpl::reclaim_dead_large([[maybe_unused]] ThreadState* st, Segment* s) {
  assert(s->kind == SegmentKind::large);
  assert(st == nullptr || !epoch.inside(st->epoch));
  assert((s->refs.load(std::memory_order_relaxed) & ~segment_evicted_bit) != 0);  // the caller's pin
  bool mine = false;
  {
    std::lock_guard<std::mutex> lock(fifo_mutex);
    if (s->state.load(std::memory_order_relaxed) == SegmentState::sealed) {
      unlink_segment(s);
      mine = true;
    }
  }
  if (mine) {
    epoch.synchronize();  // readers that found the old slot are done or pinned
    retire(s);
  }
  unpin(s);
}

void StoreThread::expire() {
  // Bounded per call so a worker's event loop is never held for long.
  constexpr int expire_segments_max = 64;
  impl_.flush_seq_now(impl_.now_s());  // a delayed flush_all whose time has come
  for (int i = 0; i < expire_segments_max && impl_.evict_one(state_, true); ++i) {
  }
}

bool StoreThread::evict_oldest() { return impl_.evict_one(state_, false); }

}  // namespace ringcache::store
