// Versions and the hybrid logical clock (server/replication/version_clock.h).
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "server/replication/version_clock.h"

using namespace ringcache::replication;

namespace {

std::atomic<uint64_t> fake_ms{version_epoch_unix_ms + 1'000'000};
uint64_t fake_clock() { return fake_ms.load(std::memory_order_relaxed); }

}  // namespace

TEST_CASE("the version layout is pinned: 42 physical, 10 logical, 12 tag bits") {
  static_assert(make_version(0, 1) == 1);
  static_assert(make_version(1, 0) == 1u << 12);
  static_assert(version_tag(make_version(12345, 4095)) == 4095);
  static_assert(version_hlc(make_version(12345, 7)) == 12345);
  // One millisecond is one step of the physical part, above 22 lower bits.
  const uint64_t ms = 5000;
  const uint64_t v = make_version(ms << version_logical_bits, 9);
  CHECK(version_unix_ms(v) == version_epoch_unix_ms + ms);
  CHECK(v == (ms << 22 | 9));
  // The largest physical value fits: the year 2159 is still representable.
  const uint64_t top = make_version(((1ull << 42) - 1) << 10 | 1023, 4095);
  CHECK(top == ~0ull);
}

TEST_CASE("node tags: decimal ids 1-4095 are their own tag, others hash into 1-4095") {
  CHECK(node_tag_of("1") == 1);
  CHECK(node_tag_of("4095") == 4095);
  CHECK(node_tag_of("17") == 17);
  for (const char* id : {"0", "4096", "007", "-3", "a", "node-1", "ringcache-west-2", "1a"}) {
    const uint16_t tag = node_tag_of(id);
    CHECK(tag >= 1);
    CHECK(tag <= node_tag_max);
  }
  // Stable across runs and builds (FNV-1a): a golden value.
  CHECK(node_tag_of("node-a") == node_tag_of("node-a"));
  CHECK(node_tag_of("node-a") == 3442);  // FNV-1a 64 of "node-a", mod 4095, + 1
  CHECK(node_tag_of("node-a") != node_tag_of("node-b"));
}

TEST_CASE("next() follows the wall clock and never repeats when it stands still") {
  fake_ms = version_epoch_unix_ms + 2'000'000;
  HybridClock clock(5, &fake_clock);
  const uint64_t a = clock.next();
  CHECK(version_tag(a) == 5);
  CHECK(version_unix_ms(a) == fake_ms.load());
  const uint64_t b = clock.next();
  const uint64_t c = clock.next();
  CHECK(b > a);
  CHECK(c > b);
  CHECK(version_unix_ms(c) == fake_ms.load());  // same millisecond: the logical part counts
  fake_ms += 10;
  const uint64_t d = clock.next();
  CHECK(version_unix_ms(d) == fake_ms.load());
  CHECK((version_hlc(d) & 1023) == 0);  // a new millisecond restarts the counter
}

TEST_CASE("a wall clock that goes backwards does not make versions go backwards") {
  fake_ms = version_epoch_unix_ms + 3'000'000;
  HybridClock clock(2, &fake_clock);
  const uint64_t before = clock.next();
  fake_ms -= 60'000;
  const uint64_t after = clock.next();
  CHECK(after > before);
  CHECK(version_unix_ms(after) == version_unix_ms(before));
}

TEST_CASE("more than 1024 versions in one millisecond carry into the physical part") {
  fake_ms = version_epoch_unix_ms + 4'000'000;
  HybridClock clock(3, &fake_clock);
  uint64_t last = 0;
  for (int i = 0; i < 3000; ++i) {
    const uint64_t v = clock.next();
    CHECK(v > last);
    last = v;
  }
  CHECK(version_unix_ms(last) == fake_ms.load() + 2);  // ran two ms ahead, no repeat
}

TEST_CASE("observe() moves the clock past a peer's version, so the next local write wins") {
  fake_ms = version_epoch_unix_ms + 5'000'000;
  HybridClock local(1, &fake_clock);
  // A peer whose clock is 5 s ahead, with a higher tag.
  const uint64_t remote = make_version((5'005'000ull << 10) | 7, 4000);
  CHECK(local.next() < remote);
  local.observe(remote);
  const uint64_t mine = local.next();
  CHECK(mine > remote);
  // Observing an older version changes nothing.
  local.observe(make_version(1, 9));
  CHECK(local.next() > mine);
}

TEST_CASE("concurrent writes on two nodes in the same millisecond are ordered by tag") {
  fake_ms = version_epoch_unix_ms + 6'000'000;
  HybridClock a(10, &fake_clock);
  HybridClock b(20, &fake_clock);
  const uint64_t va = a.next();
  const uint64_t vb = b.next();
  CHECK(version_hlc(va) == version_hlc(vb));
  CHECK(vb > va);  // every node compares the same u64s and picks the same winner
}

TEST_CASE("next() is unique and increasing per thread under contention") {
  HybridClock clock(77);
  constexpr int threads = 4;
  constexpr int per_thread = 50'000;
  std::vector<std::vector<uint64_t>> seen(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      seen[t].reserve(per_thread);
      for (int i = 0; i < per_thread; ++i) seen[t].push_back(clock.next());
    });
  }
  for (auto& w : workers) w.join();
  std::set<uint64_t> all;
  for (const auto& s : seen) {
    for (size_t i = 1; i < s.size(); ++i) REQUIRE(s[i] > s[i - 1]);
    all.insert(s.begin(), s.end());
  }
  CHECK(all.size() == static_cast<size_t>(threads) * per_thread);
}

TEST_CASE("regression: observing the largest version saturates the clock instead of overflowing it") {
  // Issue 11: a forged PUT near the top of the 52-bit HLC made the next
  // local writes overflow into the tag bits (an assertion, or in a release
  // build versions that wrapped and lost to older writes).
  HybridClock clock(7, &fake_clock);
  clock.observe(~0ull);
  CHECK(clock.current_hlc() == hlc_max);
  const uint64_t first = clock.next();
  const uint64_t second = clock.next();
  CHECK(version_hlc(first) == hlc_max);
  CHECK(version_tag(first) == 7);
  CHECK(second == first);  // saturated: repeats, never wraps below
  clock.observe(make_version(hlc_max - 5, 9));
  CHECK(clock.current_hlc() == hlc_max);
}

TEST_CASE("a wall clock past the 42-bit range saturates the physical part") {
  static std::atomic<uint64_t> far_ms{0};
  far_ms = version_epoch_unix_ms + (version_physical_max + 1000);
  HybridClock clock(3, [] { return far_ms.load(); });
  const uint64_t v = clock.next();
  CHECK(version_hlc(v) == version_physical_max << version_logical_bits);
  CHECK(clock.next() > v);
}

TEST_CASE("wall_ms is the clock the HLC follows") {
  HybridClock clock(3, &fake_clock);
  CHECK(clock.wall_ms() == fake_clock());
}
