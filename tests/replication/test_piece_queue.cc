// PieceQueue: copied bytes and pinned store values written in order, with
// partial writes at any point.
#include <doctest/doctest.h>

#include <sys/uio.h>

#include <string>

#include "repl_test_util.h"
#include "server/replication/piece_queue.h"

using namespace repl_test;

namespace {

// Drains the queue `step` bytes at a time, as short writes would.
std::string drain(PieceQueue& queue, size_t step) {
  std::string out;
  iovec iov[4];
  while (!queue.empty()) {
    const size_t count = queue.gather(iov, 4);
    REQUIRE(count > 0);
    size_t budget = step;
    size_t taken = 0;
    for (size_t i = 0; i < count && budget > 0; ++i) {
      const size_t n = std::min(budget, iov[i].iov_len);
      out.append(static_cast<const char*>(iov[i].iov_base), n);
      budget -= n;
      taken += n;
    }
    queue.consume(taken);
  }
  return out;
}

}  // namespace

TEST_CASE("bytes and pinned values come out in order whatever the write sizes") {
  store::Store store(versioned_config());
  store::StoreThread thread(store);
  std::string big(3 * 1024 * 1024 + 5, '\0');  // a chunked (large) item
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  REQUIRE(thread.put("big", big, store::ItemMeta{0, 0, 5}) == store::PutStatus::stored);
  REQUIRE(thread.put("small", "tiny", store::ItemMeta{0, 0, 6}) == store::PutStatus::stored);
  for (const size_t step : {size_t{1} << 30, size_t{100000}, size_t{4093}}) {
    PieceQueue queue;
    queue.tail_bytes() += "head-";
    thread.get("big", [&](const store::ItemView& v) { queue.append_pinned(v.pin()); });
    queue.tail_bytes() += "-middle-";
    thread.get("small", [&](const store::ItemView& v) { queue.append_pinned(v.pin()); });
    queue.tail_bytes() += "-tail";
    CHECK(queue.pins() == 2);
    CHECK(queue.unsent_bytes() == 5 + big.size() + 8 + 4 + 5);
    CHECK(drain(queue, step) == "head-" + big + "-middle-tiny-tail");
    CHECK(queue.pins() == 0);
    CHECK(queue.unsent_bytes() == 0);
  }
}

TEST_CASE("a pinned value survives being overwritten and evicted before it is sent") {
  store::Store store(versioned_config(8 * store::mib_bytes));
  store::StoreThread thread(store);
  const std::string value(200 * 1024, 'p');
  REQUIRE(thread.put("v", value, store::ItemMeta{0, 0, 1}) == store::PutStatus::stored);
  PieceQueue queue;
  thread.get("v", [&](const store::ItemView& v) { queue.append_pinned(v.pin()); });
  REQUIRE(thread.put("v", "new", store::ItemMeta{0, 0, 2}) == store::PutStatus::stored);
  thread.seal_open_segments();
  while (thread.evict_oldest()) {
  }
  CHECK(drain(queue, 65536) == value);
}

TEST_CASE("an empty queue offers nothing; clear drops pins") {
  store::Store store(versioned_config());
  store::StoreThread thread(store);
  REQUIRE(thread.put("k", "value", store::ItemMeta{0, 0, 1}) == store::PutStatus::stored);
  PieceQueue queue;
  CHECK(queue.empty());
  (void)queue.tail_bytes();
  CHECK(queue.empty());
  thread.get("k", [&](const store::ItemView& v) { queue.append_pinned(v.pin()); });
  CHECK(!queue.empty());
  queue.clear();
  CHECK(queue.empty());
  CHECK(queue.pins() == 0);
}
