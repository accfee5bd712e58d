// Functional tests of the store: operations, large values, reservations,
// pins, expiry, and eviction in tiny geometries.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/store.h"
#include "tests/store/store_test_util.h"

using namespace ringcache::store;
using store_test::get_string;
using store_test::make_value;

namespace {

StoreConfig tiny_config(uint32_t segment_bytes, uint32_t segments) {
  StoreConfig c;
  c.segment_size_bytes = segment_bytes;
  c.index_buckets = 64;
  c.memory_limit_bytes = uint64_t{segment_bytes} * segments + 64 * 64;
  c.clock_s = store_test::fake_clock;
  return c;
}

}  // namespace

TEST_CASE("put, get, overwrite, delete") {
  Store store(StoreConfig{});
  StoreThread t(store);
  CHECK_FALSE(get_string(t, "k"));
  CHECK(t.put("k", "v1") == PutStatus::stored);
  CHECK(*get_string(t, "k") == "v1");
  CHECK(t.put("k", "value two") == PutStatus::stored);
  CHECK(*get_string(t, "k") == "value two");
  CHECK(store.stats().keys == 1);
  CHECK(store.stats().live_bytes == 1 + 9);
  CHECK(t.del("k") == DelStatus::deleted);
  CHECK(t.del("k") == DelStatus::not_found);
  CHECK_FALSE(get_string(t, "k"));
  CHECK(store.stats().keys == 0);
  CHECK(store.stats().live_bytes == 0);
}

TEST_CASE("keys and values are arbitrary bytes, empty ones included") {
  Store store(StoreConfig{});
  StoreThread t(store);
  const std::string key("\0k\xff\n", 4);
  const std::string value("\0\0\x01\xfe", 4);
  CHECK(t.put(key, value) == PutStatus::stored);
  CHECK(*get_string(t, key) == value);
  CHECK_FALSE(get_string(t, std::string("\0k\xff", 3)));
  CHECK(t.put("", "") == PutStatus::stored);
  CHECK(*get_string(t, "") == "");
  CHECK(t.put("empty", "") == PutStatus::stored);
  CHECK(*get_string(t, "empty") == "");
}

TEST_CASE("hits and misses are counted") {
  Store store(StoreConfig{});
  StoreThread t(store);
  t.put("a", "1");
  get_string(t, "a");
  get_string(t, "a");
  get_string(t, "b");
  const StoreStats s = store.stats();
  CHECK(s.hits == 2);
  CHECK(s.misses == 1);
}

TEST_CASE("flags, cas and version come back; cas changes on every write") {
  const StoreConfig c{.versioned = true};
  Store store(c);
  StoreThread t(store);
  ItemMeta m;
  m.flags = 0xdeadbeef;
  m.version = 42;
  t.put("k", "v", m);
  uint64_t cas1 = 0;
  CHECK(t.get("k", [&](const ItemView& v) {
    CHECK(v.flags() == 0xdeadbeef);
    CHECK(v.version() == 42);
    cas1 = v.cas();
  }));
  m.version = 43;
  t.put("k", "v", m);
  t.get("k", [&](const ItemView& v) { CHECK(v.cas() != cas1); });

  Store plain(StoreConfig{});
  StoreThread p(plain);
  p.put("k", "v");
  uint64_t a = 0, b = 0;
  p.get("k", [&](const ItemView& v) { a = v.cas(); });
  p.put("k", "v");
  p.get("k", [&](const ItemView& v) { b = v.cas(); });
  CHECK(a != 0);
  CHECK(a != b);
}

TEST_CASE("values larger than a segment are chained and read back exactly") {
  const StoreConfig c{.memory_limit_bytes = 64ull << 20, .segment_size_bytes = 64 * 1024};
  Store store(c);
  StoreThread t(store);
  for (size_t size : {size_t{20000}, size_t{40000}, size_t{65536}, size_t{1} << 20, (size_t{5} << 20) + 7}) {
    const std::string v = make_value(size, 1, size);
    CHECK(t.put("big" + std::to_string(size), v) == PutStatus::stored);
    CHECK(*get_string(t, "big" + std::to_string(size)) == v);
  }
  // A key longer than a block.
  const std::string long_key = make_value(9, 9, 200000);
  CHECK(t.put(long_key, "small value") == PutStatus::stored);
  CHECK(*get_string(t, long_key) == "small value");
  CHECK(t.del(long_key) == DelStatus::deleted);
}

TEST_CASE("a reservation is filled in pieces and invisible until commit") {
  const StoreConfig c{.segment_size_bytes = 64 * 1024};
  Store store(c);
  StoreThread t(store);
  for (size_t size : {size_t{10}, size_t{30000}, size_t{300000}}) {
    const std::string v = make_value(size, 2, size);
    t.put("r", "old");
    Reservation r = t.reserve("r", v.size());
    REQUIRE(r.ok());
    for (size_t at = 0; at < v.size();) {
      const size_t n = std::min<size_t>(v.size() - at, 1 + at % 7777);
      CHECK(r.append(std::string_view(v).substr(at, n)));
      at += n;
      if (at < v.size()) CHECK(*get_string(t, "r") == "old");
    }
    CHECK(r.remaining() == 0);
    CHECK(r.commit() == PutStatus::stored);
    CHECK(*get_string(t, "r") == v);
  }
}

TEST_CASE("an aborted or dropped reservation leaves the old value and frees its memory") {
  const StoreConfig c{.segment_size_bytes = 64 * 1024};
  Store store(c);
  StoreThread t(store);
  t.put("k", "old");
  const uint64_t segments_before = store.stats().segments;
  {
    Reservation r = t.reserve("k", 1 << 20);
    REQUIRE(r.ok());
    r.append(std::string(100000, 'x'));
  }
  CHECK(*get_string(t, "k") == "old");
  CHECK(store.stats().segments == segments_before);
  Reservation r = t.reserve("k", 5);
  r.append("ab");
  CHECK(r.commit() == PutStatus::aborted);  // short: never published
  CHECK(*get_string(t, "k") == "old");
  CHECK(store.stats().keys == 1);
}

TEST_CASE("a large reservation claims memory as bytes arrive, not when announced") {
  const StoreConfig c{.memory_limit_bytes = 4ull << 20, .segment_size_bytes = 64 * 1024};
  Store store(c);
  StoreThread t(store);
  for (int i = 0; i < 20; ++i) t.put("keep" + std::to_string(i), "v");
  t.seal_open_segments();
  // Announce far more than the budget and send a little: nothing is evicted.
  Reservation r = t.reserve("huge", 1ull << 31);
  REQUIRE(r.ok());
  CHECK(r.append(std::string(1000, 'z')));
  CHECK(store.stats().evictions == 0);
  CHECK(store.stats().blocks_bytes <= 3 * 64 * 1024);
  for (int i = 0; i < 20; ++i) CHECK(get_string(t, "keep" + std::to_string(i)));
}

TEST_CASE("a pinned item survives the eviction of its segment") {
  StoreConfig c = tiny_config(4096, 8);
  Store store(c);
  StoreThread t(store);
  const std::string v = make_value(1, 1, 3000);  // large item: own segment
  REQUIRE(t.put("pinned", v) == PutStatus::stored);
  PinnedItem pin;
  t.get("pinned", [&](const ItemView& view) { pin = view.pin(); });
  REQUIRE(pin);
  for (int i = 0; i < 200; ++i) t.put("filler" + std::to_string(i), make_value(i, 0, 500));
  CHECK_FALSE(get_string(t, "pinned"));  // evicted from the index ...
  std::string read;
  for (uint64_t off = 0; off < pin.value_size();) {
    std::string_view chunk = pin.value_chunk(off);
    read.append(chunk);
    off += chunk.size();
  }
  CHECK(read == v);  // ... but the bytes are intact while pinned
  pin.reset();
  for (int i = 0; i < 200; ++i) t.put("again" + std::to_string(i), make_value(i, 1, 500));
  CHECK(store.stats().evicted_segments > 0);
}

TEST_CASE("expired items are never returned and whole segments are reclaimed") {
  const StoreConfig c{.segment_size_bytes = 4096, .clock_s = store_test::fake_clock};
  Store store(c);
  StoreThread t(store);
  const uint32_t now = store_test::fake_now.load();
  ItemMeta soon;
  soon.expires_at = now + 10;
  ItemMeta later;
  later.expires_at = now + 100000;
  for (int i = 0; i < 100; ++i) {
    t.put("s" + std::to_string(i), make_value(i, 0, 100), soon);
    t.put("l" + std::to_string(i), make_value(i, 0, 100), later);
    t.put("n" + std::to_string(i), make_value(i, 0, 100));
  }
  CHECK(get_string(t, "s5"));
  t.seal_open_segments();
  store_test::fake_now += 10;
  CHECK_FALSE(get_string(t, "s5"));  // expired exactly at expires_at
  CHECK(get_string(t, "l5"));
  CHECK(t.del("s6") == DelStatus::not_found);
  t.expire();
  const StoreStats s = store.stats();
  CHECK(s.expirations >= 90);  // whole segments of short-lived items went
  CHECK(s.evictions == 0);
  CHECK(s.keys == 200 + (100 - 1 - s.expirations));
  for (int i = 0; i < 100; ++i) {
    CHECK(get_string(t, "l" + std::to_string(i)));
    CHECK(get_string(t, "n" + std::to_string(i)));
  }
  // Storing an already-expired item removes the key (memcached semantics).
  ItemMeta past;
  past.expires_at = store_test::fake_now.load() - 1;
  CHECK(t.put("n1", "x", past) == PutStatus::stored);
  CHECK_FALSE(get_string(t, "n1"));
}

TEST_CASE("tiny geometry: eviction runs constantly and the newest items stay") {
  Store store(tiny_config(1024, 8));
  StoreThread t(store);
  for (uint64_t i = 0; i < 5000; ++i) {
    REQUIRE(t.put("key" + std::to_string(i), make_value(i, 0, 40 + i % 90)) == PutStatus::stored);
  }
  const StoreStats s = store.stats();
  CHECK(s.evicted_segments > 100);
  CHECK(s.blocks_bytes <= 8 * 1024);
  // The last few writes are in the newest segments.
  for (uint64_t i = 4995; i < 5000; ++i) {
    CHECK(*get_string(t, "key" + std::to_string(i)) == make_value(i, 0, 40 + i % 90));
  }
  CHECK(s.keys < 5000);
  CHECK(s.keys + s.evictions == 5000);
}

TEST_CASE("an item larger than everything evictable fails with no_memory and keeps the old value") {
  Store store(tiny_config(1024, 8));
  StoreThread t(store);
  CHECK(t.put("k", "old") == PutStatus::stored);
  t.seal_open_segments();
  CHECK(t.put("k", std::string(64 * 1024, 'x')) == PutStatus::no_memory);
  // The old value's segment may have been evicted to try; if it is still
  // there it is the old value, never a partial new one.
  auto v = get_string(t, "k");
  if (v) CHECK(*v == "old");
  CHECK(t.put("k2", "fits again") == PutStatus::stored);
  CHECK(*get_string(t, "k2") == "fits again");
}

TEST_CASE("model test: a million random ops against std::unordered_map") {
  // Missing keys are allowed only through eviction; a value is never wrong.
  Store store(tiny_config(2048, 64));
  StoreThread t(store);
  std::unordered_map<std::string, std::string> model;
  std::mt19937_64 rng(12345);
  uint64_t evicted_misses = 0, hits = 0;
  constexpr int op_count = 1'000'000;
  for (int op = 0; op < op_count; ++op) {
    const uint64_t id = rng() % 2000;
    const std::string key = "k" + std::to_string(id);
    if (op % 3 == 0) {
      // A prefetch hint is only a hint: whatever it touches, the model holds.
      const std::string other = "k" + std::to_string(rng() % 2000);
      const std::string_view keys[] = {key, other, "absent"};
      t.prefetch(keys);
    }
    const uint64_t dice = rng() % 100;
    if (dice < 45) {
      const size_t size = rng() % 4 == 0 ? 600 + rng() % 3000 : rng() % 120;
      std::string value = make_value(id, static_cast<uint64_t>(op), size);
      REQUIRE(t.put(key, value) == PutStatus::stored);
      model[key] = std::move(value);
    } else if (dice < 90) {
      auto got = get_string(t, key);
      auto it = model.find(key);
      if (got) {
        REQUIRE(it != model.end());
        REQUIRE(*got == it->second);
        ++hits;
      } else if (it != model.end()) {
        ++evicted_misses;
        model.erase(it);  // evicted: stays missing until written again
      }
    } else {
      const DelStatus d = t.del(key);
      if (d == DelStatus::deleted) REQUIRE(model.count(key) == 1);
      model.erase(key);
    }
  }
  CHECK(hits > 10000);
  CHECK(evicted_misses > 0);
  CHECK(store.stats().evictions > 0);
  CHECK(store.stats().merged_segments > 0);  // values moved by merges were checked too
  const StoreStats s = store.stats();
  CHECK(s.keys <= model.size());
}

TEST_CASE("regression: empty keys and values given as null views") {
  // The parser hands over std::string_view{} (a null pointer) for empty
  // fields; memcpy/memcmp with null is undefined even for 0 bytes.
  Store store(StoreConfig{});
  StoreThread t(store);
  CHECK(t.put(std::string_view{}, std::string_view{}) == PutStatus::stored);
  CHECK(*get_string(t, std::string_view{}) == "");
  CHECK(t.put("k", std::string_view{}) == PutStatus::stored);
  CHECK(*get_string(t, "k") == "");
  Reservation r = t.reserve(std::string_view{}, 0);
  CHECK(r.append(std::string_view{}));
  CHECK(r.commit() == PutStatus::stored);
  CHECK(t.del(std::string_view{}) == DelStatus::deleted);
}

TEST_CASE("overwrites: merging keeps every key when the live data fits") {
  // 200 keys x ~150 bytes = 30 KB of live data in a 64 KiB budget of 4 KiB
  // segments; 20,000 overwrites write 3 MB. Dropping the oldest segment
  // would lose live keys; merging the mostly dead oldest segments keeps them.
  Store store(tiny_config(4096, 16));
  StoreThread t(store);
  std::mt19937_64 rng(99);
  std::vector<uint64_t> version(200, 0);
  for (uint64_t i = 0; i < 200; ++i) REQUIRE(t.put("k" + std::to_string(i), make_value(i, 0, 140)) == PutStatus::stored);
  for (int n = 0; n < 20000; ++n) {
    const uint64_t i = rng() % 200;
    REQUIRE(t.put("k" + std::to_string(i), make_value(i, ++version[i], 140)) == PutStatus::stored);
  }
  const StoreStats s = store.stats();
  CHECK(s.merged_segments > 100);
  // Rarely a dense oldest segment has no partner to merge with and goes
  // (6 here); plain FIFO dropped thousands.
  CHECK(s.evictions < 200);
  CHECK(s.keys <= 200);
  uint64_t present = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    auto v = get_string(t, "k" + std::to_string(i));
    if (v) {
      ++present;
      CHECK(*v == make_value(i, version[i], 140));  // never an older value
    }
  }
  CHECK(present + s.evictions >= 200);
  CHECK(present >= 190);
}

TEST_CASE("compaction finds dead bytes behind dense old segments; cold keys stay") {
  // Cold keys (written once) fill the oldest segments densely; 20 hot keys
  // are then overwritten 30,000 times in a budget where all live data fits
  // with room to spare. The sparse segments (dead hot versions) lie behind
  // the dense ones; compacting those keeps every cold key, where evicting
  // the oldest would drop them. The second geometry has more dense
  // segments than the head window, so the sweep must find the sparse ones.
  struct Geometry {
    uint32_t segments;
    uint64_t cold_keys;
  };
  for (const Geometry g : {Geometry{64, 700}, Geometry{400, 6000}}) {
    CAPTURE(g.segments);
    Store store(tiny_config(4096, g.segments));
    StoreThread t(store);
    for (uint64_t i = 0; i < g.cold_keys; ++i) {
      REQUIRE(t.put("cold" + std::to_string(i), make_value(i, 0, 140)) == PutStatus::stored);
    }
    std::mt19937_64 rng(5);
    std::vector<uint64_t> version(20, 0);
    for (int n = 0; n < 30000; ++n) {
      const uint64_t i = rng() % 20;
      REQUIRE(t.put("hot" + std::to_string(i), make_value(1000000 + i, ++version[i], 140)) ==
              PutStatus::stored);
    }
    const StoreStats s = store.stats();
    CHECK(s.merged_segments > 100);
    uint64_t cold_present = 0;
    for (uint64_t i = 0; i < g.cold_keys; ++i) {
      auto v = get_string(t, "cold" + std::to_string(i));
      if (v) {
        ++cold_present;
        CHECK(*v == make_value(i, 0, 140));
      }
    }
    CHECK(cold_present == g.cold_keys);
    for (uint64_t i = 0; i < 20; ++i) {
      auto v = get_string(t, "hot" + std::to_string(i));
      REQUIRE(v);
      CHECK(*v == make_value(1000000 + i, version[i], 140));
    }
  }
}

TEST_CASE("a large item takes whole blocks only where it fills them") {
  // A value of exactly one segment used to take two blocks (the header
  // spills over); the last piece is now cut to size.
  const StoreConfig c{.memory_limit_bytes = 8ull << 20, .segment_size_bytes = 64 * 1024};
  Store store(c);
  StoreThread t(store);
  const uint64_t before = store.stats().blocks_bytes;
  const std::string one_block(64 * 1024, 'x');
  REQUIRE(t.put("a", one_block) == PutStatus::stored);
  const uint64_t used = store.stats().blocks_bytes - before;
  CHECK(used >= one_block.size());
  CHECK(used < one_block.size() + 1024);
  const std::string three_quarters(48 * 1024, 'y');  // one exact piece
  REQUIRE(t.put("b", three_quarters) == PutStatus::stored);
  CHECK(store.stats().blocks_bytes - before - used < three_quarters.size() + 1024);
  CHECK(*get_string(t, "a") == one_block);
  CHECK(*get_string(t, "b") == three_quarters);
  // Removing them gives the bytes back (the pieces return to the allocator).
  t.del("a");
  t.del("b");
  for (int i = 0; i < 400; ++i) t.put("fill" + std::to_string(i), std::string(60000, 'z'));
  CHECK(store.stats().blocks_bytes <= c.memory_limit_bytes);
}

TEST_CASE("overwriting or deleting a large item frees its segment at once") {
  const StoreConfig c{.memory_limit_bytes = 64ull << 20, .segment_size_bytes = 64 * 1024};
  Store store(c);
  StoreThread t(store);
  const std::string big(200 * 1024, 'b');
  REQUIRE(t.put("big", big) == PutStatus::stored);
  const uint64_t segments = store.stats().segments;
  for (int i = 0; i < 50; ++i) REQUIRE(t.put("big", big) == PutStatus::stored);
  CHECK(store.stats().segments == segments);  // not 50 dead chains waiting for the FIFO
  CHECK(store.stats().evictions == 0);
  // A reader's pin keeps the bytes of an overwritten value valid.
  PinnedItem pin;
  t.get("big", [&](const ItemView& v) { pin = v.pin(); });
  REQUIRE(t.put("big", std::string(200 * 1024, 'c')) == PutStatus::stored);
  CHECK(pin.value_chunk(0).substr(0, 3) == "bbb");
  pin.reset();
  CHECK(t.del("big") == DelStatus::deleted);
  CHECK(store.stats().segments == segments - 1);
}
