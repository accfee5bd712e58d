// Connection + BinarySession + BinaryProcessor against a real store: the replies docs/binary_protocol.md
// promises, whatever way the bytes are split, and the bounds that keep a
// client that does not read from holding more than its share.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "server/io/connection.h"
#include "server/io/value_copy.h"
#include "server/process/binary_process.h"
#include "server/process/binary_session.h"
#include "server/process/binary_stats.h"
#include "store/store.h"
#include "tests/server/server_test_util.h"

using namespace ringcache;
using namespace ringcache::server;
using ringcache::server::test::pattern;
using ringcache::server::test::take_output;

namespace {

constexpr char op_put = 11, op_del = 12, op_get = 13, op_stats = 21;
constexpr char ok = 101, einval = 111, enotfound = 112, ebig = 114;

std::string field(std::string_view bytes) {
  std::string out(4, '\0');
  const auto n = static_cast<uint32_t>(bytes.size());
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
  return out + std::string(bytes);
}

std::string put(std::string_view key, std::string_view value) {
  return op_put + field(key) + field(value);
}
std::string get(std::string_view key) { return op_get + field(key); }
std::string del(std::string_view key) { return op_del + field(key); }
std::string ok_value(std::string_view value) { return ok + field(value); }

std::string repeated(std::string_view piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += piece;
  return out;
}

struct Fixture {
  explicit Fixture(uint64_t item_bytes_max = 1024 * 1024)
      : store(test::test_store_config()),
        thread(store),
        registry(1),
        budget(1 << 30),
        write(WritePath::make(thread, nullptr, 0)),
        processor(thread, *write, registry.thread(0), registry, budget, item_bytes_max) {
    limits.item_bytes_max = item_bytes_max;
  }

  std::unique_ptr<Session> session() {
    return std::make_unique<BinarySession>(processor, limits, 3, nullptr,
                                           ConnectionAuth(nullptr, registry.thread(0), 3, "binary"));
  }
  Connection connection() { return Connection(3, 0, 0, session()); }

  // Stores a value through a connection of its own, as another client would.
  void put_value(std::string_view key, std::string_view value) {
    Connection setup = connection();
    REQUIRE(setup.feed(put(key, value), 0) == FeedStatus::ok);
    CHECK(take_output(setup.out) == std::string(1, ok));
  }

  // Stores `value` under `key`, then feeds `c` `gets` GETs of it at once,
  // as a client that reads none of the replies: more than `c` may hold, so
  // it pauses.
  void pause_with_gets(Connection& c, std::string_view key, std::string_view value, int gets) {
    put_value(key, value);
    REQUIRE(c.feed(repeated(get(key), gets), 0) == FeedStatus::ok);
    CHECK(c.paused());
  }

  store::Store store;
  store::StoreThread thread;
  StatsRegistry registry;
  InputBudget budget;
  std::unique_ptr<WritePath> write;
  BinaryProcessor processor;
  protocol::ParserLimits limits{};
};

}  // namespace

TEST_CASE("requests split at every byte position give the same replies") {
  Fixture f;
  const std::string stream = put("alpha", "one") + get("alpha") + put("", "") + get("") + del("alpha") +
                             get("alpha") + del("alpha") + std::string(1, '\x07') +
                             put("big", pattern(70000, 1)) + get("nothing");
  const std::string expected = std::string(1, ok) + ok_value("one") + ok + ok_value("") + ok + enotfound +
                               enotfound + einval + ok + enotfound;
  for (size_t split = 0; split <= stream.size(); split += (split < 40 ? 1 : 997)) {
    Connection c(3, 0, 0, f.session());
    REQUIRE(c.feed(std::string_view(stream).substr(0, split), 0) == FeedStatus::ok);
    REQUIRE(c.feed(std::string_view(stream).substr(split), 0) == FeedStatus::ok);
    INFO("split at " << split);
    CHECK(take_output(c.out) == expected);
    CHECK(c.at_frame_boundary());
  }
}

TEST_CASE("one byte at a time") {
  Fixture f;
  Connection c = f.connection();
  const std::string value = pattern(100 * 1024, 2);  // streamed into a reservation
  const std::string stream = put("k", value) + get("k");
  for (const char byte : stream) {
    REQUIRE(c.feed(std::string_view(&byte, 1), 0) == FeedStatus::ok);
  }
  CHECK(take_output(c.out) == std::string(1, ok) + ok_value(value));
}

TEST_CASE("mid_request: from a request's first byte to its last, never between requests") {
  Fixture f;
  Connection c = f.connection();
  CHECK_FALSE(c.mid_request());
  const std::string frames[] = {put("k", pattern(100 * 1024, 3)), get("k"), put("small", "v"), del("k")};
  for (const std::string& frame : frames) {
    for (size_t i = 0; i < frame.size(); ++i) {
      REQUIRE(c.feed(std::string_view(frame).substr(i, 1), 0) == FeedStatus::ok);
      INFO("byte " << i << " of a " << frame.size() << "-byte frame");
      CHECK(c.mid_request() == (i + 1 < frame.size()));
    }
  }
}

TEST_CASE("mid_request: a connection paused between requests is not") {
  Fixture f;
  REQUIRE(f.thread.put("big", pattern(200 * 1024, 4)) == store::PutStatus::stored);
  Connection c = f.connection();
  // Two pinned replies pause it; the PUT after them waits in the stash.
  const std::string stream = get("big") + get("big") + put("k", pattern(100 * 1024, 5));
  REQUIRE(c.feed(stream.substr(0, stream.size() - 10), 0) == FeedStatus::ok);
  REQUIRE(c.paused());
  CHECK_FALSE(c.stash_empty());
  CHECK_FALSE(c.mid_request());
  (void)take_output(c.out);
  c.resume(0);
  CHECK(c.mid_request());  // the PUT's last ten bytes are still to come
  REQUIRE(c.feed(stream.substr(stream.size() - 10), 0) == FeedStatus::ok);
  CHECK_FALSE(c.mid_request());
}

TEST_CASE("EBIG keeps the stream in sync") {
  Fixture f(1024);
  Connection c = f.connection();
  const std::string stream = put("k", pattern(5000, 3)) + put(pattern(2000, 4), "v") + get("k") +
                             put("k", "small") + get("k");
  REQUIRE(c.feed(stream, 0) == FeedStatus::ok);
  CHECK(take_output(c.out) == std::string{ebig, ebig, enotfound, ok} + ok_value("small"));
  CHECK(f.registry.thread(0).too_big.get() == 2);
}

TEST_CASE("every unknown opcode byte is answered EINVAL and costs one byte") {
  Fixture f;
  Connection c = f.connection();
  std::string stream = get("x");  // so that 200 is not the first byte
  std::string expected(1, enotfound);
  for (int b = 0; b < 256; ++b) {
    if (b == op_put || b == op_del || b == op_get || b == op_stats) continue;
    stream += static_cast<char>(b);
    expected += einval;
  }
  stream += put("after", "ok") + get("after");
  expected += std::string(1, ok) + ok_value("ok");
  REQUIRE(c.feed(stream, 0) == FeedStatus::ok);
  CHECK(take_output(c.out) == expected);
  CHECK(f.registry.thread(0).invalid.get() == 252);
}

TEST_CASE("a replication hello is refused and the connection asks to close") {
  Fixture f;
  Connection c = f.connection();
  REQUIRE(c.feed("\xC8" + field("RINGCACHE-REPL/1 node-b") + get("x"), 0) == FeedStatus::ok);
  CHECK(c.close_after_reply());
  CHECK(take_output(c.out) == std::string(1, einval));
}

TEST_CASE("STATS counts requests") {
  Fixture f;
  Connection c = f.connection();
  REQUIRE(c.feed(put("a", "1") + put("b", "2") + get("a") + get("zz") + del("b") + std::string(1, op_stats),
                 0) == FeedStatus::ok);
  const std::string out = take_output(c.out);
  const std::string prefix = std::string{ok, ok} + ok_value("1") + enotfound + ok + ok;
  REQUIRE(out.substr(0, prefix.size()) == prefix);
  const std::string text = out.substr(prefix.size() + 4);
  CHECK(text.starts_with("PUTS=2 DELS=1 GETS=2 KEYS=1 STATS=1 INVALID=0 HITS=1 MISSES=1 "));
}

TEST_CASE("a client that does not read pauses at pins_max large values") {
  Fixture f;
  const std::string value = pattern(64 * 1024, 9);  // pinned: above copy_value_bytes_max
  Connection c = f.connection();
  f.pause_with_gets(c, "v", value, 10);
  CHECK(c.out.pins() == pins_max);
  CHECK_FALSE(c.stash_empty());

  std::string received;
  int rounds = 0;
  while (c.paused() || !c.out.empty()) {
    REQUIRE(++rounds < 100);
    received += take_output(c.out);
    REQUIRE(c.may_resume(0));
    c.resume(0);
    CHECK(c.out.pins() <= pins_max);
  }
  CHECK(c.stash_empty());
  CHECK(received == repeated(ok_value(value), 10));
}

TEST_CASE("queued reply bytes stay bounded per connection") {
  Fixture f;
  const std::string value = pattern(copy_value_bytes_max, 10);  // copied into the queue
  Connection c = f.connection();
  f.pause_with_gets(c, "c", value, 1000);
  CHECK(c.out.held_bytes() >= write_queue_bytes_max);
  CHECK(c.out.held_bytes() <= write_queue_bytes_max + 2 * output_block_bytes_max);
  // Input that arrives while paused is only kept, not answered.
  const uint64_t pending = c.out.pending_bytes();
  REQUIRE(c.feed(get("c"), 0) == FeedStatus::ok);
  CHECK(c.out.pending_bytes() == pending);
}

TEST_CASE("the worker budget pauses a connection once it has a reply queued") {
  Fixture f;
  Connection c = f.connection();
  const size_t others = worker_write_queue_bytes_max;
  REQUIRE(c.feed(get("a") + get("b") + get("c"), others) == FeedStatus::ok);
  CHECK(c.paused());
  CHECK(take_output(c.out) == std::string(1, enotfound));  // exactly one reply got through
  CHECK(c.may_resume(others));                             // its own queue is empty again
  c.resume(others);
  CHECK(take_output(c.out) == std::string(1, enotfound));
}

TEST_CASE("input beyond the stash limit while paused is refused") {
  Fixture f;
  const std::string value = pattern(64 * 1024, 11);
  f.put_value("v", value);
  Connection c = f.connection();
  REQUIRE(c.feed(get("v") + get("v"), 0) == FeedStatus::ok);
  REQUIRE(c.out.pins() == pins_max);
  const std::string chunk(recv_buffer_bytes, '\x0d');
  FeedStatus status = FeedStatus::ok;
  size_t fed = 0;
  while (status == FeedStatus::ok && fed <= input_stash_bytes_max) {
    status = c.feed(chunk, 0);
    fed += chunk.size();
  }
  CHECK(status == FeedStatus::stash_overflow);
}
