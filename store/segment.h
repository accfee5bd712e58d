// Segments: the unit of allocation, FIFO order and eviction.
//
// Every segment lives in one block of StoreConfig::segment_size_bytes taken
// from the BlockPool; its metadata sits at the start of the block:
//
//   shared segment   [Segment (192 B)][item][item][item]...      write_offset
//   large segment    [Segment (192 B)][one item's first bytes] -> chain_next
//                    chained block    [next (8 B)][more bytes] -> ...
//
// A shared segment is filled by one thread (its owner) while open, then
// sealed and appended to the FIFO; from then on its items are immutable. A
// large segment holds one item bigger than half a block, in as many chained
// blocks as it needs (claimed as the bytes arrive), and joins the FIFO when
// its item is committed. Eviction takes the FIFO head; when one of the
// oldest shared segments is mostly dead (overwritten or deleted items), its
// live items are moved to a merge segment instead and its block is freed.
//
// Lifetime: `refs` counts pins (readers sending a large value, writers
// filling a reservation) plus an `evicted` bit. Eviction unlinks the items,
// waits for read sections (EpochDomain::synchronize), sets the bit, and
// frees the blocks at once if there are no pins; otherwise the last unpin
// frees them. So a pin never stops eviction, it only delays the reuse of
// that one segment's memory.
#pragma once

#include <atomic>
#include <cstdint>

#include "store/item.h"

namespace ringcache::store {

struct StoreImpl;

enum class SegmentKind : uint8_t { shared = 1, large = 2 };
enum class SegmentState : uint8_t { open = 1, sealed = 2, evicting = 3, filling = 4 };

inline constexpr uint64_t segment_evicted_bit = 1ull << 63;
inline constexpr uint32_t ttl_class_count = 26;  // 0 = never expires; c >= 1: ttl in [2^(c-1), 2^c) s

class alignas(64) Segment {
 public:
  // Fixed at creation.
  uint32_t id = 0;            // index slot id (1 .. 2^24-1), 0 = none
  SegmentKind kind = SegmentKind::shared;
  uint8_t ttl_class = 0;
  uint64_t seq = 0;           // creation order, part of the CAS of unversioned items
  // Owner-written while open or filling; immutable once sealed/committed.
  uint32_t write_offset = 0;  // shared: first free byte (from the block start)
  std::atomic<uint32_t> expiry_base{0};   // base for delta16 expiry codes; 0 = unset, then fixed
  std::atomic<uint64_t> version_base{0};  // base for delta32 versions; 0 = unset, then fixed
  uint64_t large_hash = 0;    // large: hash of the key
  uint64_t large_bytes = 0;   // large: item bytes (header + key + value)
  char* chain_next = nullptr; // large: second block
  std::atomic<uint32_t> expires_at_max{0};  // latest expiry of any item
  std::atomic<SegmentState> state{SegmentState::open};
  std::atomic<uint64_t> refs{0};  // pins | segment_evicted_bit
  // FIFO links, guarded by the store's fifo mutex.
  Segment* fifo_prev = nullptr;
  Segment* fifo_next = nullptr;
  Segment* class_prev = nullptr;
  Segment* class_next = nullptr;
  uint32_t blocks = 1;        // blocks held (large segments chain several)
  uint32_t block_bytes = 0;
  StoreImpl* owner = nullptr;  // whose pool the blocks return to
  // Bytes of the items the index still points to (shared segments), on a
  // line of its own: overwrites and deletes update it, readers never read it.
  alignas(64) std::atomic<int64_t> live_item_bytes{0};

  SegmentBases bases() const {
    return {expiry_base.load(std::memory_order_relaxed), version_base.load(std::memory_order_relaxed)};
  }
  char* block() { return reinterpret_cast<char*>(this); }
  const char* block() const { return reinterpret_cast<const char*>(this); }
};

inline constexpr uint32_t segment_header_bytes = 192;
static_assert(sizeof(Segment) <= segment_header_bytes);
// A chained block of a large item starts with the pointer to the next block.
inline constexpr uint32_t chain_header_bytes = 8;

// Index slot: which segment and where, plus 16 bits of the key's hash.
//   bits 63..48 tag   bits 47..24 segment id   bits 23..0 offset in block
// A zero slot is empty (segment id 0 is never used).
inline constexpr uint32_t segment_id_bits = 24;
inline constexpr uint32_t segment_id_max = (1u << segment_id_bits) - 1;
inline constexpr uint32_t offset_bits = 24;
inline constexpr uint64_t segment_size_bytes_max = 1ull << offset_bits;

inline uint64_t make_slot(uint16_t tag, uint32_t segment_id, uint32_t offset) {
  return (uint64_t{tag} << 48) | (uint64_t{segment_id} << offset_bits) | offset;
}
inline uint16_t slot_tag(uint64_t slot) { return static_cast<uint16_t>(slot >> 48); }
inline uint32_t slot_segment(uint64_t slot) {
  return static_cast<uint32_t>((slot >> offset_bits) & segment_id_max);
}
inline uint32_t slot_offset(uint64_t slot) {
  return static_cast<uint32_t>(slot & ((1u << offset_bits) - 1));
}
inline uint16_t hash_tag(uint64_t hash) { return static_cast<uint16_t>(hash); }

}  // namespace ringcache::store
