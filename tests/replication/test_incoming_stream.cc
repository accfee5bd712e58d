// IncomingStream: a peer's frames applied newest-wins to a real store.
#include <doctest/doctest.h>

#include <string>

#include "repl_test_util.h"

using namespace repl_test;

namespace {

using Fixture = StreamFixture;

std::string put(std::string_view key, std::string_view value, uint64_t version, uint32_t flags = 0) {
  std::string out;
  append_put(out, key, value, PutMeta{version, flags, 0});
  return out;
}

std::string del(std::string_view key, uint64_t version) {
  std::string out;
  append_del(out, key, version);
  return out;
}

}  // namespace

TEST_CASE("a newer PUT replaces, an older or equal one is ignored and counted") {
  Fixture f;
  IncomingStream s = f.stream();
  CHECK(s.feed(put("k", "v1", make_version(1000, 5), 7)) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "v1");
  CHECK(s.feed(put("k", "older", make_version(999, 9))) == StreamStatus::ok);
  CHECK(s.feed(put("k", "same", make_version(1000, 5))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "v1");
  CHECK(s.feed(put("k", "v2", make_version(1000, 6))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "v2");
  CHECK(f.counters.applied.get() == 2);
  CHECK(f.counters.ignored_older.get() == 2);
  CHECK(version_of(f.thread, "k") == make_version(1000, 6));
}

TEST_CASE("flags and expiry travel with the item") {
  Fixture f;
  IncomingStream s = f.stream();
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
  IncomingStream s = f.stream();
  CHECK(s.feed(put("k", "v", make_version(100, 1))) == StreamStatus::ok);
  CHECK(s.feed(del("k", make_version(200, 1))) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "k"));
  // The write the delete superseded arrives late (another peer, a resync).
  CHECK(s.feed(put("k", "zombie", make_version(150, 3))) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "k"));
  CHECK(f.counters.ignored_older.get() == 1);
  // A write made after the delete does bring it back.
  CHECK(s.feed(put("k", "reborn", make_version(201, 1))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "reborn");
}

TEST_CASE("a DEL older than the item is ignored; a DEL of an absent key leaves a tombstone") {
  Fixture f;
  IncomingStream s = f.stream();
  CHECK(s.feed(put("k", "v", make_version(300, 1))) == StreamStatus::ok);
  CHECK(s.feed(del("k", make_version(299, 1))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "k") == "v");
  CHECK(s.feed(del("never-seen", make_version(400, 1))) == StreamStatus::ok);
  CHECK(s.feed(put("never-seen", "old", make_version(399, 2))) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "never-seen"));
}

TEST_CASE("a streamed value is applied as its bytes arrive, newest-wins too") {
  Fixture f;
  IncomingStream s = f.stream();
  std::string value(300 * 1024, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 13 + 1);
  const std::string frame = put("big", value, make_version(10, 2), 3);
  for (size_t at = 0; at < frame.size(); at += 7777) {
    CHECK(s.feed(std::string_view(frame).substr(at, 7777)) == StreamStatus::ok);
  }
  CHECK(s.at_frame_boundary());
  CHECK(get_string(f.thread, "big") == value);
  CHECK(s.feed(put("big", std::string(200 * 1024, 'x'), make_version(9, 9))) == StreamStatus::ok);
  CHECK(get_string(f.thread, "big") == value);
  CHECK(f.counters.applied.get() == 1);
  CHECK(f.counters.ignored_older.get() == 1);
}

TEST_CASE("every version applied moves the local clock past it") {
  Fixture f;
  IncomingStream s = f.stream();
  const uint64_t future = make_version((wall_clock_unix_ms() - version_epoch_unix_ms + 60000) << 10, 9);
  CHECK(s.feed(put("k", "v", future)) == StreamStatus::ok);
  CHECK(f.clock.next() > future);
  const uint64_t later_del = make_version(version_hlc(future) + 5000, 2);
  CHECK(s.feed(del("x", later_del)) == StreamStatus::ok);
  CHECK(f.clock.next() > later_del);
}

TEST_CASE("resync markers, heartbeats and mesh counts update counters; an unknown opcode ends the stream") {
  Fixture f;
  IncomingStream s = f.stream();
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
  std::string bad = put("a", "1", 5);
  bad += static_cast<char>(210);
  bad += put("b", "2", 6);
  CHECK(s.feed(bad) == StreamStatus::protocol_error);
  CHECK(get_string(f.thread, "a") == "1");
  CHECK(!get_string(f.thread, "b"));
}

TEST_CASE("an item over --max-item is skipped and counted; what follows applies") {
  Fixture f;
  f.config.item_max_bytes = 1000;
  IncomingStream s = f.stream();
  CHECK(s.feed(put("huge", std::string(1001, 'h'), 5) + put("fine", "ok", 6)) == StreamStatus::ok);
  CHECK(!get_string(f.thread, "huge"));
  CHECK(get_string(f.thread, "fine") == "ok");
  CHECK(f.counters.too_big.get() == 1);
}

TEST_CASE("the stream counter follows the stream's life") {
  Fixture f;
  {
    IncomingStream a = f.stream();
    IncomingStream b = f.stream();
    CHECK(f.counters.streams.get() == 2);
  }
  CHECK(f.counters.streams.get() == 0);
}
