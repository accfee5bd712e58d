// Conditional puts and read-modify-write operations (memcached text
// protocol), flush_all, and replication's newest-wins with tombstones.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "tests/store/store_test_util.h"

using namespace ringcache::store;
using store_test::get_string;

namespace {
uint64_t cas_of(StoreThread& t, std::string_view key) {
  uint64_t cas = 0;
  t.get(key, [&](const ItemView& v) { cas = v.cas(); });
  return cas;
}
}  // namespace

TEST_CASE("add, replace and cas conditions") {
  Store store(StoreConfig{});
  StoreThread t(store);
  CHECK(t.put("k", "1", {}, {PutMode::replace}) == PutStatus::not_stored);
  CHECK_FALSE(get_string(t, "k"));
  CHECK(t.put("k", "1", {}, {PutMode::add}) == PutStatus::stored);
  CHECK(t.put("k", "2", {}, {PutMode::add}) == PutStatus::not_stored);
  CHECK(*get_string(t, "k") == "1");
  CHECK(t.put("k", "3", {}, {PutMode::replace}) == PutStatus::stored);
  CHECK(*get_string(t, "k") == "3");
  const uint64_t cas = cas_of(t, "k");
  CHECK(t.put("k", "4", {}, {PutMode::cas, cas + 1}) == PutStatus::exists);
  CHECK(t.put("k", "4", {}, {PutMode::cas, cas}) == PutStatus::stored);
  CHECK(t.put("k", "5", {}, {PutMode::cas, cas}) == PutStatus::exists);  // cas changed
  CHECK(t.put("missing", "x", {}, {PutMode::cas, cas}) == PutStatus::not_found);
  CHECK(*get_string(t, "k") == "4");
  CHECK(store.stats().keys == 1);
  // Large values go through reservations with the same conditions.
  const std::string big(3 << 20, 'b');
  CHECK(t.put("k", big, {}, {PutMode::add}) == PutStatus::not_stored);
  CHECK(t.put("k", big, {}, {PutMode::cas, cas_of(t, "k")}) == PutStatus::stored);
  CHECK(*get_string(t, "k") == big);
}

TEST_CASE("an expired item counts as absent for add and replace") {
  const StoreConfig c{.clock_s = store_test::fake_clock};
  Store store(c);
  StoreThread t(store);
  ItemMeta m;
  m.expires_at = store_test::fake_now.load() + 5;
  t.put("k", "v", m);
  store_test::fake_now += 5;
  CHECK(t.put("k", "w", {}, {PutMode::replace}) == PutStatus::not_stored);
  CHECK(t.put("k", "w", {}, {PutMode::add}) == PutStatus::stored);
  CHECK(*get_string(t, "k") == "w");
}

TEST_CASE("append and prepend keep flags and expiry") {
  Store store(StoreConfig{});
  StoreThread t(store);
  CHECK(t.concat("k", "x", false) == PutStatus::not_stored);
  ItemMeta m;
  m.flags = 77;
  t.put("k", "mid", m);
  CHECK(t.concat("k", "<", true) == PutStatus::stored);
  CHECK(t.concat("k", ">", false) == PutStatus::stored);
  CHECK(*get_string(t, "k") == "<mid>");
  t.get("k", [](const ItemView& v) { CHECK(v.flags() == 77); });
}

TEST_CASE("incr and decr on decimal values") {
  Store store(StoreConfig{});
  StoreThread t(store);
  uint64_t v = 0;
  CHECK(t.add_delta("n", 1, false, &v) == ArithStatus::not_found);
  t.put("n", "10");
  CHECK(t.add_delta("n", 5, false, &v) == ArithStatus::ok);
  CHECK(v == 15);
  CHECK(t.add_delta("n", 100, true, &v) == ArithStatus::ok);
  CHECK(v == 0);  // decr stops at 0
  CHECK(*get_string(t, "n") == "0");
  t.put("n", "18446744073709551615");
  CHECK(t.add_delta("n", 2, false, &v) == ArithStatus::ok);
  CHECK(v == 1);  // incr wraps at 2^64
  t.put("n", "12 ");
  CHECK(t.add_delta("n", 1, false, &v) == ArithStatus::ok);
  CHECK(v == 13);
  for (const char* bad : {"", "abc", "1a", "-1", "18446744073709551616", "123456789012345678901"}) {
    t.put("bad", bad);
    CHECK(t.add_delta("bad", 1, false, &v) == ArithStatus::not_number);
  }
}

TEST_CASE("concurrent incr loses no increment") {
  const StoreConfig c{.segment_size_bytes = 64 * 1024};
  Store store(c);
  {
    StoreThread t(store);
    t.put("counter", "0");
  }
  constexpr int thread_count = 2, incr_count = 2000;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < thread_count; ++i) {
    threads.emplace_back([&] {
      StoreThread t(store);
      uint64_t v = 0;
      for (int j = 0; j < incr_count; ++j) {
        // A run of conflicts beyond the retry bound is reported, not lost.
        while (t.add_delta("counter", 1, false, &v) != ArithStatus::ok) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  StoreThread t(store);
  CHECK(*get_string(t, "counter") == std::to_string(thread_count * incr_count));
}

TEST_CASE("touch changes the expiry") {
  const StoreConfig c{.clock_s = store_test::fake_clock};
  Store store(c);
  StoreThread t(store);
  CHECK(t.touch("k", 0) == PutStatus::not_found);
  ItemMeta m;
  m.expires_at = store_test::fake_now.load() + 2;
  t.put("k", "v", m);
  CHECK(t.touch("k", store_test::fake_now.load() + 100) == PutStatus::stored);
  store_test::fake_now += 10;
  CHECK(*get_string(t, "k") == "v");
  CHECK(t.touch("k", store_test::fake_now.load() + 1) == PutStatus::stored);
  store_test::fake_now += 1;
  CHECK_FALSE(get_string(t, "k"));
}

TEST_CASE("flush_all hides older items, now or at a time") {
  const StoreConfig c{.segment_size_bytes = 4096, .clock_s = store_test::fake_clock};
  Store store(c);
  StoreThread t(store);
  for (int i = 0; i < 100; ++i) t.put("a" + std::to_string(i), "v");
  t.flush_all(0);
  for (int i = 0; i < 100; ++i) CHECK_FALSE(get_string(t, "a" + std::to_string(i)));
  CHECK(t.put("b", "after") == PutStatus::stored);
  CHECK(*get_string(t, "b") == "after");
  CHECK(t.put("a1", "x", {}, {PutMode::replace}) == PutStatus::not_stored);
  t.expire();
  CHECK(store.stats().keys == 1);  // flushed segments are reclaimed
  // Delayed: items stored before the time go at that time.
  t.flush_all(store_test::fake_now.load() + 10);
  t.put("c", "v");
  store_test::fake_now += 9;
  CHECK(get_string(t, "b"));
  CHECK(get_string(t, "c"));
  store_test::fake_now += 1;
  t.put("d", "new");  // the first operation after the time applies it
  CHECK_FALSE(get_string(t, "b"));
  CHECK_FALSE(get_string(t, "c"));
  CHECK(*get_string(t, "d") == "new");
}

TEST_CASE("newest wins, tombstones included") {
  const StoreConfig c{.versioned = true, .clock_s = store_test::fake_clock};
  Store store(c);
  StoreThread t(store);
  const uint32_t later = store_test::fake_now.load() + 3600;
  auto put_v = [&](std::string_view v, uint64_t version) {
    ItemMeta m;
    m.version = version;
    return t.put("k", v, m, {PutMode::newer});
  };
  CHECK(put_v("v10", 10) == PutStatus::stored);
  CHECK(put_v("v5", 5) == PutStatus::older);
  CHECK(put_v("v10b", 10) == PutStatus::older);  // equal is not newer
  CHECK(*get_string(t, "k") == "v10");
  CHECK(t.del_versioned("k", 9, later) == PutStatus::older);
  CHECK(t.del_versioned("k", 20, later) == PutStatus::stored);
  CHECK_FALSE(get_string(t, "k"));
  CHECK(store.stats().keys == 0);  // a tombstone is not a key
  CHECK(put_v("late", 15) == PutStatus::older);  // cannot resurrect
  CHECK_FALSE(get_string(t, "k"));
  CHECK(put_v("v30", 30) == PutStatus::stored);
  CHECK(*get_string(t, "k") == "v30");
  CHECK(store.stats().keys == 1);
  t.get("k", [](const ItemView& v) { CHECK(v.version() == 30); });
}

TEST_CASE("a versioned flush hides what is older than its version, in any arrival order") {
  const StoreConfig c{.segment_size_bytes = 4096, .versioned = true, .clock_s = store_test::fake_clock};
  Store store(c);
  StoreThread t(store);
  const uint32_t later = store_test::fake_now.load() + 3600;
  auto put_v = [&](std::string_view key, uint64_t version, PutMode mode = PutMode::newer) {
    ItemMeta m;
    m.version = version;
    return t.put(key, "v" + std::to_string(version), m, {mode});
  };
  CHECK(put_v("a", 10) == PutStatus::stored);
  CHECK(put_v("b", 20) == PutStatus::stored);
  CHECK(t.flush_version() == 0);
  t.flush_versions_before(15, 0);
  CHECK(t.flush_version() == 15);
  CHECK_FALSE(get_string(t, "a"));
  CHECK(*get_string(t, "b") == "v20");
  // A write the flush should have removed, arriving after it, stays out;
  // so does a late delete (it has nothing left to do).
  CHECK(put_v("a", 12) == PutStatus::older);
  CHECK(put_v("c", 14) == PutStatus::older);
  CHECK(t.del_versioned("c", 13, later) == PutStatus::older);
  CHECK_FALSE(get_string(t, "a"));
  CHECK_FALSE(get_string(t, "c"));
  CHECK(put_v("a", 16) == PutStatus::stored);
  CHECK(*get_string(t, "a") == "v16");
  // A flushed item is absent for the conditional modes too.
  CHECK(put_v("d", 5, PutMode::set) == PutStatus::stored);
  CHECK(put_v("d", 6, PutMode::replace) == PutStatus::not_stored);
  CHECK(put_v("d", 7, PutMode::add) == PutStatus::stored);
  // The threshold only grows.
  t.flush_versions_before(11, 0);
  CHECK(t.flush_version() == 15);

  // Delayed: in effect from its time on (the first put or expire() then).
  t.flush_versions_before(30, store_test::fake_now.load() + 10);
  CHECK(t.flush_version() == 15);
  CHECK(put_v("e", 25) == PutStatus::stored);
  store_test::fake_now += 9;
  t.expire();
  CHECK(*get_string(t, "e") == "v25");
  store_test::fake_now += 1;
  t.expire();
  CHECK(t.flush_version() == 30);
  CHECK_FALSE(get_string(t, "b"));
  CHECK_FALSE(get_string(t, "e"));
  CHECK(put_v("e", 29) == PutStatus::older);
  CHECK(put_v("f", 31) == PutStatus::stored);
  CHECK(*get_string(t, "f") == "v31");
}

TEST_CASE("scan visits every item and tombstone once, in bounded steps") {
  const StoreConfig c{
      .segment_size_bytes = 64 * 1024,
      .index_buckets = 100,  // chains of overflow buckets
      .versioned = true,
  };
  Store store(c);
  StoreThread t(store);
  ItemMeta m;
  m.version = 1;
  for (int i = 0; i < 2000; ++i) t.put("k" + std::to_string(i), "v" + std::to_string(i), m);
  const std::string big(200000, 'B');
  const std::string big_key(70000, 'K');  // spans blocks
  t.put(big_key, big, m);
  CHECK(t.del_versioned("k7", 2, t.store().now_s() + 60) == PutStatus::stored);
  std::map<std::string, std::string> seen;
  std::set<std::string> tombstones;
  uint64_t cursor = 0;
  int calls = 0;
  do {
    cursor = t.scan(cursor, 7, [&](std::string_view key, const ItemView& v, bool tombstone) {
      CHECK(seen.count(std::string(key)) == 0);
      std::string value(v.value_size(), '\0');
      v.copy_value(0, value.data(), value.size());
      seen[std::string(key)] = value;
      if (tombstone) tombstones.insert(std::string(key));
    });
    ++calls;
  } while (cursor != 0);
  CHECK(calls == 15);
  CHECK(seen.size() == 2001);
  CHECK(tombstones == std::set<std::string>{"k7"});
  CHECK(seen["k1999"] == "v1999");
  CHECK(seen[big_key] == big);
}

namespace {
std::atomic<uint64_t> test_versions{1000};
uint64_t next_test_version(void*) { return test_versions.fetch_add(1) + 1; }
}  // namespace

TEST_CASE("read-modify-write ops give the item a new version from the source") {
  const StoreConfig c{.versioned = true};
  Store store(c);
  store.set_version_source(next_test_version, nullptr);
  StoreThread t(store);
  ItemMeta m;
  m.version = 5;
  t.put("k", "1", m);
  uint64_t v = 0;
  auto version = [&] {
    uint64_t out = 0;
    t.get("k", [&](const ItemView& item) { out = item.version(); });
    return out;
  };
  CHECK(t.add_delta("k", 1, false, &v) == ArithStatus::ok);
  CHECK(version() == 1001);
  CHECK(t.concat("k", "0", false) == PutStatus::stored);
  CHECK(version() == 1002);
  CHECK(t.touch("k", 0) == PutStatus::stored);
  CHECK(version() == 1003);
  CHECK(*get_string(t, "k") == "20");
}
