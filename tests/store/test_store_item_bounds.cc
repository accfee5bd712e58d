// Items at the edges of what the store can hold: lengths an item header
// cannot encode, and tombstones whose key alone is too long for a shared
// segment. Both come from the network (a text-protocol length, a peer's
// delete), so the store must answer them, never assert on them.
#include <doctest/doctest.h>

#include <string>

#include "store/item.h"
#include "store/store.h"
#include "tests/store/store_test_util.h"

using namespace ringcache::store;
using store_test::get_string;

namespace {

constexpr uint32_t block_bytes = 4096;

StoreConfig small_config(bool versioned) {
  StoreConfig c;
  c.segment_size_bytes = block_bytes;
  c.index_buckets = 64;
  c.memory_limit_bytes = 64 * block_bytes + c.index_buckets * 64;
  c.versioned = versioned;
  return c;
}

}  // namespace

TEST_CASE("item bounds: a value longer than an item header can hold is refused, not written") {
  Store store(small_config(false));
  StoreThread t(store);
  REQUIRE(t.put("k", "before") == PutStatus::stored);
  const uint64_t blocks_before = store.stats().blocks_bytes;

  Reservation r = t.reserve("k", value_bytes_max + 1);
  CHECK_FALSE(r.ok());
  CHECK(r.status() == PutStatus::no_memory);
  CHECK(store.stats().upload_bytes == 0);
  CHECK(store.stats().blocks_bytes == blocks_before);
  CHECK(r.commit() == PutStatus::no_memory);
  CHECK(get_string(t, "k") == "before");

  // The longest length it can hold is taken (and claims one block only).
  Reservation longest = t.reserve("k", value_bytes_max);
  CHECK(longest.ok());
  CHECK(store.stats().upload_bytes == block_bytes);
  longest.abort();
  CHECK(store.stats().upload_bytes == 0);
  CHECK(get_string(t, "k") == "before");
}

TEST_CASE("item bounds: a replicated delete of a key longer than a shared item leaves a tombstone") {
  Store store(small_config(true));
  StoreThread t(store);
  const std::string key(3000, 'k');
  REQUIRE(key.size() > store.shared_item_bytes_max());
  ItemMeta meta;
  meta.version = 10;
  REQUIRE(t.put(key, "v", meta) == PutStatus::stored);
  CHECK(store.stats().keys == 1);

  CHECK(t.del_versioned(key, 20, store.now_s() + 60) == PutStatus::stored);
  CHECK_FALSE(get_string(t, key).has_value());
  CHECK(store.stats().keys == 0);
  CHECK(store.stats().live_bytes == 0);

  // The tombstone keeps its version: an older write arriving late is refused.
  meta.version = 15;
  CHECK(t.put(key, "late", meta, PutOptions{PutMode::newer, 0}) == PutStatus::older);
  CHECK_FALSE(get_string(t, key).has_value());

  int tombstones = 0;
  uint64_t cursor = 0;
  do {
    cursor = t.scan(cursor, 16, [&](std::string_view k, const ItemView& item, bool tombstone) {
      if (k == key && tombstone && item.version() == 20) ++tombstones;
    });
  } while (cursor != 0);
  CHECK(tombstones == 1);

  // A newer write replaces it.
  meta.version = 30;
  CHECK(t.put(key, "new", meta, PutOptions{PutMode::newer, 0}) == PutStatus::stored);
  CHECK(get_string(t, key) == "new");
}
