// Segment lifecycle: creation, sealing into the FIFO, eviction, recycling.
#include "store/store_impl.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <ctime>
#include <new>

#include "store/allocator.h"
#include "store/bytes.h"

namespace ringcache::store {

namespace {

uint32_t realtime_s() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

// Primary buckets assumed when the config leaves it open: one bucket (7
// slots) per 7 items of ~256 bytes each, i.e. the index is ~3.5% of the
// budget; denser stores chain overflow buckets.
constexpr uint64_t kAssumedItemBytes = 256;
constexpr uint64_t kPrimaryBucketsMin = 64;

uint32_t effective_block_bytes(const StoreConfig& c) {
  uint64_t b = std::clamp<uint64_t>(c.segment_size_bytes, 1024, kSegmentBytesMax);
  b = std::bit_floor(b);
  // Keep at least 8 segments in the budget so eviction has something to
  // choose from.
  while (b > 1024 && b * 8 > c.memory_limit_bytes) b /= 2;
  return static_cast<uint32_t>(b);
}

}  // namespace

StoreImpl::StoreImpl(const StoreConfig& c)
    : config(c), block_bytes(effective_block_bytes(c)), epoch(c.threads_max) {
  allocator_prefer_huge_pages();
  shared_item_max = (block_bytes - kSegmentHeaderBytes) / 2;
  uint64_t buckets = config.index_buckets;
  if (buckets == 0) {
    buckets = std::max(kPrimaryBucketsMin,
                       config.memory_limit_bytes / (kAssumedItemBytes * Bucket::kSlots));
  }
  primary_bytes = buckets * sizeof(Bucket);
  primary = static_cast<Bucket*>(allocator_alloc(primary_bytes, 64));
  if (primary == nullptr) throw std::bad_alloc();
  std::memset(static_cast<void*>(primary), 0, primary_bytes);
  index = std::make_unique<HashIndex>(primary, buckets);

  const uint64_t blocks_budget =
      config.memory_limit_bytes > primary_bytes ? config.memory_limit_bytes - primary_bytes : 0;
  const uint64_t blocks_max = std::max<uint64_t>(2, blocks_budget / block_bytes);
  pool = std::make_unique<BlockPool>(block_bytes, blocks_max);
  upload_bytes_max = config.upload_bytes_max != 0 ? config.upload_bytes_max
                                                  : config.memory_limit_bytes / 4 * 3;
  // The spare block compaction starts in, held from the start so that the
  // first eviction can already compact rather than drop live items.
  merge_block = pool->take();
  // A live segment holds a block, or a large item's piece of at least half
  // a block; evicted-but-pinned ones have given their id back already. So
  // ids never run out before memory does.
  ids_max = static_cast<uint32_t>(std::min<uint64_t>(kSegmentIdMax, 2 * blocks_max + 2));
  segments_by_id = std::make_unique<std::atomic<Segment*>[]>(ids_max + 1);
  free_ids.reserve(ids_max);
  threads.reserve(config.threads_max);
}

StoreImpl::~StoreImpl() {
  // Every Reservation ends before the store: each holds a StoreThread.
  assert(upload_bytes.load() == 0);
  // Whole blocks (segments, chains, overflow buckets) are freed by the pool;
  // the exact-size last pieces of large items are not the pool's.
  for (uint32_t id = 1; id <= ids_max; ++id) {
    Segment* s = segments_by_id[id].load(std::memory_order_acquire);
    if (s != nullptr && s->kind == SegmentKind::large) recycle(s);
  }
  pool.reset();
  allocator_free(primary);
}

bool StoreImpl::charge_upload(uint64_t bytes) {
  assert(bytes > 0);
  uint64_t held = upload_bytes.load(std::memory_order_relaxed);
  do {
    if (bytes > upload_bytes_max || held > upload_bytes_max - bytes) {
      upload_refusals.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!upload_bytes.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
  assert(held + bytes <= upload_bytes_max);
  return true;
}

void StoreImpl::release_upload(uint64_t bytes) {
  [[maybe_unused]] const uint64_t held = upload_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  assert(held >= bytes && "released more upload bytes than were charged");
}

uint32_t StoreImpl::now_s() const { return config.clock_s ? config.clock_s() : realtime_s(); }

void StoreImpl::unlink_item(Segment* s, uint32_t offset, uint64_t hash, const DecodedHeader& h,
                            Removed& removed) {
  HashIndex::Locked locked(*index, hash);
  std::atomic<uint64_t>* slot = locked.find_exact(make_slot(hash_tag(hash), s->id, offset));
  if (slot == nullptr) return;
  slot->store(0, std::memory_order_release);
  removed.add(h);
}

uint64_t StoreImpl::flush_seq_now(uint32_t now) {
  uint32_t at = flush_pending_at_s.load(std::memory_order_relaxed);
  if (at != 0 && now >= at &&
      flush_pending_at_s.compare_exchange_strong(at, 0, std::memory_order_acq_rel)) {
    flush_seq.store(next_seq.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  const uint32_t version_at = flush_version_pending_at_s.load(std::memory_order_relaxed);
  if (version_at != 0 && now >= version_at) {
    std::lock_guard<std::mutex> lock(flush_mutex);
    if (flush_version_pending_at_s.load(std::memory_order_relaxed) == version_at) {
      raise_flush_version(flush_version_pending);
      flush_version_pending_at_s.store(0, std::memory_order_relaxed);
    }
  }
  return flush_seq.load(std::memory_order_acquire);
}

void StoreImpl::raise_flush_version(uint64_t version) {
  uint64_t v = flush_version.load(std::memory_order_relaxed);
  while (v < version &&
         !flush_version.compare_exchange_weak(v, version, std::memory_order_release, std::memory_order_relaxed)) {
  }
}

namespace {
// Compaction: among the kCompactHeadWindow oldest segments and
// kCompactSweepWindow more of a sweep over the rest of the FIFO, the
// sparsest one is compacted (its live items moved to the merge segment, its
// block freed) instead of evicting the oldest, when at most
// kCompactLivePercentMax of its payload is live. Moving a segment that is
// mostly live frees little for the copying it costs.
constexpr size_t kCompactHeadWindow = 64;
constexpr size_t kCompactSweepWindow = 960;
constexpr int64_t kCompactLivePercentMax = 85;
constexpr int kCompactStepsMax = 8;

}  // namespace

Segment* StoreImpl::sparsest_old_segment(int64_t* live_bytes) {
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
  for (size_t seen = 0; s != nullptr && seen < kCompactHeadWindow; s = s->fifo_next, ++seen) consider(s);
  Segment* const after_head = s;
  if (after_head == nullptr) return sparsest;
  // The rest of the FIFO is swept a window at a time, from where the last
  // scan stopped: over many evictions every segment is looked at, whatever
  // the FIFO's length, for a bounded cost each time.
  Segment* const start = compact_cursor != nullptr ? compact_cursor : after_head;
  s = start;
  bool wrapped = false;
  for (size_t seen = 0; seen < kCompactSweepWindow; ++seen) {
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
  return sparsest;
}

bool StoreImpl::evict_one(ThreadState* st, bool expired_only) {
  // A compaction that fills the merge segment and starts the next one in
  // the spare block frees no block (the victim's becomes the new spare),
  // though it packs live items densely. After kCompactStepsMax of those the
  // last step may only compact into the room left, or evict: every call
  // frees a block, even where items are too large to pack well.
  for (int step = 0; step < kCompactStepsMax; ++step) {
    const EvictStep done = evict_step(st, expired_only, true);
    if (done != EvictStep::compacted_into_spare) return done != EvictStep::nothing;
  }
  evict_step(st, expired_only, false);
  return true;
}

StoreImpl::EvictStep StoreImpl::evict_step(ThreadState* st, bool expired_only, bool may_use_spare) {
  assert(st == nullptr || !epoch.inside(st->epoch));
  Victim victim = choose_victim(st, expired_only, may_use_spare);
  if (victim.segment == nullptr) return EvictStep::nothing;
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
  for (uint32_t c = 1; c < kTtlClasses; ++c) {
    Segment* head = class_head[c];
    if (head != nullptr && head->max_expires_at.load(std::memory_order_relaxed) <= now) return head;
  }
  // Flushed segments are as good as expired.
  if (fifo_head != nullptr && fifo_head->seq < flush_seq_now(now)) return fifo_head;
  return nullptr;
}

void StoreImpl::plan_compaction_locked(Victim& victim, bool may_use_spare) {
  // A compaction owns the merge segment while it runs; a concurrent
  // eviction meanwhile evicts.
  if (merge_busy) return;
  // Before dropping the oldest segment, reclaim dead bytes (overwrites,
  // deletes): compact the sparsest segment in sight.
  int64_t sparsest_live = 0;
  Segment* const sparsest = sparsest_old_segment(&sparsest_live);
  const int64_t payload = block_bytes - kSegmentHeaderBytes;
  if (sparsest == nullptr || sparsest_live * 100 > payload * kCompactLivePercentMax) return;
  // The merge segment takes it if it is of the same TTL class and not older
  // than a flush; when it fills up (or does not suit), a new one starts in
  // the spare block, which only the first step may do.
  const bool suits = merge_open != nullptr && merge_open->ttl_class == sparsest->ttl_class &&
                     !flushed(merge_open);
  const bool fits = suits && sparsest_live <= static_cast<int64_t>(block_bytes - merge_open->write_offset);
  if (!fits && !(may_use_spare && merge_block != nullptr)) return;
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
  if (victim.sealed_target != nullptr) seal(victim.sealed_target);
  {
    std::lock_guard<std::mutex> lock(fifo_mutex);
    std::swap(victim.target, merge_open);
  }
  const bool used_spare = compact_into(victim.segment, victim.target, victim.spare, removed);
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

void StoreImpl::unlink_victim_items(Segment* victim, Removed& removed) {
  if (victim->kind == SegmentKind::shared) {
    SegmentItems items(*index, victim, config.versioned);
    for (SegmentItems::Item item; items.next(item);) {
      unlink_item(victim, item.offset, item.hash, item.header, removed);
    }
  } else {
    unlink_item(victim, kSegmentHeaderBytes, victim->large_hash, header_at(victim, kSegmentHeaderBytes),
                removed);
  }
}

void StoreImpl::count_removed(const Removed& removed, const Victim& victim) {
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
  segments_by_id[victim->id].store(nullptr, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(fifo_mutex);
    free_ids.push_back(victim->id);
  }
  const uint64_t prev = victim->refs.fetch_or(kSegmentEvictedBit, std::memory_order_acq_rel);
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
  assert(s->kind == SegmentKind::large && (st == nullptr || !epoch.inside(st->epoch)));
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

bool StoreImpl::compact_into(Segment* victim, Segment*& target, char*& spare, Removed& removed) {
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
    uint32_t header = 0;
    uint64_t need = 0;
    ExpiryCode code{};
    SegmentBases bases{};
    // Expired or flushed items are not worth moving; one that finds no room
    // (no spare block for a new merge segment) is evicted.
    bool keep = !expired(f, now) && !flushed(victim, h);
    for (int tries = 0; keep && tries < 2; ++tries) {
      if (target == nullptr) {
        keep = false;
        break;
      }
      if (f.expires_at != 0 && target->expiry_base.load(std::memory_order_relaxed) == 0) {
        target->expiry_base.store(f.expires_at, std::memory_order_relaxed);
      }
      if (config.versioned && target->version_base.load(std::memory_order_relaxed) == 0) {
        target->version_base.store(f.version, std::memory_order_relaxed);
      }
      bases = target->bases();
      code = expiry_code_for(f, bases.expiry);
      header = item_header_bytes(f, code, config.versioned, bases.version);
      need = header + f.key_size + f.value_size;
      if (target->write_offset + need <= block_bytes) break;
      if (tries == 0) {
        start_target();
      } else {
        keep = false;
      }
    }
    if (!keep) {
      slot->store(0, std::memory_order_release);
      removed.add(h);
      continue;
    }
    char* out = target->block() + target->write_offset;
    encode_item_header(out, f, code, bases, config.versioned);
    std::memcpy(out + header, key, f.key_size + f.value_size);
    const uint32_t new_off = target->write_offset;
    target->write_offset += static_cast<uint32_t>(need);
    if (f.expires_at > target->max_expires_at.load(std::memory_order_relaxed)) {
      target->max_expires_at.store(f.expires_at, std::memory_order_relaxed);
    }
    target->live_item_bytes.fetch_add(static_cast<int64_t>(need), std::memory_order_relaxed);
    slot->store(make_slot(hash_tag(hash), target->id, new_off), std::memory_order_release);
    header_growth += static_cast<int64_t>(header) - static_cast<int64_t>(h.header_bytes);
    ++moved;
  }
  shared.item_bytes.fetch_add(header_growth, std::memory_order_relaxed);
  shared.merged_items.fetch_add(moved, std::memory_order_relaxed);
  return used_spare;
}

}  // namespace ringcache::store
