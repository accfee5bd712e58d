// Store microbenchmarks: GET hit/miss, PUT, a 90/10 GET/PUT mix, with 1 and
// 2 threads and values of 16 B to 64 KiB, over a store of 1 M items (fewer
// for large values, so the store fits this 24 GiB machine: at most 2 GiB of
// values); the cost of evicting one segment; and the bytes of overhead per
// item (index + header + every per-item field).
//
//   ninja -C build-release benchmarks/store_benchmark
//   build-release/benchmarks/store_benchmark --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <list>
#include <unordered_map>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "store/store.h"

using namespace ringcache::store;

namespace {

constexpr uint64_t items_max = 1'000'000;
constexpr uint64_t value_bytes_total_max = 2ull << 30;
constexpr size_t key_size_bytes = 16;

// "key:" and 12 decimal digits (i < 10^12 in every benchmark), formatted
// arithmetically: a table of a million keys would cost the timed loops a
// cache miss of their own per request, which is the benchmark's, not the
// store's.
struct Key {
  char bytes[key_size_bytes];
  std::string_view view() const { return {bytes, key_size_bytes}; }
};

Key key_bytes(uint64_t i) {
  Key k;
  std::memcpy(k.bytes, "key:", 4);
  i %= 1'000'000'000'000ull;
  for (size_t d = key_size_bytes; d > 4; d -= 2) {
    const uint64_t two = i % 100;
    i /= 100;
    k.bytes[d - 1] = static_cast<char>('0' + two % 10);
    k.bytes[d - 2] = static_cast<char>('0' + two / 10);
  }
  return k;
}

std::string key_of(uint64_t i) { return std::string(key_bytes(i).view()); }

struct Fixture {
  std::unique_ptr<Store> store;
  std::string value;
  uint64_t items = 0;
};

uint64_t items_for(size_t value_bytes) {
  return std::min<uint64_t>(items_max, value_bytes_total_max / value_bytes);
}

// One filled store per value size, built once and shared by every thread.
Fixture& fixture(size_t value_bytes) {
  static std::mutex mutex;
  static std::map<size_t, std::unique_ptr<Fixture>> fixtures;
  std::lock_guard<std::mutex> lock(mutex);
  auto& f = fixtures[value_bytes];
  if (f) return *f;
  // Only one fixture alive at a time keeps the machine's memory in check.
  fixtures.clear();
  auto& g = fixtures[value_bytes];
  g = std::make_unique<Fixture>();
  g->items = items_for(value_bytes);
  StoreConfig c;
  // Room for every item twice over, so the timed PUTs never evict.
  c.memory_limit_bytes = 2 * g->items * (value_bytes + key_size_bytes + 8) + (64ull << 20);
  g->store = std::make_unique<Store>(c);
  g->value.assign(value_bytes, 'v');
  StoreThread t(*g->store);
  for (uint64_t i = 0; i < g->items; ++i) t.put(key_bytes(i).view(), g->value);
  return *g;
}

// One thread of a benchmark on the filled store of the value size in
// range(0): its own StoreThread and its own random stream of stored keys.
struct StoreRun {
  explicit StoreRun(benchmark::State& state)
      : value_bytes(static_cast<size_t>(state.range(0))),
        f(fixture(value_bytes)),
        t(*f.store),
        rng(static_cast<uint64_t>(state.thread_index()) + 1) {}

  Key random_key() { return key_bytes(rng() % f.items); }

  const size_t value_bytes;
  Fixture& f;
  StoreThread t;
  std::mt19937_64 rng;
};

void report(benchmark::State& state, const Fixture& f, uint64_t value_bytes,
            uint64_t ops_per_iteration = 1) {
  const uint64_t ops = state.iterations() * ops_per_iteration;
  state.SetItemsProcessed(static_cast<int64_t>(ops));
  state.SetBytesProcessed(static_cast<int64_t>(ops * value_bytes));
  state.counters["items_in_store"] = static_cast<double>(f.items);
}

void BM_get_hit(benchmark::State& state) {
  StoreRun run(state);
  std::string out(run.value_bytes, '\0');
  for (auto _ : state) {
    const Key key = run.random_key();
    const bool hit = run.t.get(key.view(), [&](const ItemView& v) { v.copy_value(0, out.data(), v.value_size()); });
    benchmark::DoNotOptimize(hit);
  }
  report(state, run.f, run.value_bytes);
}

void BM_get_miss(benchmark::State& state) {
  StoreRun run(state);
  for (auto _ : state) {
    Key key = run.random_key();
    key.bytes[4] = static_cast<char>('A' + run.rng() % 26);  // never stored: keys start "key:0"
    const bool hit = run.t.get(key.view(), [](const ItemView&) {});
    benchmark::DoNotOptimize(hit);
  }
  report(state, run.f, 0);
}

void BM_put(benchmark::State& state) {
  StoreRun run(state);
  for (auto _ : state) {
    const PutStatus s = run.t.put(run.random_key().view(), run.f.value);
    benchmark::DoNotOptimize(s);
  }
  report(state, run.f, run.value_bytes);
}

void BM_mix_90_10(benchmark::State& state) {
  StoreRun run(state);
  std::string out(run.value_bytes, '\0');
  uint64_t n = 0;
  for (auto _ : state) {
    const Key key = run.random_key();
    if ((++n % 10) == 0) {
      benchmark::DoNotOptimize(run.t.put(key.view(), run.f.value));
    } else {
      benchmark::DoNotOptimize(run.t.get(
          key.view(), [&](const ItemView& v) { v.copy_value(0, out.data(), v.value_size()); }));
    }
  }
  report(state, run.f, run.value_bytes);
}

// The same mix as a server runs the pipelined requests of one receive: 16
// at a time, their keys handed to StoreThread::prefetch first, then each
// request in order. One iteration is one batch; items_per_second counts
// requests.
void BM_mix_90_10_batched(benchmark::State& state) {
  constexpr size_t batch_size = 16;
  StoreRun run(state);
  std::string out(run.value_bytes, '\0');
  Key keys[batch_size];
  std::string_view views[batch_size];
  uint64_t n = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < batch_size; ++i) {
      keys[i] = run.random_key();
      views[i] = keys[i].view();
    }
    run.t.prefetch(views);
    for (size_t i = 0; i < batch_size; ++i) {
      if ((++n % 10) == 0) {
        benchmark::DoNotOptimize(run.t.put(views[i], run.f.value));
      } else {
        benchmark::DoNotOptimize(run.t.get(
            views[i], [&](const ItemView& v) { v.copy_value(0, out.data(), v.value_size()); }));
      }
    }
  }
  report(state, run.f, run.value_bytes, batch_size);
}

#define STORE_ARGS ->Arg(16)->Arg(100)->Arg(1024)->Arg(4096)->Arg(65536)->Threads(1)->Threads(2)->UseRealTime()
BENCHMARK(BM_get_hit) STORE_ARGS;
BENCHMARK(BM_get_miss)->Arg(100)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_put) STORE_ARGS;
BENCHMARK(BM_mix_90_10) STORE_ARGS;
BENCHMARK(BM_mix_90_10_batched)->Arg(16)->Arg(100)->Arg(1024)->Threads(1)->Threads(2)->UseRealTime();

// Evicting one 1 MiB segment of 100-byte items: unlink every item from the
// index, wait for readers, recycle the block.
void BM_evict_segment(benchmark::State& state) {
  StoreConfig c;
  c.memory_limit_bytes = 256ull << 20;
  Store store(c);
  StoreThread t(store);
  const std::string value(100, 'v');
  uint64_t next = 0, evicted = 0, items_before = 0;
  auto refill = [&] {
    for (int i = 0; i < 200'000; ++i) t.put(key_of(next++), value);
    t.seal_open_segments();
  };
  refill();
  for (auto _ : state) {
    if (!t.evict_oldest()) {
      state.PauseTiming();
      refill();
      state.ResumeTiming();
      t.evict_oldest();
    }
    ++evicted;
  }
  items_before = store.stats().evictions;
  state.counters["items_per_segment"] =
      static_cast<double>(items_before) / static_cast<double>(store.stats().evicted_segments);
  state.SetItemsProcessed(static_cast<int64_t>(evicted));
}
BENCHMARK(BM_evict_segment)->Unit(benchmark::kMicrosecond);

// Overhead per item: everything the store spends beyond key and value bytes,
// measured on a store of 1 M items of 100-byte values. Arg 0: no optional
// field; arg 1: every field (flags, expiry, replication version).
void BM_overhead_per_item(benchmark::State& state) {
  const bool every_field = state.range(0) == 1;
  for (auto _ : state) {
    StoreConfig c;
    c.memory_limit_bytes = 160ull << 20;
    c.versioned = every_field;
    Store store(c);
    StoreThread t(store);
    const std::string value(100, 'v');
    ItemMeta meta;
    if (every_field) {
      meta.flags = 42;
      meta.expires_at = store.now_s() + 3600;
      meta.version = 0x0123456789abcdefull;
    }
    for (uint64_t i = 0; i < items_max; ++i) t.put(key_of(i), value, meta);
    const StoreStats s = store.stats();
    const double items = static_cast<double>(s.keys);
    state.counters["keys"] = items;
    state.counters["index_bytes_per_item"] = static_cast<double>(s.index_bytes) / items;
    state.counters["header_bytes_per_item"] =
        static_cast<double>(s.item_bytes - s.live_bytes) / items;
    state.counters["overhead_bytes_per_item"] =
        static_cast<double>(s.index_bytes + s.item_bytes - s.live_bytes) / items;
    // Memory holding user data (key + value) out of all the store holds.
    state.counters["user_data_fraction"] =
        static_cast<double>(s.live_bytes) / static_cast<double>(s.blocks_bytes + s.index_bytes);
  }
}
BENCHMARK(BM_overhead_per_item)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

// The assignment's comparison point: a 64 MiB budget filled beyond capacity
// with 100-byte values (evicting all along); how much of it holds user data.
void BM_fill_64mib_100b(benchmark::State& state) {
  for (auto _ : state) {
    StoreConfig c;
    c.memory_limit_bytes = 64ull << 20;
    Store store(c);
    StoreThread t(store);
    const std::string value(100, 'v');
    for (uint64_t i = 0; i < 1'500'000; ++i) t.put(key_of(i), value);
    const StoreStats s = store.stats();
    state.counters["keys"] = static_cast<double>(s.keys);
    state.counters["user_data_fraction_of_limit"] =
        static_cast<double>(s.live_bytes) / static_cast<double>(c.memory_limit_bytes);
    state.counters["values_fraction_of_limit"] =
        static_cast<double>(s.keys * 100) / static_cast<double>(c.memory_limit_bytes);
  }
}
BENCHMARK(BM_fill_64mib_100b)->Iterations(1)->Unit(benchmark::kMillisecond);

// Why FIFO by segment: its hit ratio next to an exact LRU holding the same
// number of items, on a Zipf(0.99) trace over 1 M keys (GET, and PUT on a
// miss, as a cache-aside client does). The store runs at a 32 MiB budget;
// the LRU gets exactly as many items as the store held on average.
void BM_hit_ratio_zipf(benchmark::State& state) {
  constexpr uint64_t key_count = 1'000'000;
  constexpr uint64_t request_count = 4'000'000;
  const std::string value(100, 'v');
  // Zipf sampler: inverse CDF over precomputed cumulative weights.
  std::vector<double> cdf(key_count);
  double sum = 0;
  for (uint64_t i = 0; i < key_count; ++i) {
    sum += 1.0 / std::pow(static_cast<double>(i + 1), 0.99);
    cdf[i] = sum;
  }
  std::vector<uint32_t> trace(request_count);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, sum);
  for (auto& k : trace) {
    k = static_cast<uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    k = static_cast<uint32_t>((uint64_t{k} * 0x9E3779B97F4A7C15ull) % key_count);  // scatter ranks
  }
  for (auto _ : state) {
    StoreConfig c;
    c.memory_limit_bytes = 32ull << 20;
    Store store(c);
    StoreThread t(store);
    uint64_t hits = 0, held = 0, samples = 0;
    for (uint64_t i = 0; i < request_count; ++i) {
      const std::string key = key_of(trace[i]);
      if (t.get(key, [](const ItemView&) {})) {
        ++hits;
      } else {
        t.put(key, value);
      }
      if (i % 1000 == 0 && i > request_count / 4) {
        held += store.stats().keys;
        ++samples;
      }
    }
    const uint64_t capacity = held / samples;
    std::list<uint32_t> lru;
    std::unordered_map<uint32_t, std::list<uint32_t>::iterator> where;
    uint64_t lru_hits = 0;
    for (uint32_t k : trace) {
      auto it = where.find(k);
      if (it != where.end()) {
        ++lru_hits;
        lru.splice(lru.begin(), lru, it->second);
        continue;
      }
      lru.push_front(k);
      where[k] = lru.begin();
      if (lru.size() > capacity) {
        where.erase(lru.back());
        lru.pop_back();
      }
    }
    state.counters["items_held"] = static_cast<double>(capacity);
    state.counters["fifo_segment_hit_ratio"] = static_cast<double>(hits) / request_count;
    state.counters["lru_same_items_hit_ratio"] = static_cast<double>(lru_hits) / request_count;
  }
}
BENCHMARK(BM_hit_ratio_zipf)->Iterations(1)->Unit(benchmark::kMillisecond);

// Overwrites leave dead bytes in old segments. With data that fits in the
// budget (4 KiB values x 10,000 keys = 41 MB at 64 MiB, or 64 KiB x 500 =
// 33 MB), a 90/10 GET/PUT mix should keep nearly everything.
void BM_overwrite_hit_ratio(benchmark::State& state) {
  const auto value_bytes = static_cast<size_t>(state.range(0));
  const auto keys = static_cast<uint64_t>(state.range(1));
  for (auto _ : state) {
    StoreConfig c;
    c.memory_limit_bytes = 64ull << 20;
    Store store(c);
    StoreThread t(store);
    const std::string value(value_bytes, 'v');
    for (uint64_t i = 0; i < keys; ++i) t.put(key_of(i), value);
    std::mt19937_64 rng(3);
    uint64_t gets = 0, hits = 0;
    for (uint64_t i = 0; i < 400'000; ++i) {
      const std::string key = key_of(rng() % keys);
      if (i % 10 == 0) {
        t.put(key, value);
      } else {
        ++gets;
        if (t.get(key, [](const ItemView&) {})) {
          ++hits;
        } else {
          t.put(key, value);  // cache-aside refill
        }
      }
    }
    state.counters["hit_ratio"] = static_cast<double>(hits) / static_cast<double>(gets);
    state.counters["evictions"] = static_cast<double>(store.stats().evictions);
  }
}
BENCHMARK(BM_overwrite_hit_ratio)->Args({4096, 10000})->Args({65536, 500})->Args({100, 300000})
    ->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
