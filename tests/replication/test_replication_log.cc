// ReplicationLog: offsets, chunk boundaries, lookups, trimming and the bound.
#include <doctest/doctest.h>

#include <string>

#include "server/replication/replication_log.h"

using namespace ringcache::replication;

namespace {

// Reads everything from `from` to the end, as a link would.
std::string read_all(const ReplicationLog& log, uint64_t from) {
  std::string out;
  while (from < log.end()) {
    const ReplicationLog::Span span = log.at(from);
    out += span.lookup ? "<" + std::string(span.bytes) + ">" : std::string(span.bytes);
    from = span.end;
  }
  return out;
}

}  // namespace

TEST_CASE("frames are packed into chunks; offsets run on across chunks") {
  ReplicationLog log(1024, 16);
  CHECK(log.empty());
  CHECK(log.append_frame("aaaaaaaaaa"));  // 10
  CHECK(log.append_frame("bbbbb"));       // 15: same chunk
  CHECK(log.append_frame("ccc"));         // would pass 16: new chunk
  CHECK(log.chunks() == 2);
  CHECK(log.end() == 18);
  CHECK(read_all(log, 0) == "aaaaaaaaaabbbbbccc");
  // A span never crosses a chunk, so its end is a frame boundary.
  CHECK(log.at(3).end == 15);
  CHECK(log.at(3).bytes == "aaaaaaabbbbb");
  CHECK(log.at(15).bytes == "ccc");
  // A frame larger than a chunk gets a chunk of its own.
  CHECK(log.append_frame(std::string(40, 'd')));
  CHECK(log.at(18).bytes.size() == 40);
}

TEST_CASE("a lookup is one offset wide and sits between frames") {
  ReplicationLog log(1024, 64);
  CHECK(log.append_frame("x1"));
  CHECK(log.append_lookup("big-key"));
  CHECK(log.append_frame("x2"));
  CHECK(log.end() == 5);
  CHECK(read_all(log, 0) == "x1<big-key>x2");
  const ReplicationLog::Span span = log.at(2);
  CHECK(span.lookup);
  CHECK(span.end == 3);
}

TEST_CASE("spans handed out stay valid while the tail chunk grows") {
  ReplicationLog log(1024, 64);
  CHECK(log.append_frame("hello"));
  const std::string_view before = log.at(0).bytes;
  for (int i = 0; i < 10; ++i) CHECK(log.append_frame("12345"));
  CHECK(before == "hello");
  CHECK(log.at(0).bytes.size() == 55);
}

TEST_CASE("trim frees chunks every reader has passed; the bound then admits more") {
  ReplicationLog log(64, 16);
  int appended = 0;
  while (log.append_frame("0123456789abcdef")) ++appended;
  CHECK(appended == 4);
  CHECK(log.held_bytes() <= 64);
  CHECK(!log.append_lookup("k"));
  log.trim(17);  // the first chunk is fully read, the second only in part
  CHECK(log.begin() == 17);
  CHECK(log.chunks() == 3);
  CHECK(log.append_frame("0123456789abcdef"));
  CHECK(read_all(log, 17) == "123456789abcdef" "0123456789abcdef" "0123456789abcdef" "0123456789abcdef");
  log.trim(log.end());
  CHECK(log.chunks() == 0);
  CHECK(log.held_bytes() == 0);
  CHECK(log.empty());
}

TEST_CASE("clear forgets everything; offsets keep growing") {
  ReplicationLog log(256, 32);
  CHECK(log.append_frame("abc"));
  CHECK(log.append_lookup("k"));
  const uint64_t end = log.end();
  log.clear();
  CHECK(log.empty());
  CHECK(log.begin() == end);
  CHECK(log.held_bytes() == 0);
  CHECK(log.append_frame("def"));
  CHECK(read_all(log, end) == "def");
}
