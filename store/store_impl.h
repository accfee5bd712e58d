// What the files of store/ share: the store's state (StoreImpl), each
// thread's state, and the walk over a segment's items. Not part of the API
// (that is store/store.h); nothing outside store/ includes it.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "store/block_pool.h"
#include "store/epoch.h"
#include "store/hash_index.h"
#include "store/item.h"
#include "store/segment.h"
#include "store/store.h"

namespace ringcache::store {

uint64_t hash_key(std::string_view key);

// A counter written by one thread only (relaxed load + store, no locked
// instruction on the hot path) and read by stats() from any thread.
struct OwnedCounter {
  std::atomic<int64_t> value{0};
  void add(int64_t d) { value.store(value.load(std::memory_order_relaxed) + d, std::memory_order_relaxed); }
  int64_t get() const { return value.load(std::memory_order_relaxed); }
};

struct alignas(64) ThreadState {
  EpochDomain::Participant* epoch = nullptr;
  Segment* open[ttl_class_count] = {};
  OwnedCounter keys, item_bytes, live_bytes, hits, misses;
};

// Counters for events that happen once per segment (or on threads without a
// ThreadState, such as the last unpin), so shared atomics cost nothing.
struct SharedCounters {
  std::atomic<int64_t> keys{0}, item_bytes{0}, live_bytes{0}, hits{0}, misses{0};
  std::atomic<uint64_t> evictions{0}, evicted_segments{0}, expirations{0};
  std::atomic<uint64_t> merged_segments{0}, merged_items{0};
  std::atomic<int64_t> segments{0};
};

// The items of a sealed shared segment with their key hashes, decoded
// items_ahead ahead with their index buckets prefetched: an eviction or a
// compaction updates the index for every item, and this way those random
// accesses overlap instead of waiting one after another.
class SegmentItems {
 public:
  SegmentItems(const HashIndex& index, const Segment* s, bool versioned);
  struct Item {
    uint32_t offset = 0;
    DecodedHeader header;
    uint64_t hash = 0;
  };
  // False after the last item.
  bool next(Item& out);

 private:
  static constexpr uint32_t items_ahead = 16;
  void decode_one();
  const HashIndex& index_;
  const Segment* segment_;
  bool versioned_;
  uint32_t offset_;  // next item to decode
  Item ring_[items_ahead];
  uint32_t head_ = 0;
  uint32_t count_ = 0;
};

// The state behind one Store, and what the files of store/ share. Member
// functions are grouped by the file that defines them. The data members
// below them keep their order: it decides which of them share a cache line.
struct StoreImpl {
  // store_impl.cc: building the store, and the clock.
  explicit StoreImpl(const StoreConfig& config);
  ~StoreImpl();
  uint32_t now_s() const;

  // segment.cc: segment lifetime.
  // `bytes` below block_bytes asks for an exact-size piece (a large item
  // smaller than a block); 0 = a whole block.
  Segment* new_segment(ThreadState* st, SegmentKind kind, uint8_t ttl_class, uint64_t bytes = 0);
  // Makes `block` a segment with a fresh id (nullptr when none is left).
  Segment* init_segment(char* block, SegmentKind kind, uint8_t ttl_class);
  void seal(Segment* s);
  // Seals a thread's open segments into the FIFO; false when it had none.
  bool seal_open_segments(ThreadState* st);
  // Takes a segment out of the FIFO (and its TTL class list).
  void unlink_segment(Segment* v);
  char* alloc_block(ThreadState* st);
  // A whole block, or an exact-size piece when bytes < block_bytes.
  char* alloc_piece(ThreadState* st, uint64_t bytes);
  void give_piece(char* piece, uint64_t bytes);
  // Size of piece `piece` (0 = the first) of a large segment: whole blocks
  // but the last, which is cut to what the item needs.
  uint64_t large_piece_bytes(const Segment* s, uint32_t piece) const;
  // Contiguous bytes of a large item's byte stream from `pos`.
  static std::string_view large_span(const Segment* s, uint64_t pos, const char** cursor_block,
                                     uint64_t* cursor_base);
  // Only a segment no eviction has retired yet can be pinned: callers hold
  // a read section or the segment is their own.
  void pin(Segment* s) {
    assert((s->refs.load(std::memory_order_relaxed) & segment_evicted_bit) == 0);
    s->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void unpin(Segment* s);
  void recycle(Segment* s);
  void discard_unpublished(Segment* s);  // a large segment never published

  // hash_index.cc: keys in the index.
  bool slot_matches(uint64_t slot, std::string_view key, uint64_t hash) const;
  Bucket* alloc_overflow_bucket(ThreadState* st);

  // Items, where a slot points (inline: every lookup uses them).
  Segment* segment_by_id(uint32_t id) const {
    return segments_by_id[id].load(std::memory_order_acquire);
  }
  DecodedHeader header_at(const Segment* s, uint32_t offset) const {
    assert(offset >= segment_header_bytes);
    const DecodedHeader h = decode_item_header(s->block() + offset, s->bases(), config.versioned);
    // An item never runs past its segment: a shared one ends in its block,
    // a large one is its whole segment.
    assert(s->kind != SegmentKind::shared || offset + h.total_bytes() <= s->block_bytes);
    assert(s->kind != SegmentKind::large || h.total_bytes() == s->large_bytes);
    return h;
  }
  static uint64_t cas_of(const Segment* s, uint32_t offset, const DecodedHeader& h, bool versioned) {
    return versioned ? h.fields.version : (s->seq << offset_bits) | offset;
  }
  // store.cc: what a reader sees of an item.
  void fill_view(Segment* s, uint32_t offset, const DecodedHeader& h, ItemView& out) const;

  // eviction.cc: freeing blocks.
  // Frees one block: reclaims an expired segment first (with expired_only,
  // only those), else compacts the sparsest of the oldest segments if it is
  // mostly dead, else evicts the oldest. False when there was nothing to
  // evict.
  bool evict_one(ThreadState* st, bool expired_only);
  enum class EvictStep : uint8_t { nothing, done, compacted_into_spare };
  // One eviction or compaction; a compaction may start a merge segment in
  // the spare block only when may_use_spare.
  EvictStep evict_step(ThreadState* st, bool expired_only, bool may_use_spare);
  // The segment one step takes (unlinked from the FIFO) and, when the step
  // compacts it rather than evicting it, what the compaction works with.
  struct Victim {
    Segment* segment = nullptr;
    bool expired = false;              // expired or flushed: its items count as expirations
    bool compaction = false;           // its live items move to the merge segment
    Segment* sealed_target = nullptr;  // a merge segment that did not suit, to seal
    char* spare = nullptr;             // the spare block, taken to start a merge segment in
    Segment* target = nullptr;         // the merge segment, while the compaction fills it
  };
  // Takes the head of a TTL class whose items have all expired, or a
  // flushed FIFO head, or (unless expired_only) the segment to compact or
  // else the FIFO head; seals this thread's open segments when nothing else
  // is left. A null segment when there is nothing to take.
  Victim choose_victim(ThreadState* st, bool expired_only, bool may_use_spare);
  Segment* expired_victim_locked(uint32_t now);  // fifo_mutex held
  // What a step took out of the index, for the store's counters.
  struct Removed {
    int64_t items = 0;       // index entries removed
    int64_t keys = 0;        // of which not tombstones
    int64_t item_bytes = 0;
    int64_t live_bytes = 0;
    void add(const DecodedHeader& h) {
      items += 1;
      item_bytes += static_cast<int64_t>(h.total_bytes());
      if (!h.fields.tombstone) {
        keys += 1;
        live_bytes += static_cast<int64_t>(h.fields.key_size + h.fields.value_size);
      }
    }
  };
  // Removes every item of an evicted segment from the index.
  void unlink_victim_items(Segment* victim, Removed& removed);
  // Removes one published item's slot if it still points at (s, offset),
  // and adds what it accounted for to `removed`. `h` is the item's header,
  // decoded by the caller.
  void unlink_item(Segment* s, uint32_t offset, uint64_t hash, const DecodedHeader& h, Removed& removed);
  // The store's counters after one step.
  void count_removed(const Removed& removed, const Victim& victim);
  // Hands a victim's memory back once no reader can reach it.
  void retire(Segment* victim);
  // A large segment whose one item was just overwritten or deleted is all
  // dead: free it now rather than when it reaches the FIFO head. The caller
  // pinned it (inside its read section) and must not be in one now.
  void reclaim_dead_large(ThreadState* st, Segment* s);

  // compaction.cc: moving live items out of a mostly dead segment.
  // Makes `victim` a compaction of the sparsest old segment when that is
  // dead enough and the merge segment can take it (fifo_mutex held).
  void plan_compaction_locked(Victim& victim, bool may_use_spare);
  // The sparsest unpinned shared segment among the oldest few and a window
  // of the rest of the FIFO; its live bytes in *live_bytes.
  Segment* sparsest_old_segment(int64_t* live_bytes);
  // Moves the victim's live items; true when the spare block was used.
  bool compact_victim(Victim& victim, Removed& removed);
  // Moves the live items of `victim` (a sealed shared segment, unlinked from
  // the FIFO) into the merge segment `target`, which is sealed into the FIFO
  // when full and replaced by one built in `spare` (if any); expired and
  // flushed items, and any that find no room, are dropped into `removed`.
  // True when the spare was used.
  bool compact_into(Segment* victim, Segment*& target, char*& spare, Removed& removed);
  // Where compact_into puts one item in the merge segment.
  struct MergeSlot {
    SegmentBases bases{};
    ExpiryCode code{};
    uint32_t header = 0;
    uint64_t need = 0;
  };
  bool fits_merge_target(const ItemFields& f, Segment* target, MergeSlot& place);
  uint32_t append_merged(Segment* target, const ItemFields& f, const MergeSlot& place, const char* key);
  // Hands the merge segment back for the next compaction.
  void end_compaction(Segment* target);

  // flush.cc: flush_all.
  // Items in segments created before flush_seq are invisible. A delayed
  // flush takes effect (takes its sequence number) at flush_pending_at_s.
  // Also puts a pending versioned flush whose time has come into effect.
  uint64_t flush_seq_now(uint32_t now);
  void raise_flush_version(uint64_t version);
  bool flushed(const Segment* s) const {
    return s->seq < flush_seq.load(std::memory_order_relaxed);
  }
  // An item a flush_all hid: by its segment's age, or in a versioned store
  // by its version (flush_versions_before).
  bool flushed(const Segment* s, const DecodedHeader& h) const {
    return flushed(s) || h.fields.version < flush_version.load(std::memory_order_relaxed);
  }

  // reservation.cc: the bytes values still arriving hold.
  // Adds bytes to upload_bytes unless that would pass upload_bytes_max;
  // false (and a refusal counted) then.
  bool charge_upload(uint64_t bytes);
  void release_upload(uint64_t bytes);

  // read_modify_write.cc: the version a read-modify-write gives the item
  // it writes.
  uint64_t rewrite_version(uint64_t old_version) const {
    return config.versioned && version_source != nullptr ? version_source(version_context)
                                                         : old_version;
  }

  // flush_all (flush.cc).
  std::atomic<uint64_t> flush_seq{0};
  std::atomic<uint32_t> flush_pending_at_s{0};
  // Versioned flushes: the threshold in effect, and one pending until its
  // time (guarded by flush_mutex; the atomic time lets puts check cheaply).
  std::atomic<uint64_t> flush_version{0};
  std::atomic<uint32_t> flush_version_pending_at_s{0};
  uint64_t flush_version_pending = 0;
  std::mutex flush_mutex;

  StoreConfig config;
  uint32_t block_bytes = 0;
  uint64_t shared_item_bytes_max = 0;
  uint64_t primary_bytes = 0;
  Bucket* primary = nullptr;
  std::unique_ptr<HashIndex> index;
  std::unique_ptr<BlockPool> pool;
  EpochDomain epoch;
  uint32_t ids_max = 0;
  std::unique_ptr<std::atomic<Segment*>[]> segments_by_id;

  std::mutex fifo_mutex;  // FIFO lists, ids, overflow carving
  Segment* fifo_head = nullptr;
  Segment* fifo_tail = nullptr;
  Segment* class_head[ttl_class_count] = {};
  Segment* class_tail[ttl_class_count] = {};
  std::vector<uint32_t> free_ids;  // capacity reserved up front: never reallocates
  uint32_t next_id = 1;
  // Compaction: the segment it fills (open, not yet in the FIFO), and a
  // spare block for the next one (a compacted victim's block refills it).
  Segment* merge_open = nullptr;
  char* merge_block = nullptr;
  bool merge_busy = false;  // a compaction is filling merge_open
  // Where the next compaction scan continues its sweep of the FIFO (a FIFO
  // member, or nullptr to start after the head window).
  Segment* compact_cursor = nullptr;
  // Overflow buckets are carved out of index_block (hash_index.cc).
  char* index_block = nullptr;
  uint32_t index_block_used_bytes = 0;
  std::atomic<uint64_t> index_blocks{0};
  std::atomic<uint64_t> next_seq{1};

  SharedCounters shared;
  // Values still arriving (Reservation): what they hold, its bound, and how
  // many were refused for it. Touched once per block claimed, so one
  // shared atomic costs nothing measurable.
  uint64_t upload_bytes_max = 0;
  std::atomic<uint64_t> upload_bytes{0};
  std::atomic<uint64_t> upload_refusals{0};
  Store::VersionSource version_source = nullptr;
  void* version_context = nullptr;
  std::mutex threads_mutex;
  std::vector<ThreadState*> threads;  // capacity threads_max
};

}  // namespace ringcache::store
