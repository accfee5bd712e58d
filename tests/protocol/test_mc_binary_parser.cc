// McBinaryParser unit tests: golden requests under every split, the wire
// format pinned byte by byte, bad lengths and too large values skipped with
// the stream in sync, bad magic ending the stream, streaming, the key
// look-ahead, and the bound on what the parser buffers.
#include <doctest/doctest.h>

#include <random>

#include "tests/protocol/mc_binary_parser_harness.h"
#include "tests/protocol/parser_sweep.h"

namespace ringcache::protocol::memcache_binary::test {
namespace {

using namespace ringcache::test;

// Small limits make streaming and too_large reachable with short requests.
constexpr ParserLimits small_limits{1000, 32};

static_assert(static_cast<uint8_t>(Opcode::get) == 0x00 && static_cast<uint8_t>(Opcode::stat) == 0x10 &&
              static_cast<uint8_t>(Opcode::prependq) == 0x1a && static_cast<uint8_t>(Opcode::gatkq) == 0x24);
static_assert(static_cast<uint16_t>(Status::value_too_large) == 0x0003 &&
              static_cast<uint16_t>(Status::unknown_command) == 0x0081 &&
              static_cast<uint16_t>(Status::out_of_memory) == 0x0082);

std::vector<Seen> expected_of(const ParserLimits& limits, std::string_view bytes) {
  const Header header = header_of(bytes);
  const uint64_t value = header.body_length - header.extras_length - header.key_length;
  if (value > limits.item_bytes_max) return {seen_too_large(bytes)};
  if (value <= limits.inline_value_bytes_max) return {seen_request(bytes)};
  return seen_stream(bytes);
}

std::vector<std::string> golden_requests() {
  const std::string key_max(ParserLimits::key_bytes_max, 'k');
  return {
      request(Opcode::noop, "", "", ""),
      request(Opcode::get, "", "user:42", "", 0xdeadbeef),
      request(Opcode::getkq, "", std::string("\x00\xff\x80\r\n", 5), ""),
      request(Opcode::set, store_extras(7, 100), "k", "hello", 1, 0x0102030405060708),
      request(Opcode::set, store_extras(0, 0), key_max, pattern_bytes(small_limits.inline_value_bytes_max, 1)),
      request(Opcode::setq, store_extras(0, 0), "k", pattern_bytes(small_limits.inline_value_bytes_max + 1, 2)),
      request(Opcode::append, "", "k", pattern_bytes(small_limits.item_bytes_max, 3)),
      request(Opcode::increment, arithmetic_extras(1, 5, 0xffffffff), "counter", ""),
      request(Opcode::flush, std::string(4, '\0'), "", ""),
      request(Opcode::stat, "", "settings", ""),
      request(Opcode::set, store_extras(0, 0), "big", pattern_bytes(small_limits.item_bytes_max + 1, 4)),
      request(0xee, "extr", "unknown", "body"),
  };
}

TEST_CASE("the wire format, byte by byte") {
  const std::string bytes("\x80\x01\x00\x01\x08\x00\x00\x00\x00\x00\x00\x0b\xde\xad\xbe\xef"
                          "\x00\x00\x00\x00\x00\x00\x00\x2a"
                          "\x00\x00\x00\x07\x00\x00\x00\x64"
                          "k" "ab",
                          35);
  REQUIRE(bytes == request(Opcode::set, store_extras(7, 100), "k", "ab", 0xdeadbeef, 42));
  const std::vector<Seen> events = parse_whole(small_limits, bytes);
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::request);
  CHECK(events[0].header.opcode == 0x01);
  CHECK(events[0].header.opaque == 0xdeadbeef);
  CHECK(events[0].header.cas == 42);
  CHECK(events[0].header.body_length == 11);
  CHECK(events[0].extras == store_extras(7, 100));
  CHECK(events[0].key == "k");
  CHECK(events[0].data == "ab");
}

TEST_CASE("golden requests give the same events whole and split anywhere") {
  for (const std::string& bytes : golden_requests()) {
    CAPTURE(header_of(bytes).opcode);
    check_every_split(small_limits, bytes, expected_of(small_limits, bytes));
  }
}

TEST_CASE("golden requests pipelined back to back") {
  Mix<Seen> mix;
  for (int round = 0; round < 3; ++round) {
    for (const std::string& bytes : golden_requests()) mix.add(bytes, expected_of(small_limits, bytes));
  }
  check_sweep(small_limits, mix.bytes, mix.expected);
}

TEST_CASE("requests that arrive whole are parsed in place, with no allocation") {
  Feeder<ParserLimits> feeder(small_limits);
  feeder.feed(request(Opcode::set, store_extras(0, 0), "key", "value") + request(Opcode::get, "", "key", ""));
  CHECK(feeder.peak_buffered_bytes() == 0);
  CHECK(feeder.events().size() == 2);
}

TEST_CASE("the frame boundary is reported only between requests") {
  const std::string bytes = request(Opcode::set, store_extras(0, 0), "k", "v");
  for (size_t cut = 1; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    McBinaryParser parser(small_limits);
    size_t consumed = 0;
    CHECK(parser.next(std::string_view(bytes).substr(0, cut), consumed).kind == EventKind::need_more);
    CHECK(!parser.at_frame_boundary());
    CHECK(parser.next(std::string_view(bytes).substr(cut), consumed).kind == EventKind::request);
    CHECK(parser.at_frame_boundary());
  }
}

TEST_CASE("a too long key, or extras and key over the body, is bad_lengths and the body is skipped") {
  const std::string long_key = raw_header(0x00, 251, 0, 251 + 3) + std::string(251 + 3, 'x');
  const std::string over_body = raw_header(0x01, 4, 8, 10) + std::string(10, 'y');
  const std::string next = request(Opcode::noop, "", "", "", 9);
  check_every_split(small_limits, long_key + next,
                    {seen_bad_lengths(long_key), seen_request(next)});
  check_every_split(small_limits, over_body + next,
                    {seen_bad_lengths(over_body), seen_request(next)});
}

TEST_CASE("a value over item_bytes_max is too_large once, skipped by counting, never buffered") {
  const ParserLimits limits{1 << 20, 64 * 1024};
  const uint32_t body = 0xffffffff;
  const std::string header = raw_header(static_cast<uint8_t>(Opcode::set), 3, 8, body, 77);
  const std::string head = store_extras(1, 2) + "key";
  Feeder<ParserLimits> feeder(limits);
  feeder.feed(header + head);
  REQUIRE(feeder.events().size() == 1);
  CHECK(feeder.events()[0].kind == EventKind::too_large);
  CHECK(feeder.events()[0].key == "key");
  CHECK(feeder.events()[0].value_size == body - 11);
  feed_filler(feeder, body - 11, 'v');
  CHECK(feeder.parser().at_frame_boundary());
  feeder.feed(request(Opcode::noop, "", "", "", 5));
  REQUIRE(feeder.events().size() == 2);
  CHECK(feeder.events()[1].header.opaque == 5);
}

TEST_CASE("a byte other than 0x80 where a header starts is bad_magic, then everything is discarded") {
  const std::string noop = request(Opcode::noop, "", "", "");
  check_every_split(small_limits, noop + "\x81" + noop + "get k\r\n", {seen_request(noop), seen_bad_magic(0x81)});
  check_every_split(small_limits, std::string("\x00", 1) + noop, {seen_bad_magic(0x00)});
}

TEST_CASE("values above inline_value_bytes_max stream straight from the input") {
  const ParserLimits limits{4 << 20, 64 * 1024};
  const std::string value = pattern_bytes(3 << 20, 9);
  const std::string bytes = request(Opcode::set, store_extras(0, 0), "big", value);
  Feeder<ParserLimits> feeder(limits);
  const size_t pieces = feed_receive_buffers(feeder, bytes, 16 * 1024, McBinaryParser::head_bytes_max());
  CHECK(pieces > 100);
  CHECK(feeder.events() == seen_stream(bytes));
}

TEST_CASE("a pipeline of thousands of requests parses the same under random splits") {
  std::mt19937 random(1234);
  Mix<Seen> mix;
  for (int i = 0; i < 3000; ++i) {
    const std::string key = "key" + std::to_string(i);
    const size_t value_size = random() % 3 == 0 ? random() % 1200 : random() % 40;
    const std::string bytes =
        request(static_cast<uint8_t>(random() % 0x30), random() % 2 ? store_extras(i, i) : "", key,
                pattern_bytes(value_size, static_cast<uint8_t>(i)), i, i);
    mix.add(bytes, expected_of(small_limits, bytes));
  }
  for (int round = 0; round < 5; ++round) {
    std::vector<size_t> cuts;
    for (size_t at = random() % 50; at < mix.bytes.size(); at += 1 + random() % 300) cuts.push_back(at);
    REQUIRE(parse_cut(small_limits, mix.bytes, cuts) == mix.expected);
  }
}

TEST_CASE("peek_keys finds the keys of whole requests only, up to max") {
  const std::string bytes = request(Opcode::getkq, "", "a", "") + request(Opcode::noop, "", "", "") +
                            request(Opcode::set, store_extras(0, 0), "b", "v") + request(Opcode::getq, "", "c", "");
  std::string_view keys[4];
  REQUIRE(peek_keys(bytes, keys, 4) == 3);
  CHECK(keys[0] == "a");
  CHECK(keys[1] == "b");
  CHECK(keys[2] == "c");
  CHECK(peek_keys(bytes, keys, 2) == 2);
  CHECK(peek_keys(std::string_view(bytes).substr(0, bytes.size() - 1), keys, 4) == 2);
  CHECK(peek_keys("\x81" + bytes, keys, 4) == 0);
}

TEST_CASE("buffered bytes stay bounded whatever the input") {
  const ParserLimits limits{1 << 20, 64 * 1024};
  const std::string value = pattern_bytes(64 * 1024, 5);
  const std::string bytes = request(Opcode::set, std::string(255, 'e'), std::string(250, 'k'), value);
  Feeder<ParserLimits> feeder(limits);
  feed_receive_buffers(feeder, bytes, 1, McBinaryParser::head_bytes_max() + limits.inline_value_bytes_max);
  REQUIRE(feeder.events().size() == 1);
  CHECK(feeder.events()[0].data == value);
  CHECK(feeder.peak_buffered_bytes() <= McBinaryParser::head_bytes_max() + limits.inline_value_bytes_max);
  feeder.feed({});
  CHECK(feeder.parser().buffered_bytes() == 0);
}

}  // namespace
}  // namespace ringcache::protocol::memcache_binary::test
