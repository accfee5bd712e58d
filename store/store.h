// The store: one segmented hash store shared by every worker thread.
//
// Items are appended into large segments (StoreConfig::segment_size_bytes,
// 1 MiB by default) taken from a pool of equal-sized blocks. An item larger
// than half a segment gets a chain of blocks of its own, which enters the same
// FIFO as one segment. When the budget is reached, or when the allocator fails
// under RLIMIT_AS, the oldest sealed segment is evicted whole: its items leave
// the index and its block returns to the pool. Expired segments go first.
//
// Threads: every thread that touches the store owns one StoreThread. Reads
// never lock: they announce an epoch (store/epoch.h) and look up the shared
// HashIndex; writers take one bucket lock stripe for the index update only.
// A segment's memory is reused only after every reader that might see it has
// left its read section, or, for a PinnedItem / Reservation, has dropped its
// pin. Eviction never waits for a pin: it unlinks the segment at once and the
// last pin returns the memory.
//
// The store knows nothing of sockets or protocols: keys and values are byte
// strings (std::string_view may hold any bytes, NULs included).
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/non_copyable.h"

namespace ringcache::store {

class Segment;
class Store;
struct ItemFields;
class StoreThread;
struct StoreImpl;
struct ThreadState;

inline constexpr uint64_t mib_bytes = 1024ull * 1024;

struct StoreConfig {
  // Budget for segments and the index together (`-m`, docs/command_line.md).
  uint64_t memory_limit_bytes = 64 * mib_bytes;
  // Segment (block) size; items up to half of it are packed into shared
  // segments. At most 16 MiB (the index keeps 24-bit offsets), at least 1 KiB.
  uint32_t segment_size_bytes = 1u << 20;
  // Primary hash buckets (7 items each, 64 bytes); 0 derives the count from
  // the budget assuming ~256-byte items. Overflow buckets are added on demand.
  uint64_t index_buckets = 0;
  // Every item carries a 64-bit replication version (8 bytes per item).
  bool versioned = false;
  // Most StoreThread handles alive at once.
  uint32_t threads_max = 256;
  // Seconds clock used for expiry; nullptr = CLOCK_REALTIME (unix seconds).
  uint32_t (*clock_s)() = nullptr;
  // Most bytes that values still arriving may hold at once: the blocks of
  // unpublished large items and the item bytes of Reservations placed in
  // shared segments. That memory cannot be evicted, so without a bound
  // enough stalled uploads would leave other writes nothing to evict and
  // every put would fail. A reservation whose next claim would pass it
  // fails (no_memory). 0 = three quarters of memory_limit_bytes, which
  // always leaves a quarter of the budget for ordinary writes.
  uint64_t upload_bytes_max = 0;
};

// Optional per-item fields. Each costs bytes only when used.
struct ItemMeta {
  uint32_t flags = 0;        // memcached client flags
  uint32_t expires_at = 0;   // clock_s() seconds; 0 = never expires
  uint64_t version = 0;      // kept only when StoreConfig::versioned
};

enum class PutStatus : uint8_t {
  stored,
  no_memory,     // nothing evictable left, or a key or value longer than
                 // key_bytes_max / value_bytes_max (store/item.h): EUNK;
                 // the previous value is unchanged
  evicted,       // a reservation's segment was evicted before commit: EUNK
  aborted,       // the reservation was not filled or was aborted
  not_stored,    // add: the key is present; replace/append/prepend: it is absent
  exists,        // cas: the item changed since its cas was read
  not_found,     // cas/touch: no such key
  older,         // newer: the store holds a version at least as new
};

enum class DelStatus : uint8_t { deleted, not_found };

// When a put takes effect (memcached's set/add/replace/cas, and
// replication's newest-wins). Checked atomically with the index update.
enum class PutMode : uint8_t {
  set,      // always
  add,      // only if the key is absent (or expired)
  replace,  // only if the key is present
  cas,      // only if present and its cas() equals PutOptions::cas
  newer,    // only if ItemMeta::version is greater than the present item's,
            // tombstones included (versioned stores)
};

struct PutOptions {
  PutMode mode = PutMode::set;
  uint64_t cas = 0;
};

enum class ArithStatus : uint8_t { ok, not_found, not_number, no_memory };

struct StoreStats {
  uint64_t keys = 0;             // items present (expired ones until reclaimed)
  uint64_t live_bytes = 0;       // key + value bytes of present items
  uint64_t item_bytes = 0;       // header + key + value bytes of present items
  uint64_t evictions = 0;        // items removed by eviction
  uint64_t evicted_segments = 0; // segments evicted
  uint64_t merged_segments = 0;  // segments compacted: live items moved, block freed
  uint64_t merged_items = 0;     // items moved by compactions
  uint64_t expirations = 0;      // items removed because they expired
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t segments = 0;         // segments holding items (open, sealed, large)
  uint64_t blocks_bytes = 0;     // memory held in blocks (used + pooled)
  uint64_t index_bytes = 0;      // primary + overflow buckets
  uint64_t memory_limit_bytes = 0;
  uint64_t alloc_failures = 0;   // allocator failures answered by eviction
  uint64_t upload_bytes = 0;     // held by unpublished reservations now
  uint64_t upload_bytes_max = 0; // StoreConfig::upload_bytes_max in effect
  uint64_t upload_refusals = 0;  // reservations failed at upload_bytes_max
};

// A present item, seen from inside a get() callback. Valid only there.
class ItemView {
 public:
  uint64_t key_size() const { return key_size_; }
  uint64_t value_size() const { return value_size_; }
  uint32_t flags() const { return flags_; }
  uint32_t expires_at() const { return expires_at_; }
  uint64_t version() const { return version_; }
  // Unique per stored write of a key (memcached CAS).
  uint64_t cas() const { return cas_; }
  // True when the value is one contiguous span (every item in a shared
  // segment; large items are chunked).
  bool contiguous() const { return contiguous_; }
  std::string_view value() const;  // requires contiguous()
  // Copies up to n value bytes starting at offset; returns bytes copied.
  uint64_t copy_value(uint64_t offset, char* dst, uint64_t n) const;
  // A reference that outlives the callback (for sending large values).
  class PinnedItem pin() const;

 private:
  friend class StoreThread;
  friend struct StoreImpl;
  Segment* segment_ = nullptr;
  const char* value_ = nullptr;    // first value byte
  uint64_t value_offset_ = 0;      // value's offset in the item's byte stream
  uint64_t key_size_ = 0;
  uint64_t value_size_ = 0;
  uint64_t version_ = 0;
  uint64_t cas_ = 0;
  uint32_t flags_ = 0;
  uint32_t expires_at_ = 0;
  bool contiguous_ = true;
};

// Keeps an item's memory alive after the read section, even if its segment is
// evicted meanwhile. Move-only; dropping it may return memory to the pool.
class PinnedItem : NonCopyable {
 public:
  PinnedItem() = default;
  PinnedItem(PinnedItem&&) noexcept;
  PinnedItem& operator=(PinnedItem&&) noexcept;
  ~PinnedItem();

  explicit operator bool() const { return segment_ != nullptr; }
  uint64_t value_size() const { return value_size_; }
  // The longest contiguous run of value bytes starting at offset (< size).
  // Sequential calls with growing offsets cost O(1) each.
  std::string_view value_chunk(uint64_t offset) const;
  void reset();

 private:
  friend class ItemView;
  Segment* segment_ = nullptr;
  uint64_t value_offset_ = 0;
  uint64_t value_size_ = 0;
  // Cursor over a chunked item: the block holding stream offset cursor_base_.
  mutable const char* cursor_block_ = nullptr;
  mutable uint64_t cursor_base_ = 0;
};

// A value written in pieces: reserve(key, size) then append() as bytes arrive,
// then commit(). Memory is claimed as bytes arrive (one block at a time for
// large values), so an announced size alone claims at most one block.
// Dropping an uncommitted reservation aborts it.
//
// What a reservation holds counts against StoreConfig::upload_bytes_max
// from the claim until it is published, aborted, dropped or fails: each
// block (or last piece) of a large item as it is claimed, the whole item
// for one placed in a shared segment. Charged per block, never per append.
class Reservation : NonCopyable {
 public:
  Reservation() = default;
  Reservation(Reservation&&) noexcept;
  Reservation& operator=(Reservation&&) noexcept;
  ~Reservation();

  // False once the reservation failed (status() says why) or finished.
  bool ok() const { return thread_ != nullptr && status_ == PutStatus::stored; }
  PutStatus status() const { return status_; }
  uint64_t remaining() const { return value_size_ - written_; }
  // Copies bytes into the item (at most remaining()); false when memory ran
  // out, after which the reservation is dead and commit() reports why.
  bool append(std::string_view bytes);
  // Publishes the item (requires remaining() == 0).
  PutStatus commit();
  void abort();

  // The reservation failed at upload_bytes_max alone (no memory was
  // claimed past it): once values still arriving finish, reserving again
  // may succeed. A writer that can stop reading its input (a peer's
  // replication stream) waits and retries instead of losing the value.
  bool upload_full() const { return upload_full_; }
  // For such a writer: bytes append() takes without claiming a block
  // (0 when the next one must be claimed first, before append()).
  uint64_t room() const {
    assert(ok());
    return std::min<uint64_t>(remaining(), static_cast<uint64_t>(write_end_ - write_));
  }
  enum class Claim : uint8_t {
    claimed,      // room() > 0 now
    upload_full,  // refused at upload_bytes_max; nothing changed, try again later
    failed,       // out of memory: the reservation is dead, as after a failed append()
  };
  // Claims the next block of a large value ahead of append(), when room()
  // is 0 and bytes remain.
  Claim claim_piece();

 private:
  friend class StoreThread;
  void release();
  StoreThread* thread_ = nullptr;
  Segment* segment_ = nullptr;   // pinned while the reservation lives
  char* block_ = nullptr;        // block being written (large items)
  char* write_ = nullptr;        // next byte to write in the current block
  char* write_end_ = nullptr;    // end of the current block's payload
  std::string_view key_;         // the key as stored (or in key_copy_)
  std::string key_copy_;         // only for keys that do not fit one block
  uint64_t hash_ = 0;
  uint64_t value_size_ = 0;
  uint64_t written_ = 0;
  uint64_t item_bytes_ = 0;
  uint64_t upload_charged_ = 0;  // counted in the store's upload bytes
  uint32_t offset_ = 0;          // item offset in its first block
  uint32_t expires_at_ = 0;
  PutOptions options_;
  PutStatus status_ = PutStatus::aborted;
  bool upload_full_ = false;
};

class Store : NonCopyable {
 public:
  explicit Store(const StoreConfig& config);
  ~Store();

  const StoreConfig& config() const;
  StoreStats stats() const;
  uint32_t now_s() const;
  // Largest key + value + header that fits in a shared segment.
  uint64_t shared_item_bytes_max() const;
  // Versioned stores: where the read-modify-write operations (concat,
  // add_delta, touch) get the version of the item they write, so that the
  // result is newer than what they read (replication's clock). Set it
  // before any StoreThread uses the store; without it they keep the old
  // version.
  using VersionSource = uint64_t (*)(void* context);
  void set_version_source(VersionSource source, void* context);

 private:
  friend class StoreThread;
  friend class ItemView;
  friend class PinnedItem;
  std::unique_ptr<StoreImpl> impl_;
};

// Per-thread handle. Not thread-safe itself: one per thread.
class StoreThread : NonCopyable {
 public:
  explicit StoreThread(Store& store);
  ~StoreThread();

  PutStatus put(std::string_view key, std::string_view value,
                const ItemMeta& meta = {}, const PutOptions& options = {});
  // Calls visit(const ItemView&) while the item is protected; returns whether
  // the key was present (and not expired).
  template <class Visit>
  bool get(std::string_view key, Visit&& visit);
  DelStatus del(std::string_view key);
  Reservation reserve(std::string_view key, uint64_t value_size,
                      const ItemMeta& meta = {}, const PutOptions& options = {});

  // A hint that get/put/del of these keys come next (the pipelined requests
  // of one receive, say). A lookup is two dependent memory accesses, the
  // index bucket and then the item, each a DRAM round trip for a store
  // larger than the caches; this starts loading every key's bucket, then
  // the items those buckets point to, so a batch waits for memory about
  // twice instead of twice per key. It reads only the index, changes
  // nothing, and looks at the first prefetch_keys_max keys.
  static constexpr size_t prefetch_keys_max = 32;
  void prefetch(std::span<const std::string_view> keys);

  // Read-modify-write operations (memcached text protocol). Each reads the
  // item, builds the new one and stores it only if the item did not change
  // meanwhile (its cas), retrying a bounded number of times; flags and
  // expiry are kept. A value being appended to must be a shared-segment
  // item or fit in memory twice.
  PutStatus concat(std::string_view key, std::string_view data, bool prepend);
  // incr/decr of a decimal value (at most 20 digits): incr wraps at 2^64,
  // decr stops at 0. The new value is stored as its decimal digits.
  ArithStatus add_delta(std::string_view key, uint64_t delta, bool decrement,
                        uint64_t* new_value);
  // Sets a new expiry (0 = never); not_found when absent.
  PutStatus touch(std::string_view key, uint32_t expires_at);
  // Replication: replaces the key by a tombstone carrying `version` if that
  // is newer than what the store holds; the tombstone expires at
  // `expires_at` (it only has to outlive late writes).
  PutStatus del_versioned(std::string_view key, uint64_t version, uint32_t expires_at);
  // Every item stored before `at_s` (0 = now) is invisible from `at_s` on.
  void flush_all(uint32_t at_s);
  // Versioned stores (replication's flush_all): from `at_s` (0 = now) on,
  // every item or tombstone whose version is below `version` is invisible,
  // and a PutMode::newer put below it is refused as older. Nodes that apply
  // the same flush therefore agree on what it removed, whatever order the
  // writes around it reach them in. A later call replaces a pending one;
  // the threshold in effect only grows. Takes effect at the first put or
  // expire() at or after `at_s`.
  void flush_versions_before(uint64_t version, uint32_t at_s);
  // The version threshold in effect (0 = none).
  uint64_t flush_version() const;

  // Walks the index for a full copy (replication resync): calls
  // visit(std::string_view key, const ItemView& item, bool tombstone) for
  // every item of `buckets` primary buckets starting at `cursor`, inside one
  // read section (pin large values to send them later). Returns the cursor
  // to continue from, or 0 once the last bucket is done. Items written or
  // removed meanwhile may or may not be seen: a resync is followed by the
  // live stream, and newest-wins makes repeats harmless.
  template <class Visit>
  uint64_t scan(uint64_t cursor, uint64_t buckets, Visit&& visit);
  // Reclaims whole segments whose items have all expired. Cheap; call about
  // once a second from each worker.
  void expire();
  // Seals this thread's open segments so they become evictable.
  void seal_open_segments();
  // Evicts the oldest sealed segment now (benchmarks, operators); false
  // when nothing is evictable.
  bool evict_oldest();

  Store& store() { return store_; }

 private:
  friend class Reservation;
  friend struct StoreImpl;
  class ReadSection : NonCopyable {
   public:
    explicit ReadSection(StoreThread& t);
    ~ReadSection();

   private:
    StoreThread& thread_;
  };
  bool find(std::string_view key, ItemView& out, bool count = true);
  // The items (and tombstones) of one primary bucket's chain, for scan().
  struct ScanEntry {
    std::string_view key;  // into the store, or into scan_key_ for split keys
    ItemView view;
    bool tombstone;
  };
  void scan_bucket(uint64_t bucket, void (*fn)(void*, const ScanEntry&), void* context);
  uint64_t index_buckets() const;
  std::string scan_key_;  // a large item's key that spans blocks
  PutStatus put_fields(std::string_view key, std::string_view value, const ItemFields& fields,
                       const PutOptions& options);
  // reserve() of fields already built: put_fields passes large
  // tombstones (a replicated delete of a key longer than a shared item).
  Reservation reserve_fields(std::string_view key, const ItemFields& fields, const PutOptions& options);
  // reserve_fields' two kinds of item: placed whole in a shared segment, or
  // given a large segment of its own. Each fills in `r` (status_ says how).
  void reserve_shared(std::string_view key, ItemFields f, uint8_t ttl_class, uint64_t upper_bytes,
                      Reservation& r);
  void reserve_large(std::string_view key, const ItemFields& f, uint8_t ttl_class, Reservation& r);
  // Copies the item out for a read-modify-write; false when absent.
  bool read_for_update(std::string_view key, std::string& value, ItemMeta& meta, uint64_t& cas);

  Store& store_;
  StoreImpl& impl_;
  ThreadState* state_;
};

template <class Visit>
bool StoreThread::get(std::string_view key, Visit&& visit) {
  ReadSection section(*this);
  ItemView view;
  if (!find(key, view)) return false;
  visit(static_cast<const ItemView&>(view));
  return true;
}

template <class Visit>
uint64_t StoreThread::scan(uint64_t cursor, uint64_t buckets, Visit&& visit) {
  const uint64_t end = std::min<uint64_t>(cursor + buckets, index_buckets());
  ReadSection section(*this);
  auto call = [](void* context, const ScanEntry& e) {
    (*static_cast<std::remove_reference_t<Visit>*>(context))(
        e.key, static_cast<const ItemView&>(e.view), e.tombstone);
  };
  for (uint64_t b = cursor; b < end; ++b) scan_bucket(b, call, &visit);
  return end >= index_buckets() ? 0 : end;
}

}  // namespace ringcache::store
