// PeerResolver: a peer's name resolved on a thread of its own, its answer
// taken by the replication thread once the resolver says it is in. Only
// "localhost" is resolved (from /etc/hosts: no DNS server is asked); a DNS
// that never answers is tests/e2e/test_replication_dns.py's.
#include <doctest/doctest.h>

#include <netinet/in.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/replication/peer_resolver.h"

using namespace ringcache::replication;

namespace {

constexpr auto answer_wait_max = std::chrono::seconds(10);

// What the resolver calls when an answer is in: counts, and lets the test wait.
struct Wakeups {
  std::mutex mutex;
  std::condition_variable changed;
  int count = 0;

  void add() {
    const std::lock_guard lock(mutex);
    ++count;
    changed.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, answer_wait_max, [&] { return count >= n; });
  }
};

PeerAddress localhost_peer(uint16_t port) {
  PeerAddress peer;
  std::string error;
  REQUIRE(parse_peer_address("localhost:" + std::to_string(port), peer, error));
  return peer;
}

}  // namespace

TEST_CASE("numeric hosts need no resolver; names do") {
  CHECK(is_numeric_host("127.0.0.1"));
  CHECK(is_numeric_host("10.1.2.3"));
  CHECK(is_numeric_host("::1"));
  CHECK(is_numeric_host("fe80::1"));
  CHECK(!is_numeric_host("localhost"));
  CHECK(!is_numeric_host("cache-2.internal"));
  CHECK(!is_numeric_host("10.1.2"));
  CHECK(!is_numeric_host(""));
}

TEST_CASE("a name is resolved on the resolver's thread, which wakes the caller once per answer") {
  Wakeups wakeups;
  PeerResolver resolver(localhost_peer(8889), [&] { wakeups.add(); });
  std::string error;
  REQUIRE(resolver.start(error));
  for (int round = 1; round <= 3; ++round) {
    resolver.ask();
    REQUIRE(wakeups.wait_for(round));
    std::vector<ResolvedAddress> addresses;
    REQUIRE(resolver.take(addresses, error) == PeerResolver::Answer::resolved);
    REQUIRE(!addresses.empty());
    CHECK(format_address(addresses.front()) == "127.0.0.1:8889");
  }
  // Nothing more was asked: no more wake-ups.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::lock_guard lock(wakeups.mutex);
  CHECK(wakeups.count == 3);
}

TEST_CASE("asking again before the answer is taken starts no second resolution: one answer serves both") {
  Wakeups wakeups;
  PeerResolver resolver(localhost_peer(8889), [&] { wakeups.add(); });
  std::string error;
  REQUIRE(resolver.start(error));
  resolver.ask();
  resolver.ask();
  REQUIRE(wakeups.wait_for(1));
  resolver.ask();  // answered, not taken yet
  std::vector<ResolvedAddress> addresses;
  REQUIRE(resolver.take(addresses, error) == PeerResolver::Answer::resolved);
  CHECK(!addresses.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::lock_guard lock(wakeups.mutex);
  CHECK(wakeups.count == 1);
}

TEST_CASE("a resolver ended while it resolves returns at once and calls nobody after") {
  auto wakeups = std::make_shared<Wakeups>();
  for (int i = 0; i < 20; ++i) {
    {
      PeerResolver resolver(localhost_peer(2), [wakeups] { wakeups->add(); });
      std::string error;
      REQUIRE(resolver.start(error));
      resolver.ask();
    }
    const int after_end = [&] {
      const std::lock_guard lock(wakeups->mutex);
      return wakeups->count;
    }();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const std::lock_guard lock(wakeups->mutex);
    CHECK(wakeups->count == after_end);
  }
}

TEST_CASE("a resolver never asked ends at once") {
  PeerResolver unstarted(localhost_peer(3), [] { FAIL("no answer was asked for"); });
  PeerResolver started(localhost_peer(3), [] { FAIL("no answer was asked for"); });
  std::string error;
  REQUIRE(started.start(error));
}
