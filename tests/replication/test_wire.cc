// The replication wire format: golden bytes for every frame, and the
// StreamDecoder fed each stream whole and split at every byte.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/replication/handshake.h"
#include "server/replication/wire.h"
#include "server/replication/wire_decoder.h"
#include "tests/protocol/parser_sweep.h"
#include "tests/replication/wire_harness.h"

using namespace ringcache::replication;
using namespace ringcache::replication::test;
using namespace ringcache::test;

namespace {

constexpr uint64_t item_max = 1 << 20;

DecoderLimits wire_limits(uint32_t inline_max = 64 * 1024) {
  DecoderLimits limits;
  limits.item_bytes_max = item_max;
  limits.inline_value_bytes_max = inline_max;
  return limits;
}

// Every split gives the events of the whole stream, which are returned.
std::vector<Seen> decode_every_split(std::string_view stream, uint32_t inline_max = 64 * 1024) {
  const DecoderLimits limits = wire_limits(inline_max);
  const std::vector<Seen> whole = parse_whole(limits, stream);
  check_every_split(limits, stream, whole);
  return whole;
}

}  // namespace

TEST_CASE("golden bytes: HELLO, MESH, RESYNC_BEGIN/END, HEARTBEAT") {
  std::string out;
  append_hello_v1(out, "n1");
  CHECK(hex(out) == "c8" "00000013" + hex("RINGCACHE-REPL/1 n1"));
  out.clear();
  append_mesh(out, 4);
  CHECK(hex(out) == "ce00000004");
  out.clear();
  append_resync_begin(out);
  CHECK(hex(out) == "cb");
  out.clear();
  append_resync_end(out, 0x0102030405060708ull);
  CHECK(hex(out) == "cc0102030405060708");
  out.clear();
  append_heartbeat(out, 1700000000123456ull);
  CHECK(hex(out) == "cd00060a2418202240");
}

TEST_CASE("golden bytes: PUT and DEL") {
  std::string out;
  append_put(out, "k", "vv", PutMeta{0x1122334455667788ull, 0xA0B0C0D0u, 0x01020304u});
  CHECK(hex(out) == "c9" "1122334455667788" "a0b0c0d0" "01020304" "00000001" "6b" "00000002" "7676");
  CHECK(out.size() == put_frame_bytes(1, 2));
  out.clear();
  append_del(out, "key", 42);
  CHECK(hex(out) == "ca" "000000000000002a" "00000003" "6b6579");
  CHECK(out.size() == del_frame_bytes(3));
  // The streamed form is the same bytes without the value.
  std::string head;
  append_put_head(head, "k", 2, PutMeta{0x1122334455667788ull, 0xA0B0C0D0u, 0x01020304u});
  std::string whole;
  append_put(whole, "k", "vv", PutMeta{0x1122334455667788ull, 0xA0B0C0D0u, 0x01020304u});
  CHECK(head + "vv" == whole);
}

TEST_CASE("golden bytes: FLUSH") {
  std::string out;
  append_flush(out, 0x0102030405060708ull, 0xA1B2C3D4u);
  CHECK(hex(out) == "cf" "0102030405060708" "a1b2c3d4");
  CHECK(out.size() == flush_bytes);
  out.clear();
  append_flush(out, 42, 0);
  CHECK(hex(out) == "cf" "000000000000002a" "00000000");
  char raw[flush_bytes];
  CHECK(write_flush(raw, 42, 0) == raw + flush_bytes);
  CHECK(std::string_view(raw, flush_bytes) == out);
}

TEST_CASE("a stream of every frame kind decodes the same whatever the split") {
  std::string stream;
  append_mesh(stream, 2);
  append_resync_begin(stream);
  append_put(stream, "alpha", "one", PutMeta{100, 7, 0});
  append_put(stream, "", "empty key", PutMeta{101, 0, 99});
  append_put(stream, "no value", "", PutMeta{102, 0, 0});
  append_del(stream, "alpha", 103);
  append_del(stream, "", 104);
  append_resync_end(stream, 3);
  append_heartbeat(stream, 123456789);
  append_put(stream, std::string(300, 'k'), std::string(5000, 'v'), PutMeta{105, 1, 2});
  append_flush(stream, 0xF0E0D0C0B0A09080ull, 0);
  append_flush(stream, 106, 0xFFFFFFFFu);
  append_del(stream, "after flush", 107);
  const std::vector<Seen> seen = decode_every_split(stream);
  REQUIRE(seen.size() == 13);
  CHECK(seen[0] == seen_kind(DecodeKind::mesh, 2));
  CHECK(seen[1] == seen_kind(DecodeKind::resync_begin));
  CHECK(seen[2] == seen_put("alpha", "one", 100, 7, 0));
  CHECK(seen[3] == seen_put("", "empty key", 101, 0, 99));
  CHECK(seen[4] == seen_put("no value", "", 102));
  CHECK(seen[5].kind == DecodeKind::del);
  CHECK(seen[5].key == "alpha");
  CHECK(seen[5].version == 103);
  CHECK(seen[6].kind == DecodeKind::del);
  CHECK(seen[6].key.empty());
  CHECK(seen[7] == seen_kind(DecodeKind::resync_end, 3));
  CHECK(seen[8] == seen_kind(DecodeKind::heartbeat, 123456789));
  CHECK(seen[9] == seen_put(std::string(300, 'k'), std::string(5000, 'v'), 105, 1, 2));
  Seen flush_now = seen_kind(DecodeKind::flush, 0);
  flush_now.version = 0xF0E0D0C0B0A09080ull;
  CHECK(seen[10] == flush_now);
  Seen flush_later = seen_kind(DecodeKind::flush, 0xFFFFFFFFu);
  flush_later.version = 106;
  CHECK(seen[11] == flush_later);
  CHECK(seen[12].kind == DecodeKind::del);
  CHECK(seen[12].key == "after flush");
  CHECK(seen[12].version == 107);
}

TEST_CASE("values over inline_value_bytes_max stream: put_begin, put_data, put_end") {
  std::string value(5000, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7);
  std::string stream;
  append_put(stream, "big", value, PutMeta{9, 1, 2});
  append_del(stream, "after", 10);
  const std::vector<Seen> seen = decode_every_split(stream, 1000);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0].kind == DecodeKind::put_begin);
  CHECK(seen[0].key == "big");
  CHECK(seen[0].value_size == 5000);
  CHECK(seen[0].version == 9);
  CHECK(seen[1].kind == DecodeKind::put_data);
  CHECK(seen[1].data == value);
  CHECK(seen[2].kind == DecodeKind::put_end);
  CHECK(seen[3].kind == DecodeKind::del);
  // The decoder held at most the key, never the streamed value.
  Feeder feeder(wire_limits(1000));
  feeder.feed_cut(stream, chunk_cuts(stream.size(), 7));
  CHECK(feeder.peak_buffered_bytes() < 1000);
}

TEST_CASE("a key or value over --max-item is reported once and skipped; the stream stays in sync") {
  std::string stream;
  // Key too long: announced length only matters, the bytes are skipped.
  stream += static_cast<char>(WireOp::put);
  stream += std::string(16, '\1');
  stream += std::string("\x00\x10\x00\x01", 4);  // key length item_max + 1
  stream += std::string(item_max + 1, 'k');
  stream += std::string("\x00\x00\x00\x03", 4);
  stream += "abc";
  append_put(stream, "ok1", "v", PutMeta{1, 0, 0});
  // Value too long.
  append_put_head(stream, "key", item_max + 5, PutMeta{2, 0, 0});
  stream += std::string(item_max + 5, 'v');
  append_del(stream, "ok2", 3);
  // Key of a DEL too long.
  stream += static_cast<char>(WireOp::del);
  stream += std::string(8, '\2');
  stream += std::string("\x00\x20\x00\x00", 4);
  stream += std::string(2 * item_max, 'd');
  append_put(stream, "ok3", "w", PutMeta{4, 0, 0});
  for (const size_t chunk : {stream.size(), size_t{65536}, size_t{4093}}) {
    const std::vector<Seen> seen = parse_chunks(wire_limits(), stream, chunk);
    REQUIRE(seen.size() == 6);
    CHECK(seen[0].kind == DecodeKind::too_big);
    CHECK(seen[1] == seen_put("ok1", "v", 1));
    CHECK(seen[2].kind == DecodeKind::too_big);
    CHECK(seen[3].kind == DecodeKind::del);
    CHECK(seen[4].kind == DecodeKind::too_big);
    CHECK(seen[5] == seen_put("ok3", "w", 4));
  }
}

TEST_CASE("an unknown opcode kills the stream: reported once, everything after is swallowed") {
  for (const uint8_t bad : {uint8_t{0}, uint8_t{11}, uint8_t{200}, uint8_t{208}, uint8_t{255}}) {
    std::string stream;
    append_put(stream, "a", "1", PutMeta{1, 0, 0});
    stream += static_cast<char>(bad);
    append_put(stream, "b", "2", PutMeta{2, 0, 0});
    const std::vector<Seen> seen = decode_every_split(stream);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == seen_put("a", "1", 1));
    CHECK(seen[1].kind == DecodeKind::bad_opcode);
    CHECK(seen[1].byte == bad);
  }
}

TEST_CASE("at_frame_boundary is true only between frames") {
  DecoderLimits limits;
  limits.item_bytes_max = item_max;
  StreamDecoder decoder(limits);
  CHECK(decoder.at_frame_boundary());
  std::string frame;
  append_put(frame, "key", "value", PutMeta{5, 0, 0});
  size_t used = 0;
  CHECK(decoder.next(std::string_view(frame).substr(0, 10), used).kind == DecodeKind::need_more);
  CHECK(!decoder.at_frame_boundary());
  const DecodeEvent e = decoder.next(std::string_view(frame).substr(10), used);
  CHECK(e.kind == DecodeKind::put);
  CHECK(e.key == "key");
  CHECK(e.data == "value");
  CHECK(decoder.next({}, used).kind == DecodeKind::need_more);
  CHECK(decoder.at_frame_boundary());
}
