// Segment lifecycle: creation, sealing into the FIFO, eviction, recycling.
#include "store/store_impl.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <ctime>
#include <new>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "store/allocator.h"
#include "store/bytes.h"

namespace ringcache::store {

uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

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
  // A live segment holds a block, or a large item's piece of at least half
  // a block; evicted-but-pinned ones have given their id back already. So
  // ids never run out before memory does.
  ids_max = static_cast<uint32_t>(std::min<uint64_t>(kSegmentIdMax, 2 * blocks_max + 2));
  segments_by_id = std::make_unique<std::atomic<Segment*>[]>(ids_max + 1);
  free_ids.reserve(ids_max);
  threads.reserve(config.threads_max);
}

StoreImpl::~StoreImpl() {
  // Whole blocks (segments, chains, overflow buckets) are freed by the pool;
  // the exact-size last pieces of large items are not the pool's.
  for (uint32_t id = 1; id <= ids_max; ++id) {
    Segment* s = segments_by_id[id].load(std::memory_order_acquire);
    if (s != nullptr && s->kind == SegmentKind::large) recycle(s);
  }
  pool.reset();
  allocator_free(primary);
}

uint32_t StoreImpl::now_s() const { return config.clock_s ? config.clock_s() : realtime_s(); }

char* StoreImpl::alloc_block(ThreadState* st) {
  assert(st == nullptr || !epoch.inside(st->epoch));
  for (;;) {
    if (char* b = pool->take()) return b;
    if (!evict_one(st, false)) return nullptr;
  }
}

char* StoreImpl::alloc_piece(ThreadState* st, uint64_t bytes) {
  if (bytes == 0 || bytes >= block_bytes) return alloc_block(st);
  assert(st == nullptr || !epoch.inside(st->epoch));
  for (;;) {
    if (char* p = pool->take_exact(bytes)) return p;
    if (!evict_one(st, false)) return nullptr;
  }
}

void StoreImpl::give_piece(char* piece, uint64_t bytes) {
  if (bytes >= block_bytes) {
    pool->give(piece);
  } else {
    pool->give_exact(piece, bytes);
  }
}

uint64_t StoreImpl::large_piece_bytes(const Segment* s, uint32_t piece) const {
  assert(s->kind == SegmentKind::large);
  const uint64_t first_payload = block_bytes - kSegmentHeaderBytes;
  if (piece == 0) return std::min<uint64_t>(block_bytes, kSegmentHeaderBytes + s->large_bytes);
  const uint64_t start = first_payload + (piece - 1) * uint64_t{block_bytes - kChainHeaderBytes};
  assert(start < s->large_bytes);
  return std::min<uint64_t>(block_bytes, kChainHeaderBytes + (s->large_bytes - start));
}

Segment* StoreImpl::new_segment(ThreadState* st, SegmentKind kind, uint8_t ttl_class,
                                uint64_t bytes) {
  char* block = alloc_piece(st, bytes);
  if (block == nullptr) return nullptr;
  Segment* s = init_segment(block, kind, ttl_class);
  if (s == nullptr) give_piece(block, bytes == 0 ? block_bytes : bytes);
  return s;
}

Segment* StoreImpl::init_segment(char* block, SegmentKind kind, uint8_t ttl_class) {
  uint32_t id = 0;
  {
    std::lock_guard<std::mutex> lock(fifo_mutex);
    if (!free_ids.empty()) {
      id = free_ids.back();
      free_ids.pop_back();
    } else if (next_id <= ids_max) {
      id = next_id++;
    }
  }
  if (id == 0) return nullptr;  // cannot happen while ids_max > 2 * blocks_max
  auto* s = new (block) Segment();
  s->id = id;
  s->kind = kind;
  s->ttl_class = ttl_class;
  s->seq = next_seq.fetch_add(1, std::memory_order_relaxed);
  s->write_offset = kSegmentHeaderBytes;
  s->block_bytes = block_bytes;
  s->owner = this;
  s->state.store(kind == SegmentKind::shared ? SegmentState::open : SegmentState::filling,
                 std::memory_order_relaxed);
  segments_by_id[id].store(s, std::memory_order_release);
  shared.segments.fetch_add(1, std::memory_order_relaxed);
  return s;
}

void StoreImpl::seal(Segment* s) {
  std::lock_guard<std::mutex> lock(fifo_mutex);
  s->state.store(SegmentState::sealed, std::memory_order_release);
  s->fifo_prev = fifo_tail;
  s->fifo_next = nullptr;
  (fifo_tail ? fifo_tail->fifo_next : fifo_head) = s;
  fifo_tail = s;
  const uint8_t c = s->ttl_class;
  if (c != 0) {
    s->class_prev = class_tail[c];
    s->class_next = nullptr;
    (class_tail[c] ? class_tail[c]->class_next : class_head[c]) = s;
    class_tail[c] = s;
  }
}

bool StoreImpl::slot_matches(uint64_t slot, std::string_view key, uint64_t hash) const {
  const Segment* s = segment_by_id(slot_segment(slot));
  if (s == nullptr) return false;
  const uint32_t offset = slot_offset(slot);
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

std::string_view StoreImpl::large_span(const Segment* s, uint64_t pos, const char** cursor_block,
                                       uint64_t* cursor_base) {
  const uint64_t first_payload = s->block_bytes - kSegmentHeaderBytes;
  if (pos < first_payload) {
    return {s->block() + kSegmentHeaderBytes + pos,
            std::min<uint64_t>(first_payload, s->large_bytes) - pos};
  }
  const uint64_t payload = s->block_bytes - kChainHeaderBytes;
  const char* block = *cursor_block;
  uint64_t base = *cursor_base;
  if (block == nullptr || base > pos) {
    block = s->chain_next;
    base = first_payload;
  }
  while (pos >= base + payload) {
    char* next = nullptr;
    std::memcpy(&next, block, sizeof(next));
    block = next;
    base += payload;
  }
  assert(block != nullptr);
  *cursor_block = block;
  *cursor_base = base;
  const uint64_t end = std::min(base + payload, s->large_bytes);
  return {block + kChainHeaderBytes + (pos - base), end - pos};
}

void StoreImpl::unlink_item(Segment* s, uint32_t offset, uint64_t hash, Removed& removed) {
  HashIndex::Locked locked(*index, hash);
  std::atomic<uint64_t>* slot = locked.find_exact(make_slot(hash_tag(hash), s->id, offset));
  if (slot == nullptr) return;
  slot->store(0, std::memory_order_release);
  const DecodedHeader h = header_at(s, offset);
  removed.items += 1;
  removed.item_bytes += static_cast<int64_t>(h.total_bytes());
  if (!h.fields.tombstone) {
    removed.keys += 1;
    removed.live_bytes += static_cast<int64_t>(h.fields.key_size + h.fields.value_size);
  }
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
// A merge takes, among the kMergeLookahead oldest segments, the sparsest
// ones whose live bytes fit in one segment together, up to
// kMergeSegmentsMax of them. Headers may grow a little when
// re-encoded against the new segment's bases; an item that no longer fits
// is evicted.
constexpr size_t kMergeSegmentsMax = 8;
constexpr size_t kMergeLookahead = 16;

void unlink_from_lists(Segment* v, Segment*& fifo_head, Segment*& fifo_tail,
                       Segment** class_head, Segment** class_tail) {
  (v->fifo_prev ? v->fifo_prev->fifo_next : fifo_head) = v->fifo_next;
  (v->fifo_next ? v->fifo_next->fifo_prev : fifo_tail) = v->fifo_prev;
  const uint8_t c = v->ttl_class;
  if (c != 0) {
    (v->class_prev ? v->class_prev->class_next : class_head[c]) = v->class_next;
    (v->class_next ? v->class_next->class_prev : class_tail[c]) = v->class_prev;
  }
  v->state.store(SegmentState::evicting, std::memory_order_seq_cst);
}
}  // namespace

bool StoreImpl::evict_one(ThreadState* st, bool expired_only) {
  assert(st == nullptr || !epoch.inside(st->epoch));
  Segment* group[kMergeSegmentsMax];
  size_t count = 0;
  char* merge_target = nullptr;
  bool expired = false;
  for (int attempt = 0; attempt < 2 && count == 0; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(fifo_mutex);
      const uint32_t now = now_s();
      Segment* victim = nullptr;
      for (uint32_t c = 1; c < kTtlClasses && victim == nullptr; ++c) {
        Segment* head = class_head[c];
        if (head != nullptr && head->max_expires_at.load(std::memory_order_relaxed) <= now) {
          victim = head;
          expired = true;
        }
      }
      // Flushed segments are as good as expired.
      if (victim == nullptr && fifo_head != nullptr && fifo_head->seq < flush_seq_now(now)) {
        victim = fifo_head;
        expired = true;
      }
      if (victim == nullptr && !expired_only) victim = fifo_head;
      if (victim != nullptr) {
        group[count++] = victim;
        // Before dropping the oldest segment, reclaim dead bytes (overwrites,
        // deletes) among the oldest few: merge the sparsest of them, those
        // whose live items fit one segment together, into a fresh segment.
        // Only when nothing there is worth merging does the oldest go.
        const int64_t payload = block_bytes - kSegmentHeaderBytes;
        if (!expired && merge_block != nullptr) {
          Segment* window[kMergeLookahead];
          int64_t live[kMergeLookahead];
          size_t n = 0;
          for (Segment* s = fifo_head; s != nullptr && n < kMergeLookahead; s = s->fifo_next) {
            if (s->kind == SegmentKind::shared && s->refs.load(std::memory_order_relaxed) == 0) {
              window[n] = s;
              live[n] = s->live_item_bytes.load(std::memory_order_relaxed);
              ++n;
            }
          }
          // Sparsest first (insertion sort: at most kMergeLookahead entries).
          for (size_t i = 1; i < n; ++i) {
            for (size_t j = i; j > 0 && live[j] < live[j - 1]; --j) {
              std::swap(live[j], live[j - 1]);
              std::swap(window[j], window[j - 1]);
            }
          }
          size_t chosen = 0;
          int64_t sum = 0;
          for (size_t i = 0; i < n && chosen < kMergeSegmentsMax; ++i) {
            if ((chosen == 0 || window[i]->ttl_class == group[0]->ttl_class) &&
                sum + live[i] <= payload) {
              group[chosen++] = window[i];
              sum += live[i];
            }
          }
          if (chosen >= 2) {
            count = chosen;
            merge_target = merge_block;
            merge_block = nullptr;
          } else {
            group[0] = victim;
            count = 1;
          }
        }
        for (size_t i = 0; i < count; ++i) {
          unlink_from_lists(group[i], fifo_head, fifo_tail, class_head, class_tail);
        }
      }
    }
    // Nothing sealed: this thread's own open segments become evictable.
    if (count == 0 && !expired_only && st != nullptr && attempt == 0) {
      bool sealed_any = false;
      for (auto& open : st->open) {
        if (open != nullptr) {
          seal(open);
          open = nullptr;
          sealed_any = true;
        }
      }
      if (!sealed_any) break;
    }
  }
  if (count == 0) return false;

  Removed removed;
  if (merge_target != nullptr) {
    merge_into(merge_target, group, count, removed);
  } else if (group[0]->kind == SegmentKind::shared) {
    Segment* victim = group[0];
    for (uint32_t off = kSegmentHeaderBytes; off < victim->write_offset;) {
      const DecodedHeader h = header_at(victim, off);
      const std::string_view key(victim->block() + off + h.header_bytes, h.fields.key_size);
      unlink_item(victim, off, hash_key(key), removed);
      off += static_cast<uint32_t>(h.total_bytes());
    }
  } else {
    unlink_item(group[0], kSegmentHeaderBytes, group[0]->large_hash, removed);
  }
  shared.keys.fetch_sub(removed.keys, std::memory_order_relaxed);
  shared.item_bytes.fetch_sub(removed.item_bytes, std::memory_order_relaxed);
  shared.live_bytes.fetch_sub(removed.live_bytes, std::memory_order_relaxed);
  (expired ? shared.expirations : shared.evictions)
      .fetch_add(static_cast<uint64_t>(removed.keys), std::memory_order_relaxed);
  if (merge_target != nullptr) {
    shared.merged_segments.fetch_add(count, std::memory_order_relaxed);
  } else if (!expired) {
    shared.evicted_segments.fetch_add(1, std::memory_order_relaxed);
  }

  // No reader may still hold a pointer found through the index.
  epoch.synchronize();
  for (size_t i = 0; i < count; ++i) retire(group[i]);
  return true;
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
      unlink_from_lists(s, fifo_head, fifo_tail, class_head, class_tail);
      mine = true;
    }
  }
  if (mine) {
    epoch.synchronize();  // readers that found the old slot are done or pinned
    retire(s);
  }
  unpin(s);
}

Segment* StoreImpl::merge_into(char* block, Segment* const* group, size_t count, Removed& removed) {
  Segment* d = init_segment(block, SegmentKind::shared, group[0]->ttl_class);
  // Live segments never outnumber twice the blocks, and ids_max > 2 * blocks_max.
  assert(d != nullptr);

  uint64_t moved = 0;
  int64_t header_growth = 0;
  const uint32_t now = now_s();
  for (size_t g = 0; g < count; ++g) {
    Segment* s = group[g];
    for (uint32_t off = kSegmentHeaderBytes; off < s->write_offset;) {
      const DecodedHeader h = header_at(s, off);
      const char* item = s->block() + off;
      const std::string_view key(item + h.header_bytes, h.fields.key_size);
      const uint64_t hash = hash_key(key);
      const uint32_t next_off = off + static_cast<uint32_t>(h.total_bytes());
      HashIndex::Locked locked(*index, hash);
      std::atomic<uint64_t>* slot = locked.find_exact(make_slot(hash_tag(hash), s->id, off));
      off = next_off;
      if (slot == nullptr) continue;  // overwritten or deleted: dead bytes
      const ItemFields& f = h.fields;
      const bool invisible = expired(f, now) || flushed(s, h);
      if (f.expires_at != 0 && d->expiry_base.load(std::memory_order_relaxed) == 0) {
        d->expiry_base.store(f.expires_at, std::memory_order_relaxed);
      }
      if (config.versioned && d->version_base.load(std::memory_order_relaxed) == 0) {
        d->version_base.store(f.version, std::memory_order_relaxed);
      }
      const SegmentBases bases = d->bases();
      const ExpiryCode code = expiry_code_for(f, bases.expiry);
      const uint32_t header = item_header_bytes(f, code, config.versioned, bases.version);
      const uint64_t need = header + f.key_size + f.value_size;
      if (invisible || d->write_offset + need > block_bytes) {
        // Expired or flushed, it is not worth moving; or it did not fit
        // after all (headers grew) and is evicted.
        slot->store(0, std::memory_order_release);
        removed.items += 1;
        removed.item_bytes += static_cast<int64_t>(h.total_bytes());
        if (!f.tombstone) {
          removed.keys += 1;
          removed.live_bytes += static_cast<int64_t>(f.key_size + f.value_size);
        }
        continue;
      }
      char* out = d->block() + d->write_offset;
      encode_item_header(out, f, code, bases, config.versioned);
      std::memcpy(out + header, key.data(), f.key_size + f.value_size);
      const uint32_t new_off = d->write_offset;
      d->write_offset += static_cast<uint32_t>(need);
      if (f.expires_at > d->max_expires_at.load(std::memory_order_relaxed)) {
        d->max_expires_at.store(f.expires_at, std::memory_order_relaxed);
      }
      d->live_item_bytes.fetch_add(static_cast<int64_t>(need), std::memory_order_relaxed);
      slot->store(make_slot(hash_tag(hash), d->id, new_off), std::memory_order_release);
      header_growth += static_cast<int64_t>(header) - static_cast<int64_t>(h.header_bytes);
      ++moved;
    }
  }
  shared.item_bytes.fetch_add(header_growth, std::memory_order_relaxed);
  shared.merged_items.fetch_add(moved, std::memory_order_relaxed);
  seal(d);
  return d;
}

void StoreImpl::unpin(Segment* s) {
  const uint64_t left = s->refs.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if (left == kSegmentEvictedBit) recycle(s);
}

void StoreImpl::recycle(Segment* s) {
  if (s->kind == SegmentKind::shared) {
    s->~Segment();
    pool->give(reinterpret_cast<char*>(s));
    shared.segments.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  char* next = s->chain_next;
  const uint32_t blocks = s->blocks;
  const uint64_t first_piece = large_piece_bytes(s, 0);
  // Piece sizes come from the item's size, so compute them all before the
  // segment header (block 0) goes away.
  for (uint32_t i = 1; i < blocks; ++i) {
    assert(next != nullptr);
    char* after = nullptr;
    std::memcpy(&after, next, sizeof(after));
    give_piece(next, large_piece_bytes(s, i));
    next = after;
  }
  s->~Segment();
  give_piece(reinterpret_cast<char*>(s), first_piece);
  shared.segments.fetch_sub(1, std::memory_order_relaxed);
}

void StoreImpl::discard_unpublished(Segment* s) {
  assert(s->state.load() == SegmentState::filling);
  segments_by_id[s->id].store(nullptr, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(fifo_mutex);
    free_ids.push_back(s->id);
  }
  recycle(s);
}

Bucket* StoreImpl::alloc_overflow_bucket(ThreadState* st) {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(fifo_mutex);
      if (index_block != nullptr && index_block_used + sizeof(Bucket) <= block_bytes) {
        auto* b = new (index_block + index_block_used) Bucket();
        for (auto& slot : b->slots) slot.store(0, std::memory_order_relaxed);
        b->next_and_lock.store(0, std::memory_order_relaxed);
        index_block_used += sizeof(Bucket);
        return b;
      }
    }
    char* block = alloc_block(st);
    if (block == nullptr) return nullptr;
    std::lock_guard<std::mutex> lock(fifo_mutex);
    if (index_block != nullptr && index_block_used + sizeof(Bucket) <= block_bytes) {
      pool->give(block);  // another thread refilled meanwhile
    } else {
      index_block = block;
      index_block_used = 0;
      index_blocks.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace ringcache::store
