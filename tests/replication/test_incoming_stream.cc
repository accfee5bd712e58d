// IncomingStream: a peer's frames applied newest-wins to a real store.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "repl_test_util.h"

using namespace repl_test;

namespace {

using Fixture = StreamFixture;

}  // namespace

TEST_CASE("a newer PUT replaces, an older or equal one is ignored and counted") {
  Fixture f;
  auto s = f.stream();
  CHECK(s.feed(put_frame("k", "v1", make_version(1000, 5), 7)) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "v1");
  CHECK(s.feed(put_frame("k", "older", make_version(999, 9))) == StreamStatus::ok);
  CHECK(s.feed(put_frame("k", "same", make_version(1000, 5))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "v1");
  CHECK(s.feed(put_frame("k", "v2", make_version(1000, 6))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "v2");
  CHECK(f.counters.applied.get() == 2);
  CHECK(f.counters.ignored_older.get() == 2);
  CHECK(version_of(f.thread, "k") == make_version(1000, 6));
}

TEST_CASE("flags and expiry travel with the item") {
  Fixture f;
  auto s = f.stream();
  std::string frame;
  const uint32_t expires = f.store.now_s() + 3600;
  append_put(frame, "k", "v", PutMeta{make_version(5, 1), 0xBEEF, expires});
  CHECK(s.feed(frame) == StreamStatus::ok);
  bool found = false;
  f.thread.get("k", [&](const store::ItemView& v) {
    found = true;
    CHECK(v.flags() == 0xBEEF);
    CHECK(v.expires_at() == expires);
  });
  CHECK(found);
}

TEST_CASE("regression: a late, older PUT does not resurrect a deleted key") {
  Fixture f;
  auto s = f.stream();
  CHECK(s.feed(put_frame("k", "v", make_version(100, 1))) == StreamStatus::ok);
  CHECK(s.feed(del_frame("k", make_version(200, 1))) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "k"));
  // The write the delete superseded arrives late (another peer, a resync).
  CHECK(s.feed(put_frame("k", "zombie", make_version(150, 3))) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "k"));
  CHECK(f.counters.ignored_older.get() == 1);
  // A write made after the delete does bring it back.
  CHECK(s.feed(put_frame("k", "reborn", make_version(201, 1))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "reborn");
}

TEST_CASE("a DEL older than the item is ignored; a DEL of an absent key leaves a tombstone") {
  Fixture f;
  auto s = f.stream();
  CHECK(s.feed(put_frame("k", "v", make_version(300, 1))) == StreamStatus::ok);
  CHECK(s.feed(del_frame("k", make_version(299, 1))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "v");
  CHECK(s.feed(del_frame("never-seen", make_version(400, 1))) == StreamStatus::ok);
  CHECK(s.feed(put_frame("never-seen", "old", make_version(399, 2))) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "never-seen"));
}

TEST_CASE("a streamed value is applied as its bytes arrive, newest-wins too") {
  Fixture f;
  auto s = f.stream();
  std::string value(300 * 1024, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 13 + 1);
  const std::string frame = put_frame("big", value, make_version(10, 2), 3);
  for (size_t at = 0; at < frame.size(); at += 7777) {
    CHECK(s.feed(std::string_view(frame).substr(at, 7777)) == StreamStatus::ok);
  }
  CHECK(s.at_frame_boundary());
  CHECK(get_string(f.thread, "big") == value);
  CHECK(s.feed(put_frame("big", std::string(200 * 1024, 'x'), make_version(9, 9))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "big") == value);
  CHECK(f.counters.applied.get() == 1);
  CHECK(f.counters.ignored_older.get() == 1);
}

TEST_CASE("a streamed value refused at the upload budget waits with its bytes unread, then is applied") {
  store::StoreConfig c = versioned_config();
  const uint64_t block = c.segment_size_bytes;
  c.upload_bytes_max = 2 * block;
  Fixture f(c);
  f.config.item_bytes_max = 4 * block;
  f.config.info = &LogCapture::sink;
  LogCapture::clear();
  auto s = f.stream();
  // Two values still arriving hold the whole budget.
  store::Reservation held[2] = {f.thread.reserve("held-1", 2 * block), f.thread.reserve("held-2", 2 * block)};
  REQUIRE(held[0].ok());
  REQUIRE(held[1].ok());
  std::string value(block + block / 2, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7 + 3);
  const std::string frames = put_frame("big", value, make_version(10, 2)) + put_frame("after", "v", make_version(11, 2));
  std::string_view rest(frames);
  size_t used = 0;
  CHECK(s.feed(rest, &used) == StreamStatus::wait);
  CHECK(used > 0);
  CHECK(used < 100);  // its header, not its value
  rest.remove_prefix(used);
  CHECK(!s.at_frame_boundary());
  CHECK(f.counters.apply_waits.get() == 1);
  CHECK(LogCapture::contains("waits for the upload budget"));
  // Fed again while the budget is still held: nothing is used.
  CHECK(s.feed(rest, &used) == StreamStatus::wait);
  CHECK(used == 0);
  // One block freed: the value's first block, then a wait for its second.
  held[0].abort();
  CHECK(s.feed(rest, &used) == StreamStatus::wait);
  CHECK(used > 0);
  CHECK(used < block);
  rest.remove_prefix(used);
  CHECK(!get_string(f.thread, "big"));
  CHECK(f.counters.apply_waits.get() == 1);
  held[1].abort();
  CHECK(s.feed(rest, &used) == StreamStatus::ok);
  CHECK(used == rest.size());
  CHECK(s.at_frame_boundary());
  CHECK(get_string(f.thread, "big") == value);
  CHECK(get_string(f.thread, "after") == "v");
  CHECK(f.counters.applied.get() == 2);
  CHECK(f.counters.apply_failed.get() == 0);
  CHECK(f.counters.apply_waits.get() == 1);
  CHECK(f.store.stats().upload_bytes == 0);

  // A stream closed while it waits says so and holds nothing after.
  store::Reservation again[2] = {f.thread.reserve("held-3", 2 * block), f.thread.reserve("held-4", 2 * block)};
  REQUIRE(again[1].ok());
  auto closed = f.stream();
  CHECK(closed.feed(put_frame("big-2", value, make_version(12, 2))) == StreamStatus::wait);
  closed.stream.reset();
  CHECK(LogCapture::contains("closed while a value waited"));
  CHECK(f.store.stats().upload_bytes == 2 * block);
  CHECK(f.counters.apply_failed.get() == 0);
}

TEST_CASE("every version applied moves the local clock past it") {
  Fixture f;
  auto s = f.stream();
  // Ahead of the local wall clock, but within --max-clock-skew.
  const uint64_t future = make_version((wall_clock_unix_ms() - version_epoch_unix_ms + 5000) << 10, 9);
  CHECK(s.feed(put_frame("k", "v", future)) == StreamStatus::ok);
  CHECK(f.clock.next() > future);
  const uint64_t later_del = make_version(version_hlc(future) + (1000 << 10), 2);
  CHECK(s.feed(del_frame("x", later_del)) == StreamStatus::ok);
  CHECK(f.clock.next() > later_del);
}

TEST_CASE("resync markers, heartbeats and mesh counts update counters; an unknown opcode ends the stream") {
  Fixture f;
  auto s = f.stream();
  std::string frames;
  append_mesh(frames, 2);
  append_resync_begin(frames);
  append_resync_end(frames, 0);
  append_heartbeat(frames, wall_clock_unix_ms() * 1000 - 2500);
  CHECK(s.feed(frames) == StreamStatus::ok);
  CHECK(f.counters.resyncs_received.get() == 1);
  CHECK(f.counters.lag_us.get() >= 2500);
  CHECK(f.counters.lag_us.get() < 10'000'000);
  CHECK(f.counters.streams.get() == 1);
  std::string bad = put_frame("a", "1", 5);
  bad += static_cast<char>(210);
  bad += put_frame("b", "2", 6);
  CHECK(s.feed(bad) == StreamStatus::close);
  CHECK(get_string(f.thread, "a") == "1");
  CHECK(!get_string(f.thread, "b"));
}

TEST_CASE("an item over --max-item is skipped and counted; what follows applies") {
  Fixture f;
  f.config.item_bytes_max = 1000;
  auto s = f.stream();
  CHECK(s.feed(put_frame("huge", std::string(1001, 'h'), 5) + put_frame("fine", "ok", 6)) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "huge"));
  CHECK(get_string(f.thread, "fine") == "ok");
  CHECK(f.counters.too_big.get() == 1);
}

TEST_CASE("the stream counter follows the stream's life") {
  Fixture f;
  {
    auto a = f.stream();
    auto b = f.stream();
    CHECK(f.counters.streams.get() == 2);
  }
  CHECK(f.counters.streams.get() == 0);
}

namespace {

// A version stamped `ahead_ms` past the fixture clock's wall time.
uint64_t version_ahead(const StreamFixture& f, int64_t ahead_ms, uint16_t tag = 9) {
  const uint64_t at_ms = f.clock.wall_ms() + static_cast<uint64_t>(ahead_ms);
  return make_version((at_ms - version_epoch_unix_ms) << version_logical_bits, tag);
}

}  // namespace

TEST_CASE("regression: a PUT stamped past --max-clock-skew is refused, unapplied and unobserved") {
  // Issue 11: one forged far-future PUT made HybridClock::observe take it,
  // and later local overwrites of a key were lost.
  Fixture f;
  f.config.max_clock_skew_ms = 10'000;
  auto s = f.stream();
  CHECK(s.feed(put_frame("k", "fine", version_ahead(f, 9'000))) == StreamStatus::ok);
  const uint64_t hlc_before = f.clock.current_hlc();
  CHECK(s.feed(put_frame("k", "forged", version_ahead(f, 60'000)) + put_frame("after", "x", version_ahead(f, 0))) ==
        StreamStatus::close);
  CHECK(get_string(f.thread, "k") == "fine");
  CHECK(!get_string(f.thread, "after"));  // nothing after the refusal is applied
  CHECK(f.clock.current_hlc() == hlc_before);
  CHECK(f.counters.skew_refused.get() == 1);
  CHECK(s.feed(put_frame("later", "y", version_ahead(f, 0))) == StreamStatus::close);
  CHECK(!get_string(f.thread, "later"));
}

TEST_CASE("streamed PUTs, DELs and FLUSHes past the skew are refused; a delayed flush's instant is not") {
  for (int kind = 0; kind < 3; ++kind) {
    Fixture f;
    LogCapture::clear();
    auto s = f.stream();
    CHECK(s.feed(put_frame("z", "kept", version_ahead(f, -1000))) == StreamStatus::ok);
    std::string frame;
    if (kind == 0) {
      append_put(frame, "big", std::string(200 * 1024, 'b'), PutMeta{version_ahead(f, 3'600'000), 0, 0});
    } else if (kind == 1) {
      frame = del_frame("z", version_ahead(f, 3'600'000));
    } else {
      frame = flush_frame(version_ahead(f, 3'600'000), 0);
    }
    CHECK(s.feed(frame) == StreamStatus::close);
    CHECK(get_string(f.thread, "z") == "kept");
    CHECK(!get_string(f.thread, "big"));
    CHECK(f.thread.flush_version() == 0);
    CHECK(f.counters.skew_refused.get() == 1);
    CHECK(LogCapture::contains("its clock is 3"));  // 3600 s less the time the test took
    CHECK(LogCapture::contains("s ahead of this node's (--max-clock-skew 10 s)"));
  }
  // flush_all 3600 on a peer: its threshold is that instant, tag 0, legitimately ahead.
  Fixture f;
  auto s = f.stream();
  const uint32_t at_s = static_cast<uint32_t>(f.clock.wall_ms() / 1000 + 3600);
  CHECK(s.feed(flush_frame(version_at_unix_ms(uint64_t{at_s} * 1000), at_s)) == StreamStatus::ok);
  CHECK(f.counters.skew_refused.get() == 0);
  CHECK(f.clock.current_hlc() < version_hlc(version_ahead(f, 60'000)));
  // The same instant for a flush that claims to be due now is a version like any other.
  auto s2 = f.stream();
  CHECK(s2.feed(flush_frame(version_at_unix_ms(uint64_t{at_s} * 1000), 0)) == StreamStatus::close);
}

TEST_CASE("a version 0 closes the stream; nothing is applied") {
  Fixture f;
  auto s = f.stream();
  CHECK(s.feed(put_frame("k", "v", 0)) == StreamStatus::close);
  CHECK(!get_string(f.thread, "k"));
}

TEST_CASE("the skew line is logged once per peer per minute") {
  Fixture f;
  LogCapture::clear();
  for (int i = 0; i < 5; ++i) {
    auto s = f.stream();
    CHECK(s.feed(put_frame("k", "v", version_ahead(f, 60'000))) == StreamStatus::close);
  }
  CHECK(f.counters.skew_refused.get() == 5);
  size_t lines = 0;
  {
    std::lock_guard<std::mutex> lock(LogCapture::mutex);
    for (const std::string& line : LogCapture::lines) lines += line.find("clock is") != std::string::npos;
  }
  CHECK(lines == 1);
}

TEST_CASE("regression: a stream's connection is watched by keepalive, so a silently vanished sender ends it") {
  // Without it a stream whose sender dropped the link in a partition (its
  // RST lost) stayed open for ever, and each one counted towards
  // incoming_streams_max (tests/e2e/test_replication_netns.py shows it end).
  Fixture f;
  f.config.tuning.incoming_keepalive_idle_s = 7;
  f.config.tuning.incoming_keepalive_interval_s = 2;
  f.config.tuning.incoming_keepalive_probes = 3;
  f.config.info = &LogCapture::sink;
  auto s = f.stream();
  uint16_t port = 0;
  const int listener = listen_loopback(port);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  const int accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(accepted >= 0);
  const auto option = [&](int level, int name) {
    int value = -1;
    socklen_t length = sizeof(value);
    REQUIRE(::getsockopt(accepted, level, name, &value, &length) == 0);
    return value;
  };
  CHECK(option(SOL_SOCKET, SO_KEEPALIVE) == 0);
  CHECK(s.stream->watch_connection(accepted));
  CHECK(option(SOL_SOCKET, SO_KEEPALIVE) == 1);
  CHECK(option(IPPROTO_TCP, TCP_KEEPIDLE) == 7);
  CHECK(option(IPPROTO_TCP, TCP_KEEPINTVL) == 2);
  CHECK(option(IPPROTO_TCP, TCP_KEEPCNT) == 3);
  for (const int fd : {accepted, client, listener}) ::close(fd);

  // A socket that takes no TCP options: said, and the stream goes on.
  LogCapture::clear();
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  CHECK(!s.stream->watch_connection(pair[0]));
  CHECK(LogCapture::contains("will not be noticed"));
  CHECK(s.feed(put_frame("after", "1", 5)) == StreamStatus::ok);
  CHECK(get_string(f.thread, "after") == "1");
  for (const int fd : pair) ::close(fd);
}
