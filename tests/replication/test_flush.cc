// flush_all with replication: the threshold a text flush_all chooses
// (client_writes.h), a FLUSH applied by IncomingStream, and flushes carried
// by a running Replicator, live and before a resync. Every wait is bounded.
#include <doctest/doctest.h>

#include <atomic>
#include <string>

#include "repl_test_util.h"
#include "server/replication/client_writes.h"

using namespace repl_test;

namespace {

// The stores' seconds clock, moved by hand to reach a delayed flush's time.
std::atomic<uint32_t> fake_now_s{0};
uint32_t fake_clock_s() { return fake_now_s.load(std::memory_order_relaxed); }

uint32_t real_now_s() { return static_cast<uint32_t>(wall_clock_unix_ms() / 1000); }

store::StoreConfig fake_clock_config() {
  fake_now_s = real_now_s();
  store::StoreConfig config = versioned_config();
  config.clock_s = &fake_clock_s;
  return config;
}

// A wall clock for HybridClock, in unix ms, set by the test.
std::atomic<uint64_t> fake_wall_ms{0};
uint64_t fake_wall() { return fake_wall_ms.load(std::memory_order_relaxed); }

// The FLUSH frames waiting in a worker's handoff ring (popped).
std::vector<std::pair<uint64_t, uint32_t>> handed_over_flushes(WorkerReplication& worker) {
  std::vector<std::pair<uint64_t, uint32_t>> out;
  HandoffRing::Record record{};
  while (worker.ring().peek(record)) {
    if (record.kind == HandoffKind::frame && static_cast<uint8_t>(record.payload[0]) == 207) {
      REQUIRE(record.payload.size() == flush_bytes);
      out.emplace_back(get_be(record.payload.data() + 1, 8),
                       static_cast<uint32_t>(get_be(record.payload.data() + 9, 4)));
    }
    worker.ring().pop();
  }
  return out;
}

}  // namespace

TEST_CASE("version_at_unix_ms splits the versions issued before and after an instant") {
  const uint64_t instant_ms = wall_clock_unix_ms() + 5000;
  const uint64_t threshold = version_at_unix_ms(instant_ms);
  CHECK(version_tag(threshold) == 0);
  CHECK(version_unix_ms(threshold) == instant_ms);
  for (const uint16_t tag : {uint16_t{1}, node_tag_max}) {
    HybridClock clock(tag, &fake_wall);
    fake_wall_ms = instant_ms - 1;
    // The last millisecond before, even with a full logical counter.
    for (int i = 0; i < 1023; ++i) (void)clock.next();
    CHECK(clock.next() < threshold);
    fake_wall_ms = instant_ms;
    HybridClock fresh(tag, &fake_wall);
    CHECK(fresh.next() > threshold);
  }
  CHECK(version_at_unix_ms(version_epoch_unix_ms) == 0);
  CHECK(version_at_unix_ms(1000) == 0);
}

TEST_CASE("IncomingStream: a FLUSH for now hides older versions, keeps newer ones, refuses late older writes") {
  StreamFixture f(fake_clock_config(), 1);
  auto s = f.stream();
  const uint64_t base = make_version(version_hlc(f.clock.next()) + 100, 2);
  CHECK(s.feed(put_frame("old-1", "a", base) + put_frame("old-2", "b", base + 4096)) == StreamStatus::ok);
  CHECK(s.feed(put_frame("new", "c", base + 3 * 4096)) == StreamStatus::ok);
  const uint64_t threshold = base + 2 * 4096;
  CHECK(s.feed(flush_frame(threshold, 0)) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "old-1"));
  CHECK(!get_string(f.thread, "old-2"));
  CHECK(get_string(f.thread, "new") == "c");
  CHECK(f.thread.flush_version() == threshold);
  CHECK(f.counters.flushes_received.get() == 1);
  // A write the flush superseded arrives late (another peer, a resync).
  CHECK(s.feed(put_frame("old-1", "late", threshold - 4096)) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "old-1"));
  CHECK(s.feed(put_frame("old-1", "after", threshold + 4096)) == StreamStatus::ok);
  CHECK(get_string(f.thread, "old-1") == "after");
  // This node's next write is above the flush, so it is not hidden by it.
  CHECK(f.clock.next() > threshold);
  // An older FLUSH (repeated by a resync) never lowers the threshold.
  CHECK(s.feed(flush_frame(threshold - 8 * 4096, 0)) == StreamStatus::ok);
  CHECK(f.thread.flush_version() == threshold);
  CHECK(get_string(f.thread, "new") == "c");
}

TEST_CASE("IncomingStream: a delayed FLUSH applies at its time and does not drag the clock ahead") {
  StreamFixture f(fake_clock_config(), 1);
  auto s = f.stream();
  const uint32_t at_s = fake_now_s + 5;  // within --max-clock-skew of the real clock
  const uint64_t threshold = version_at_unix_ms(uint64_t{at_s} * 1000);
  const uint64_t before = f.clock.next();
  CHECK(s.feed(put_frame("k", "v", before)) == StreamStatus::ok);
  CHECK(s.feed(flush_frame(threshold, at_s)) == StreamStatus::ok);
  CHECK(f.thread.flush_version() == 0);
  CHECK(get_string(f.thread, "k") == "v");
  // Writes made here until at_s must fall below the threshold.
  const uint64_t local = f.clock.next();
  CHECK(local < threshold);
  REQUIRE(f.thread.put("local", "l", store::ItemMeta{0, 0, local}, store::PutOptions{store::PutMode::newer, 0}) ==
          store::PutStatus::stored);
  fake_now_s = at_s;
  f.thread.expire();
  CHECK(f.thread.flush_version() == threshold);
  CHECK(!get_string(f.thread, "k"));
  CHECK(!get_string(f.thread, "local"));
  // A threshold issued by the peer's clock (tag set) is observed at once.
  const uint64_t issued = make_version(version_hlc(threshold) + 1000, 3);
  CHECK(s.feed(flush_frame(issued, at_s + 60)) == StreamStatus::ok);
  CHECK(f.clock.next() > issued);
}

TEST_CASE("flush_replicated: for now, a fresh version above everything written before, handed over") {
  SendingNode node(sender_config("flusher", {1}));
  WorkerReplication& worker = node.replicator.worker(0);
  const store::PutOptions set{store::PutMode::set, 0};
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i);
    REQUIRE(put_replicated(node.thread, worker, key, "v", {}, set) == store::PutStatus::stored);
  }
  const uint64_t last = version_of(node.thread, "k99");
  (void)handed_over_flushes(worker);
  const uint64_t threshold = flush_replicated(node.thread, worker, 0);
  CHECK(threshold > last);
  CHECK(version_tag(threshold) == node.replicator.node_tag());
  CHECK(node.thread.flush_version() == threshold);
  CHECK(contents(node.thread).empty());
  CHECK(handed_over_flushes(worker) == std::vector<std::pair<uint64_t, uint32_t>>{{threshold, 0}});
  REQUIRE(put_replicated(node.thread, worker, "after", "a", {}, set) == store::PutStatus::stored);
  CHECK(get_string(node.thread, "after") == "a");
  // An at_s that is not in the future is a flush for now.
  const uint64_t again = flush_replicated(node.thread, worker, node.store.now_s());
  CHECK(again > threshold);
  CHECK(!get_string(node.thread, "after"));
  CHECK(handed_over_flushes(worker) == std::vector<std::pair<uint64_t, uint32_t>>{{again, 0}});
}

TEST_CASE("flush_replicated: delayed, the threshold is the instant at_s, or the clock if it is already past") {
  SendingNode node(sender_config("flusher", {1}), fake_clock_config());
  WorkerReplication& worker = node.replicator.worker(0);
  const store::PutOptions set{store::PutMode::set, 0};
  REQUIRE(put_replicated(node.thread, worker, "before", "b", {}, set) == store::PutStatus::stored);
  const uint32_t at_s = fake_now_s + 20;
  const uint64_t threshold = flush_replicated(node.thread, worker, at_s);
  CHECK(threshold == version_at_unix_ms(uint64_t{at_s} * 1000));
  (void)handed_over_flushes(worker);
  // Until at_s nothing is hidden, and writes made meanwhile are below it.
  REQUIRE(put_replicated(node.thread, worker, "meanwhile", "m", {}, set) == store::PutStatus::stored);
  CHECK(version_of(node.thread, "meanwhile") < threshold);
  CHECK(get_string(node.thread, "before") == "b");
  fake_now_s = at_s;
  node.thread.expire();
  CHECK(!get_string(node.thread, "before"));
  CHECK(!get_string(node.thread, "meanwhile"));

  // A clock already past at_s (it observed a peer far ahead): the fresh
  // version wins, so what this node acknowledged before still goes.
  const uint64_t ahead = version_at_unix_ms(wall_clock_unix_ms() + 3'600'000) + 5;
  node.replicator.clock().observe(ahead);
  REQUIRE(put_replicated(node.thread, worker, "stamped-ahead", "s", {}, set) == store::PutStatus::stored);
  const uint32_t soon = fake_now_s + 10;
  const uint64_t raised = flush_replicated(node.thread, worker, soon);
  CHECK(raised > version_of(node.thread, "stamped-ahead"));
  CHECK(raised > version_at_unix_ms(uint64_t{soon} * 1000));
  CHECK(handed_over_flushes(worker) == std::vector<std::pair<uint64_t, uint32_t>>{{raised, soon}});
  fake_now_s = soon;
  node.thread.expire();
  CHECK(!get_string(node.thread, "stamped-ahead"));
}

TEST_CASE("a Replicator carries flush_all to its peers, and a peer that missed it learns it at resync") {
  LogCapture::clear();
  ReceivingPeer live;
  ReceivingPeer late(false);  // not listening yet: it misses the flush
  SendingNode node(sender_config("origin", {live.port, late.port}));
  node.start();
  WorkerReplication& worker = node.replicator.worker(0);
  const store::PutOptions set{store::PutMode::set, 0};
  for (int i = 0; i < 50; ++i) {
    const std::string key = "k" + std::to_string(i);
    REQUIRE(put_replicated(node.thread, worker, key, "v", {}, set) == store::PutStatus::stored);
  }
  store::StoreThread live_thread(live.store);
  store::StoreThread late_thread(late.store);
  CHECK(wait_until([&] { return contents(live_thread).size() == 50; }));
  // The late peer holds writes a second old of its own (it was cut off, say).
  const uint64_t second_ago = (wall_clock_unix_ms() - version_epoch_unix_ms - 1000) << version_logical_bits;
  for (int i = 0; i < 20; ++i) {
    const store::ItemMeta stale{0, 0, make_version(second_ago + i, 77)};
    REQUIRE(late_thread.put("stale-" + std::to_string(i), "s", stale) == store::PutStatus::stored);
  }

  const uint64_t threshold = flush_replicated(node.thread, worker, 0);
  REQUIRE(put_replicated(node.thread, worker, "after-flush", "kept", {}, set) == store::PutStatus::stored);
  CHECK(wait_until([&] { return live_thread.flush_version() == threshold; }));
  CHECK(wait_until([&] { return contents(live_thread) == contents(node.thread); }));
  CHECK(contents(live_thread).size() == 1);
  CHECK(live.receiver.counters().flushes_received.get() == 1);

  late.receiver.start_listening();
  CHECK(wait_until([&] { return late_thread.flush_version() == threshold; }));
  CHECK(wait_until([&] { return contents(late_thread) == contents(node.thread); }));
  CHECK(get_string(late_thread, "after-flush") == "kept");
  CHECK(late.receiver.counters().flushes_received.get() == 1);
}
