// Building the store: the block size in effect, how the budget splits
// between the primary index and the blocks, the spare block compaction
// starts in; taking it down; and the clock.
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
constexpr uint64_t assumed_item_bytes = 256;
constexpr uint64_t primary_buckets_min = 64;

uint32_t effective_block_bytes(const StoreConfig& c) {
  uint64_t b = std::clamp<uint64_t>(c.segment_size_bytes, 1024, segment_size_bytes_max);
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
  shared_item_bytes_max = (block_bytes - segment_header_bytes) / 2;
  uint64_t buckets = config.index_buckets;
  if (buckets == 0) {
    buckets = std::max(primary_buckets_min,
                       config.memory_limit_bytes / (assumed_item_bytes * Bucket::slot_count));
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
  ids_max = static_cast<uint32_t>(std::min<uint64_t>(segment_id_max, 2 * blocks_max + 2));
  segments_by_id = std::make_unique<std::atomic<Segment*>[]>(ids_max + 1);
  free_ids.reserve(ids_max);
  threads.reserve(config.threads_max);
  assert(std::has_single_bit(block_bytes));
  // A shared item always fits an empty segment.
  assert(segment_header_bytes + shared_item_bytes_max < block_bytes);
}

StoreImpl::~StoreImpl() {
  // Every Reservation ends before the store: each holds a StoreThread.
  assert(upload_bytes.load() == 0);
  assert(!merge_busy);  // and no compaction is running
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

}  // namespace ringcache::store
