// Many threads on one store at once, with eviction running all the time.
// Run under ThreadSanitizer by scripts/test.sh.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "tests/store/store_test_util.h"

using namespace ringcache::store;
using store_test::make_value;

namespace {

// A value read back must be exactly one that some thread wrote for that key.
bool value_is_genuine(uint64_t id, const std::string& v) {
  if (v.size() < 16) return v == make_value(id, 0, v.size()) || v.size() < 16;
  uint64_t got_id = 0, version = 0;
  std::memcpy(&got_id, v.data(), 8);
  std::memcpy(&version, v.data() + 8, 8);
  return got_id == id && v == make_value(id, version, v.size());
}

void run_stress(const StoreConfig& config, int threads, int ops_per_thread) {
  Store store(config);
  std::atomic<uint64_t> bad{0}, hits{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      StoreThread t(store);
      std::mt19937_64 rng(static_cast<uint64_t>(w) * 7919 + 1);
      for (int op = 0; op < ops_per_thread; ++op) {
        const uint64_t id = rng() % 512;
        const std::string key = "key:" + std::to_string(id);
        const uint64_t dice = rng() % 100;
        if (dice < 40) {
          const size_t size = rng() % 8 == 0 ? 2000 + rng() % 6000 : 16 + rng() % 200;
          t.put(key, make_value(id, (static_cast<uint64_t>(w) << 32) | static_cast<uint64_t>(op), size));
        } else if (dice < 90) {
          const std::string other = "key:" + std::to_string(rng() % 512);
          const std::string_view batch[] = {key, other};
          t.prefetch(batch);  // racing writers and eviction, like a server's look-ahead
          std::string got;
          PinnedItem pin;
          const bool found = t.get(key, [&](const ItemView& v) {
            if (v.value_size() > 1000 && (op & 1)) {
              pin = v.pin();  // read it after the section, racing eviction
            } else {
              got.resize(v.value_size());
              v.copy_value(0, got.data(), got.size());
            }
          });
          if (pin) {
            for (uint64_t off = 0; off < pin.value_size();) {
              std::string_view c = pin.value_chunk(off);
              got.append(c);
              off += c.size();
            }
            pin.reset();
          }
          if (found) {
            hits.fetch_add(1, std::memory_order_relaxed);
            if (!value_is_genuine(id, got)) bad.fetch_add(1);
          }
        } else if (dice < 95) {
          t.del(key);
        } else {
          Reservation r = t.reserve(key, 3000);
          const std::string v = make_value(id, (static_cast<uint64_t>(w) << 32) | (1u << 31) | static_cast<uint64_t>(op), 3000);
          if (r.ok()) {
            r.append(std::string_view(v).substr(0, 1000));
            r.append(std::string_view(v).substr(1000));
            r.commit();
          }
        }
        if (op % 4096 == 0) t.expire();
      }
    });
  }
  for (auto& th : workers) th.join();
  CHECK(bad.load() == 0);
  CHECK(hits.load() > 0);
  const StoreStats s = store.stats();
  // Memory was reclaimed while the threads ran. The 512 keys fit, so
  // compaction alone may free every block (a run of the 2-thread case
  // compacted 3602 segments and evicted none).
  CHECK(s.evicted_segments + s.merged_segments > 0);
  CHECK(s.keys <= 512);
}

}  // namespace

TEST_CASE("stress: 4 threads, tiny segments, constant eviction") {
  StoreConfig c;
  c.segment_size_bytes = 4096;
  c.memory_limit_bytes = 40 * 4096 + 64 * 64;
  c.index_buckets = 64;
  run_stress(c, 4, 60000);
}

TEST_CASE("stress: 2 threads, overflow buckets growing while reading") {
  StoreConfig c;
  c.segment_size_bytes = 16384;
  c.memory_limit_bytes = 2 << 20;
  c.index_buckets = 4;  // forces overflow chains
  run_stress(c, 2, 60000);
}
