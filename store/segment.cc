// Segments: where their memory comes from, how they open, seal into the
// FIFO and leave it, and how their blocks go back to the pool.
//
// A shared segment is opened by one thread (its StoreThread's open segment
// of a TTL class), sealed at the FIFO tail when full, unlinked from the
// FIFO by eviction or compaction, and recycled once no reader can reach it
// and its last pin is gone. A large segment is filling while its one item
// arrives, is sealed when the item is committed, or is discarded
// unpublished. store/segment.h draws the layout and the states. A large
// item's blocks are cut here (large_piece_bytes) and read here
// (large_span); Reservation::append chains them as the bytes arrive.
#include "store/store_impl.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <mutex>
#include <new>

namespace ringcache::store {

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
  const uint64_t first_payload = block_bytes - segment_header_bytes;
  if (piece == 0) return std::min<uint64_t>(block_bytes, segment_header_bytes + s->large_bytes);
  const uint64_t start = first_payload + (piece - 1) * uint64_t{block_bytes - chain_header_bytes};
  assert(start < s->large_bytes);
  return std::min<uint64_t>(block_bytes, chain_header_bytes + (s->large_bytes - start));
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
  assert(id <= ids_max);
  assert(segments_by_id[id].load(std::memory_order_relaxed) == nullptr);  // an id in use
  auto* s = new (block) Segment();
  s->id = id;
  s->kind = kind;
  s->ttl_class = ttl_class;
  s->seq = next_seq.fetch_add(1, std::memory_order_relaxed);
  s->write_offset = segment_header_bytes;
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
  // Sealed once: from open (shared) or filling (large), never from sealed
  // or evicting, and never already linked.
  [[maybe_unused]] const SegmentState before = s->state.load(std::memory_order_relaxed);
  assert(before == SegmentState::open || before == SegmentState::filling);
  assert(s->fifo_next == nullptr);
  assert(fifo_tail != s);
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

bool StoreImpl::seal_open_segments(ThreadState* st) {
  assert(st != nullptr);
  bool sealed_any = false;
  for (auto& open : st->open) {
    if (open != nullptr) {
      seal(open);
      open = nullptr;
      sealed_any = true;
    }
  }
  assert(std::none_of(std::begin(st->open), std::end(st->open), [](const Segment* s) { return s != nullptr; }));
  return sealed_any;
}

void StoreThread::seal_open_segments() { impl_.seal_open_segments(state_); }

void StoreImpl::unlink_segment(Segment* v) {
  // Only FIFO members leave it; the merge segment is never one.
  assert(v->state.load(std::memory_order_relaxed) == SegmentState::sealed);
  assert(v != merge_open);
  if (compact_cursor == v) compact_cursor = v->fifo_next;
  (v->fifo_prev ? v->fifo_prev->fifo_next : fifo_head) = v->fifo_next;
  (v->fifo_next ? v->fifo_next->fifo_prev : fifo_tail) = v->fifo_prev;
  const uint8_t c = v->ttl_class;
  if (c != 0) {
    (v->class_prev ? v->class_prev->class_next : class_head[c]) = v->class_next;
    (v->class_next ? v->class_next->class_prev : class_tail[c]) = v->class_prev;
  }
  v->state.store(SegmentState::evicting, std::memory_order_seq_cst);
}

void StoreImpl::unpin(Segment* s) {
  const uint64_t before = s->refs.fetch_sub(1, std::memory_order_acq_rel);
  assert((before & ~segment_evicted_bit) != 0 && "unpin without a pin");
  if (before - 1 == segment_evicted_bit) recycle(s);
}

void StoreImpl::recycle(Segment* s) {
  // Nobody holds it any more, and it is not a thread's open segment.
  assert((s->refs.load(std::memory_order_relaxed) & ~segment_evicted_bit) == 0);
  assert(s->state.load(std::memory_order_relaxed) != SegmentState::open);
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

std::string_view StoreImpl::large_span(const Segment* s, uint64_t pos, const char** cursor_block,
                                       uint64_t* cursor_base) {
  assert(s->kind == SegmentKind::large);
  assert(pos < s->large_bytes);
  const uint64_t first_payload = s->block_bytes - segment_header_bytes;
  if (pos < first_payload) {
    return {s->block() + segment_header_bytes + pos,
            std::min<uint64_t>(first_payload, s->large_bytes) - pos};
  }
  const uint64_t payload = s->block_bytes - chain_header_bytes;
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
  return {block + chain_header_bytes + (pos - base), end - pos};
}

}  // namespace ringcache::store
