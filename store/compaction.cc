// Compaction: reclaiming the dead bytes of a segment without dropping its
// live items. Before the oldest segment is dropped, the sparsest shared
// segment among the oldest few and a window of a sweep over the rest of the
// FIFO is looked at; if it is dead enough, its live items are copied into
// the merge segment (a segment being filled, not yet in the FIFO), slot by
// slot under each bucket lock, and its block is freed. Expired and flushed
// items are dropped, not moved.
//
// Why: overwrites and deletes leave dead bytes behind, and plain FIFO
// eviction then drops the live items beside them even when all live data
// would fit. The windows and the threshold below are measured in
// docs/store.md ("Compaction"). Eviction (eviction.cc) decides when a step
// compacts; this file decides which segment and moves the items.
#include "store/store_impl.h"

#include <cassert>
#include <cstring>
#include <mutex>
#include <utility>

namespace ringcache::store {

namespace {
// Compaction: among the compact_head_segments oldest segments and
// compact_sweep_segments more of a sweep over the rest of the FIFO, the
// sparsest one is compacted (its live items moved to the merge segment, its
// block freed) instead of evicting the oldest, when at most
// compact_live_percent_max of its payload is live. Moving a segment that is
// mostly live frees little for the copying it costs.
constexpr size_t compact_head_segments = 64;
constexpr size_t compact_sweep_segments = 960;
constexpr int64_t compact_live_percent_max = 85;

}  // namespace

Segment* StoreImpl::sparsest_old_segment(int64_t* live_bytes) {
  assert(compact_cursor == nullptr || compact_cursor->state.load(std::memory_order_relaxed) == SegmentState::sealed);
  Segment* sparsest = nullptr;
  const auto consider = [&](Segment* s) {
    if (s->kind != SegmentKind::shared || s->refs.load(std::memory_order_relaxed) != 0) return;
    const int64_t live = s->live_item_bytes.load(std::memory_order_relaxed);
    if (sparsest == nullptr || live < *live_bytes) {
      sparsest = s;
      *live_bytes = live;
    }
  };
  Segment* s = fifo_head;
  for (size_t seen = 0; s != nullptr && seen < compact_head_segments; s = s->fifo_next, ++seen) consider(s);
  Segment* const after_head = s;
  if (after_head == nullptr) return sparsest;
  // The rest of the FIFO is swept a window at a time, from where the last
  // scan stopped: over many evictions every segment is looked at, whatever
  // the FIFO's length, for a bounded cost each time.
  Segment* const start = compact_cursor != nullptr ? compact_cursor : after_head;
  s = start;
  bool wrapped = false;
  for (size_t seen = 0; seen < compact_sweep_segments; ++seen) {
    consider(s);
    s = s->fifo_next;
    if (s == nullptr) {
      if (wrapped) break;
      wrapped = true;
      s = after_head;
    }
    if (s == start) break;
  }
  compact_cursor = s;
  assert(sparsest == nullptr || sparsest->kind == SegmentKind::shared);
  // Live bytes never go below zero: every removal follows the add it undoes.
  assert(sparsest == nullptr || *live_bytes >= 0);
  return sparsest;
}

void StoreImpl::plan_compaction_locked(Victim& victim, bool may_use_spare) {
  assert(!victim.expired);
  assert(!victim.compaction);
  // A compaction owns the merge segment while it runs; a concurrent
  // eviction meanwhile evicts.
  if (merge_busy) return;
  // Before dropping the oldest segment, reclaim dead bytes (overwrites,
  // deletes): compact the sparsest segment in sight.
  int64_t sparsest_live = 0;
  Segment* const sparsest = sparsest_old_segment(&sparsest_live);
  const int64_t payload = block_bytes - segment_header_bytes;
  if (sparsest == nullptr || sparsest_live * 100 > payload * compact_live_percent_max) return;
  // The merge segment takes it if it is of the same TTL class and not older
  // than a flush; when it fills up (or does not suit), a new one starts in
  // the spare block, which only the first step may do.
  const bool suits = merge_open != nullptr && merge_open->ttl_class == sparsest->ttl_class &&
                     !flushed(merge_open);
  const bool fits = suits && sparsest_live <= static_cast<int64_t>(block_bytes - merge_open->write_offset);
  if (!fits && !(may_use_spare && merge_block != nullptr)) return;
  assert(sparsest != merge_open);
  victim.segment = sparsest;
  victim.compaction = true;
  merge_busy = true;
  if (!suits) {
    victim.sealed_target = merge_open;
    merge_open = nullptr;
  }
  if (!fits) {
    victim.spare = merge_block;
    merge_block = nullptr;
  }
}

bool StoreImpl::compact_victim(Victim& victim, Removed& removed) {
  assert(victim.compaction);
  assert(victim.target == nullptr);
  if (victim.sealed_target != nullptr) seal(victim.sealed_target);
  {
    std::lock_guard<std::mutex> lock(fifo_mutex);
    std::swap(victim.target, merge_open);
  }
  const bool used_spare = compact_into(victim.segment, victim.target, victim.spare, removed);
  assert(victim.target == nullptr || victim.target->state.load(std::memory_order_relaxed) == SegmentState::open);
  if (victim.spare != nullptr) {
    // Not needed after all. A concurrent eviction may have refilled the
    // spare meanwhile (retire), and then this block goes to the pool.
    {
      std::lock_guard<std::mutex> lock(fifo_mutex);
      if (merge_block == nullptr) std::swap(merge_block, victim.spare);
    }
    if (victim.spare != nullptr) pool->give(victim.spare);
  }
  return used_spare;
}

void StoreImpl::end_compaction(Segment* target) {
  std::lock_guard<std::mutex> lock(fifo_mutex);
  assert(merge_open == nullptr);
  merge_open = target;
  merge_busy = false;
}

// The header `f` gets in `target` and the bytes it needs there; false when
// there is no target or the item does not fit in what is left of it. An
// empty target takes its bases from its first item.
bool StoreImpl::fits_merge_target(const ItemFields& f, Segment* target, MergeSlot& place) {
  if (target == nullptr) return false;
  assert(target->kind == SegmentKind::shared);
  assert(!(target->write_offset > block_bytes));
  if (f.expires_at != 0 && target->expiry_base.load(std::memory_order_relaxed) == 0) {
    target->expiry_base.store(f.expires_at, std::memory_order_relaxed);
  }
  if (config.versioned && target->version_base.load(std::memory_order_relaxed) == 0) {
    target->version_base.store(f.version, std::memory_order_relaxed);
  }
  place.bases = target->bases();
  place.code = expiry_code_for(f, place.bases.expiry);
  place.header = item_header_bytes(f, place.code, config.versioned, place.bases.version);
  place.need = place.header + f.key_size + f.value_size;
  return target->write_offset + place.need <= block_bytes;
}

// Writes the item (its key and value at `key`) at the end of `target`,
// where fits_merge_target found room; returns its offset there.
uint32_t StoreImpl::append_merged(Segment* target, const ItemFields& f, const MergeSlot& place, const char* key) {
  assert(target->write_offset + place.need <= block_bytes);
  assert(!(place.need < place.header));
  char* out = target->block() + target->write_offset;
  encode_item_header(out, f, place.code, place.bases, config.versioned);
  std::memcpy(out + place.header, key, f.key_size + f.value_size);
  const uint32_t offset = target->write_offset;
  target->write_offset += static_cast<uint32_t>(place.need);
  if (f.expires_at > target->expires_at_max.load(std::memory_order_relaxed)) {
    target->expires_at_max.store(f.expires_at, std::memory_order_relaxed);
  }
  target->live_item_bytes.fetch_add(static_cast<int64_t>(place.need), std::memory_order_relaxed);
  return offset;
}

bool StoreImpl::compact_into(Segment* victim, Segment*& target, char*& spare, Removed& removed) {
  assert(victim->kind == SegmentKind::shared);
  assert(victim->state.load(std::memory_order_relaxed) == SegmentState::evicting);
  bool used_spare = false;
  const auto start_target = [&] {
    if (target != nullptr) seal(target);
    target = nullptr;
    if (spare == nullptr) return;
    target = init_segment(spare, SegmentKind::shared, victim->ttl_class);
    // Live segments never outnumber twice the blocks, and ids_max > 2 * blocks_max.
    assert(target != nullptr);
    spare = nullptr;
    used_spare = true;
  };
  if (target == nullptr) start_target();
  uint64_t moved = 0;
  int64_t header_growth = 0;
  const uint32_t now = now_s();
  SegmentItems items(*index, victim, config.versioned);
  for (SegmentItems::Item item; items.next(item);) {
    const DecodedHeader& h = item.header;
    const uint64_t hash = item.hash;
    const char* key = victim->block() + item.offset + h.header_bytes;
    HashIndex::Locked locked(*index, hash);
    std::atomic<uint64_t>* slot = locked.find_exact(make_slot(hash_tag(hash), victim->id, item.offset));
    if (slot == nullptr) continue;  // overwritten or deleted: dead bytes
    const ItemFields& f = h.fields;
    // Expired or flushed items are not worth moving; one that finds no room
    // (no spare block for a new merge segment) is evicted.
    bool keep = !expired(f, now) && !flushed(victim, h);
    MergeSlot place;
    if (keep && !fits_merge_target(f, target, place)) {
      start_target();
      keep = fits_merge_target(f, target, place);
    }
    if (!keep) {
      slot->store(0, std::memory_order_release);
      removed.add(h);
      continue;
    }
    assert(target != victim);
    const uint32_t new_off = append_merged(target, f, place, key);
    slot->store(make_slot(hash_tag(hash), target->id, new_off), std::memory_order_release);
    header_growth += static_cast<int64_t>(place.header) - static_cast<int64_t>(h.header_bytes);
    ++moved;
  }
  shared.item_bytes.fetch_add(header_growth, std::memory_order_relaxed);
  shared.merged_items.fetch_add(moved, std::memory_order_relaxed);
  return used_spare;
}

}  // namespace ringcache::store
