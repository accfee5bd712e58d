// OutputQueue (output_queue.h): replies leave in order, whatever the mix of
// copied bytes and pinned store values and however short the sends are; the
// memory it reports (held_bytes, pins) is what the pause logic relies on.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "server/io/output_queue.h"
#include "server/process/pinned_value.h"
#include "store/store.h"
#include "tests/server/server_test_util.h"

using namespace ringcache;
using server::OutputQueue;
using server::test::pattern;

namespace {

// Sends at most `step` bytes per round through gather/consume, as short
// kernel sends would, and returns what came out.
std::string drain(OutputQueue& queue, size_t iov_max, size_t step) {
  std::string out;
  std::vector<iovec> iov(iov_max);
  while (!queue.empty()) {
    const size_t count = queue.gather(iov.data(), iov_max);
    REQUIRE(count > 0);
    REQUIRE(count <= iov_max);
    size_t taken = 0;
    for (size_t i = 0; i < count && taken < step; ++i) {
      const size_t n = std::min(iov[i].iov_len, step - taken);
      out.append(static_cast<const char*>(iov[i].iov_base), n);
      taken += n;
    }
    queue.consume(taken);
  }
  return out;
}

std::unique_ptr<server::PinnedValue> pin_stored(store::StoreThread& thread, std::string_view key) {
  std::unique_ptr<server::PinnedValue> pin;
  const bool found = thread.get(key, [&](const store::ItemView& item) { pin = server::pin_value(item); });
  REQUIRE(found);
  return pin;
}

}  // namespace

TEST_CASE("an empty queue holds nothing") {
  OutputQueue queue;
  CHECK(queue.empty());
  CHECK(queue.held_bytes() == 0);
  CHECK(queue.pending_bytes() == 0);
  CHECK(queue.pins() == 0);
  iovec iov[4];
  CHECK(queue.gather(iov, 4) == 0);
}

TEST_CASE("copied bytes come out in order through short sends") {
  OutputQueue queue;
  std::string expected;
  for (unsigned i = 0; i < 500; ++i) {
    const std::string piece = pattern(i % 97 + 1, i);
    queue.append(piece);
    expected += piece;
  }
  CHECK(queue.pending_bytes() == expected.size());
  CHECK(queue.held_bytes() >= expected.size());
  for (const size_t step : {1ul, 7ul, 4096ul, 1ul << 20}) {
    OutputQueue copy;
    copy.append(expected);
    CHECK(drain(copy, 3, step) == expected);
    CHECK(copy.held_bytes() == 0);
  }
  CHECK(drain(queue, 64, 1000) == expected);
  CHECK(queue.empty());
  CHECK(queue.held_bytes() == 0);
  CHECK(queue.pending_bytes() == 0);
}

TEST_CASE("blocks start small and never exceed the maximum") {
  OutputQueue queue;
  queue.append("x");
  CHECK(queue.held_bytes() == server::output_block_bytes_min);
  const std::string big = pattern(100 * 1024, 3);
  queue.append(big);
  std::vector<iovec> iov(256);
  const size_t count = queue.gather(iov.data(), iov.size());
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    CHECK(iov[i].iov_len <= server::output_block_bytes_max);
    total += iov[i].iov_len;
  }
  CHECK(total == big.size() + 1);
  // Held memory stays within one block of what is queued.
  CHECK(queue.held_bytes() <= total + server::output_block_bytes_max);
  queue.consume(total);
  CHECK(queue.empty());
  CHECK(queue.held_bytes() == 0);
}

TEST_CASE("appends while a send is in flight do not move the bytes handed out") {
  OutputQueue queue;
  queue.append("abc");
  iovec iov[8];
  REQUIRE(queue.gather(iov, 8) == 1);
  const void* base = iov[0].iov_base;
  for (int i = 0; i < 100; ++i) queue.append(pattern(300, static_cast<unsigned>(i)));
  CHECK(std::string_view(static_cast<const char*>(base), 3) == "abc");
  queue.consume(2);
  REQUIRE(queue.gather(iov, 8) >= 1);
  CHECK(static_cast<const char*>(iov[0].iov_base)[0] == 'c');
}

TEST_CASE("pinned values are sent from the store, interleaved in order") {
  store::StoreConfig config;
  config.memory_limit_bytes = 64 * store::mib_bytes;
  store::Store store(config);
  store::StoreThread thread(store);
  const std::string large = pattern(3 * 1024 * 1024 + 17, 11);  // chunked: larger than a segment
  const std::string medium = pattern(100 * 1024, 12);
  REQUIRE(thread.put("large", large) == store::PutStatus::stored);
  REQUIRE(thread.put("medium", medium) == store::PutStatus::stored);

  for (const size_t step : {1000ul, 65536ul, 1ul << 22}) {
    for (const size_t iov_max : {1ul, 2ul, 64ul}) {
      OutputQueue queue;
      queue.append("head");
      queue.append_pinned(pin_stored(thread, "large"));
      queue.append("middle");
      queue.append_pinned(pin_stored(thread, "medium"));
      queue.append("tail");
      CHECK(queue.pins() == 2);
      CHECK(queue.pending_bytes() == 4 + large.size() + 6 + medium.size() + 4);
      const std::string out = drain(queue, iov_max, step);
      CHECK(out.size() == 4 + large.size() + 6 + medium.size() + 4);
      CHECK(out == "head" + large + "middle" + medium + "tail");
      CHECK(queue.pins() == 0);
      CHECK(queue.held_bytes() == 0);
    }
  }
}

TEST_CASE("a pin is released as soon as its value is sent") {
  store::StoreConfig config;
  config.memory_limit_bytes = 64 * store::mib_bytes;
  store::Store store(config);
  store::StoreThread thread(store);
  const std::string value = pattern(200 * 1024, 5);
  REQUIRE(thread.put("k", value) == store::PutStatus::stored);
  OutputQueue queue;
  queue.append_pinned(pin_stored(thread, "k"));
  queue.append("after");
  CHECK(queue.pins() == 1);
  queue.consume(value.size() - 1);
  CHECK(queue.pins() == 1);
  queue.consume(1);
  CHECK(queue.pins() == 0);
  CHECK(queue.pending_bytes() == 5);
  queue.clear();
  CHECK(queue.empty());
}

TEST_CASE("clear drops pins and blocks") {
  store::StoreConfig config;
  config.memory_limit_bytes = 64 * store::mib_bytes;
  store::Store store(config);
  store::StoreThread thread(store);
  REQUIRE(thread.put("k", pattern(50 * 1024, 1)) == store::PutStatus::stored);
  OutputQueue queue;
  queue.append(pattern(40000, 2));
  queue.append_pinned(pin_stored(thread, "k"));
  queue.clear();
  CHECK(queue.empty());
  CHECK(queue.pins() == 0);
  CHECK(queue.held_bytes() == 0);
  CHECK(queue.pending_bytes() == 0);
}
