// FrameParser unit tests: golden frames under every split, hostile bytes,
// EBIG resync, value streaming, the replication hello, a model check over a
// long random pipeline, and the bound on what the parser buffers.
#include <doctest/doctest.h>

#include <random>

#include "tests/protocol/binary_parser_harness.h"
#include "tests/protocol/parser_sweep.h"

namespace ringcache::protocol::test {
namespace {

using namespace ringcache::test;

// Small limits make streaming and EBIG reachable with short frames, so every
// split position of every golden frame stays cheap to try.
constexpr ParserLimits small_limits{1000, 32};

static_assert(static_cast<uint8_t>(Opcode::put) == 11 && static_cast<uint8_t>(Opcode::del) == 12 &&
              static_cast<uint8_t>(Opcode::get) == 13 && static_cast<uint8_t>(Opcode::stats) == 21 &&
              static_cast<uint8_t>(Opcode::auth) == 31 && static_cast<uint8_t>(Opcode::repl_hello) == 200);
static_assert(static_cast<uint8_t>(Reply::ok) == 101 && static_cast<uint8_t>(Reply::einval) == 111 &&
              static_cast<uint8_t>(Reply::enotfound) == 112 && static_cast<uint8_t>(Reply::ebinary) == 113 &&
              static_cast<uint8_t>(Reply::ebig) == 114 && static_cast<uint8_t>(Reply::eunk) == 115);

// What the parser must report for one PUT: whole when the value is at most
// inline_value_bytes_max and key + value fit the frame buffer, else streamed.
std::vector<Seen> expected_put(const ParserLimits& limits, std::string_view key, std::string_view value) {
  const uint64_t frame_buffer_max = std::max<uint64_t>(limits.item_bytes_max, limits.inline_value_bytes_max);
  if (value.size() <= limits.inline_value_bytes_max && key.size() + value.size() <= frame_buffer_max)
    return {seen_put(key, value)};
  return seen_stream(key, value);
}

struct Golden {
  const char* name;
  std::string bytes;
  std::vector<Seen> expected;
};

std::vector<Golden> golden_frames() {
  const std::string binary_key("\x00\xFF\x0D\x0B\xC8", 5);
  const std::string key_max = pattern_bytes(small_limits.item_bytes_max, 1);
  const std::string value_inline = pattern_bytes(small_limits.inline_value_bytes_max, 2);
  const std::string value_streamed = pattern_bytes(small_limits.inline_value_bytes_max + 1, 3);
  return {
      // The first two are written out byte by byte to pin the wire format itself.
      {"get literal", std::string("\x0D\x00\x00\x00\x02" "ab", 7), {seen_get("ab")}},
      {"put literal", std::string("\x0B\x00\x00\x00\x01k\x00\x00\x00\x02vv", 12), {seen_put("k", "vv")}},
      {"get", get_frame("user:42"), {seen_get("user:42")}},
      {"get empty key", get_frame(""), {seen_get("")}},
      {"get binary key", get_frame(binary_key), {seen_get(binary_key)}},
      {"get key of item_max", get_frame(key_max), {seen_get(key_max)}},
      {"del", del_frame("user:42"), {seen_del("user:42")}},
      {"del empty key", del_frame(""), {seen_del("")}},
      {"stats", stats_frame(), {seen_stats()}},
      {"put", put_frame("user:42", "hello"), {seen_put("user:42", "hello")}},
      {"put empty key and value", put_frame("", ""), {seen_put("", "")}},
      {"put binary", put_frame(binary_key, binary_key), {seen_put(binary_key, binary_key)}},
      {"put value at inline max", put_frame("k", value_inline), {seen_put("k", value_inline)}},
      {"put value streamed", put_frame("k", value_streamed), seen_stream("k", value_streamed)},
      {"put key of item_max, empty value", put_frame(key_max, ""), {seen_put(key_max, "")}},
      {"put key of item_max, small value", put_frame(key_max, "v"), seen_stream(key_max, "v")},
      {"invalid opcode", opcode_byte(0), {seen_invalid(0)}},
      {"get too big", opcode_byte(13) + length_field(1001) + pattern_bytes(1001, 4), {seen_too_big()}},
      {"put value too big", opcode_byte(11) + field("k") + length_field(1001) + pattern_bytes(1001, 5),
       {seen_too_big()}},
  };
}

TEST_CASE("golden frames give the same events whole and split anywhere") {
  for (const Golden& golden : golden_frames()) {
    CAPTURE(golden.name);
    check_every_split(small_limits, golden.bytes, golden.expected);
  }
}

TEST_CASE("golden frames pipelined back to back, after a replication hello") {
  std::string bytes = hello_frame("RINGCACHE-REPL/1 node-a");
  std::vector<Seen> expected = {seen_hello("RINGCACHE-REPL/1 node-a")};
  for (const Golden& golden : golden_frames()) {
    bytes += golden.bytes;
    expected = concat(expected, golden.expected);
  }
  check_every_split(small_limits, bytes, expected);
}

TEST_CASE("frames that arrive whole are parsed in place, with no allocation") {
  const std::string bytes = put_frame("key", "value") + get_frame("key") + put_frame("k", pattern_bytes(100, 6));
  FrameParser parser(small_limits);
  std::string_view rest = bytes;
  size_t events = 0;
  for (;;) {
    size_t consumed = 0;
    const Event event = parser.next(rest, consumed);
    CHECK(parser.buffered_bytes() == 0);
    if (event.kind == EventKind::need_more) break;
    for (const std::string_view view : {event.key, event.data})
      if (!view.empty()) CHECK(view_inside(view, bytes));
    rest.remove_prefix(consumed);
    ++events;
  }
  CHECK(events == 5);  // put, get, put_begin, one put_data, put_end
}

TEST_CASE("the frame boundary is reported only between frames") {
  FrameParser parser(small_limits);
  CHECK(parser.at_frame_boundary());
  const std::string bytes = put_frame("key", "value");
  size_t consumed = 0;
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    CHECK(parser.next(std::string_view(bytes).substr(i, 1), consumed).kind == EventKind::need_more);
    CHECK_FALSE(parser.at_frame_boundary());
    CHECK((parser.buffered_bytes() > 0) == (i >= 5));  // key bytes start at offset 5
  }
  const Event event = parser.next(std::string_view(bytes).substr(bytes.size() - 1), consumed);
  CHECK(event.kind == EventKind::put);
  CHECK(event.key == "key");
  CHECK(event.data == "value");
  CHECK(parser.at_frame_boundary());
  CHECK(parser.next({}, consumed).kind == EventKind::need_more);
  CHECK(consumed == 0);
  CHECK(parser.buffered_bytes() == 0);
}

TEST_CASE("every unknown opcode byte costs exactly one byte and the stream resyncs") {
  const std::string before = get_frame("a");
  const std::string after = get_frame("b");
  size_t unknown = 0;
  for (int value = 0; value <= 255; ++value) {
    const auto byte = static_cast<uint8_t>(value);
    if (byte == 11 || byte == 12 || byte == 13 || byte == 21) continue;
    ++unknown;
    CAPTURE(value);
    const std::string bytes = before + opcode_byte(byte) + after;
    FrameParser parser(small_limits);
    std::string_view rest = bytes;
    size_t consumed = 0;
    CHECK(parser.next(rest, consumed).kind == EventKind::get);
    rest.remove_prefix(consumed);
    const Event invalid = parser.next(rest, consumed);
    CHECK(invalid.kind == EventKind::invalid_opcode);
    CHECK(invalid.byte == byte);
    CHECK(consumed == 1);
    CHECK(parser.at_frame_boundary());
    rest.remove_prefix(consumed);
    const Event next = parser.next(rest, consumed);
    CHECK(next.kind == EventKind::get);
    CHECK(next.key == "b");
    check_every_split(small_limits, bytes, {seen_get("a"), seen_invalid(byte), seen_get("b")});
    // As the connection's first byte, only 200 means something else.
    if (byte != 200)
      check_every_split(small_limits, opcode_byte(byte) + after, {seen_invalid(byte), seen_get("b")});
  }
  CHECK(unknown == 252);
}

TEST_CASE("a too long key or value is reported once and the rest of its frame is skipped") {
  const ParserLimits limits{100, 32};
  const std::string next = get_frame("next");
  const std::string long_key = pattern_bytes(101, 7);
  const std::string long_value = pattern_bytes(101, 8);
  const std::vector<Seen> too_big_then_next = {seen_too_big(), seen_get("next")};
  SUBCASE("get") { check_every_split(limits, get_frame(long_key) + next, too_big_then_next); }
  SUBCASE("del") { check_every_split(limits, del_frame(long_key) + next, too_big_then_next); }
  SUBCASE("put with a long key") {
    check_every_split(limits, put_frame(long_key, "value") + next, too_big_then_next);
  }
  SUBCASE("put with a long value") {
    check_every_split(limits, put_frame("key", long_value) + next, too_big_then_next);
  }
  SUBCASE("put with both too long is one answer") {
    check_every_split(limits, put_frame(long_key, pattern_bytes(5000, 9)) + next, too_big_then_next);
  }
  SUBCASE("a bytes that look like opcodes inside a skipped key stay skipped") {
    const std::string opcodes_key(101, '\x0D');
    check_every_split(limits, get_frame(opcodes_key) + next, too_big_then_next);
  }
  SUBCASE("lengths equal to item_max are accepted") {
    const std::string key = pattern_bytes(100, 10);
    const std::string value = pattern_bytes(100, 11);
    check_every_split(limits, get_frame(key) + put_frame("k", value) + next,
                      concat(concat({seen_get(key)}, seen_stream("k", value)), {seen_get("next")}));
  }
}

// Filler that looks like GET opcodes: skipped, never taken for frames.
constexpr char filler_byte = '\x0D';

TEST_CASE("0xFFFFFFFF lengths are too big and fully skipped") {
  const ParserLimits limits{1 << 20, 64 * 1024};
  const std::string all_ones = length_field(0xFFFFFFFF);
  SUBCASE("key of a put, then its value length and value") {
    Feeder feeder(limits);
    feeder.feed(opcode_byte(11) + all_ones);
    feed_filler(feeder, 0xFFFFFFFFull, filler_byte);
    CHECK_FALSE(feeder.parser().at_frame_boundary());
    feeder.feed(all_ones);
    feed_filler(feeder, 0xFFFFFFFFull, filler_byte);
    CHECK(feeder.parser().at_frame_boundary());
    feeder.feed(get_frame("next"));
    CHECK(feeder.events() == std::vector<Seen>{seen_too_big(), seen_get("next")});
  }
  SUBCASE("value of a put") {
    Feeder feeder(limits);
    feeder.feed(opcode_byte(11) + field("key") + all_ones);
    feed_filler(feeder, 0xFFFFFFFFull, filler_byte);
    feeder.feed(stats_frame());
    CHECK(feeder.events() == std::vector<Seen>{seen_too_big(), seen_stats()});
  }
  SUBCASE("not too big when item_max allows it") {
    Feeder feeder(ParserLimits{uint64_t{1} << 33, 64 * 1024});
    feeder.feed(opcode_byte(13) + all_ones + "abc");
    CHECK(feeder.events().empty());
    CHECK_FALSE(feeder.parser().at_frame_boundary());
    CHECK(feeder.parser().buffered_bytes() > 0);
    CHECK(feeder.parser().buffered_bytes() <= 256);
  }
}

TEST_CASE("values above inline_value_bytes_max stream straight from the input") {
  const ParserLimits limits{1 << 20, 64 * 1024};
  const std::string at_max = pattern_bytes(64 * 1024, 12);
  const std::string above_max = pattern_bytes(64 * 1024 + 1, 13);
  const std::string large = pattern_bytes(1 << 20, 14);
  SUBCASE("boundary at exactly inline_value_bytes_max") {
    for (const auto& [value, expected] : {std::pair{at_max, std::vector<Seen>{seen_put("k", at_max)}},
                                          std::pair{above_max, seen_stream("k", above_max)}}) {
      const std::string bytes = put_frame("k", value) + stats_frame();
      const std::vector<Seen> with_stats = concat(expected, {seen_stats()});
      check_sweep(limits, bytes, with_stats);
      // Cuts around every field edge, including the last value byte.
      for (const size_t cut : {size_t{1}, size_t{5}, size_t{6}, size_t{10}, size_t{11}, bytes.size() - 2,
                               bytes.size() - 1}) {
        CAPTURE(cut);
        CHECK(parse_cut(limits, bytes, {cut}) == with_stats);
      }
    }
  }
  SUBCASE("pieces add up exactly and are views into each input") {
    const std::string bytes = put_frame("big", large);
    constexpr size_t receive_buffer_bytes = 16 * 1024;
    Feeder feeder(limits);
    CHECK(feed_receive_buffers(feeder, bytes, receive_buffer_bytes, 0) > 60);
    CHECK(feeder.events() == seen_stream("big", large));
  }
  SUBCASE("a small value streams when key + value would not fit the frame buffer") {
    const ParserLimits tight{100, 64};
    const std::string key90 = pattern_bytes(90, 15);
    const std::string key80 = pattern_bytes(80, 16);
    const std::string key36 = pattern_bytes(36, 17);
    const std::string value20 = pattern_bytes(20, 18);
    const std::string value64 = pattern_bytes(64, 19);
    check_every_split(tight, put_frame(key90, value20), seen_stream(key90, value20));
    check_every_split(tight, put_frame(key80, value20), {seen_put(key80, value20)});
    check_every_split(tight, put_frame(key36, value64), {seen_put(key36, value64)});
  }
}

TEST_CASE("replication hello only as the connection's first byte") {
  const std::string hello = "RINGCACHE-REPL/1 node-b";
  SUBCASE("valid hello, then ordinary frames; 200 later is unknown") {
    check_every_split(small_limits, hello_frame(hello) + get_frame("k") + opcode_byte(200) + stats_frame(),
                      {seen_hello(hello), seen_get("k"), seen_invalid(200), seen_stats()});
  }
  SUBCASE("empty and 256-byte hellos are accepted") {
    const std::string longest = pattern_bytes(256, 20);
    check_every_split(small_limits, hello_frame(""), {seen_hello("")});
    check_every_split(small_limits, hello_frame(longest), {seen_hello(longest)});
  }
  SUBCASE("a 257-byte hello is refused and the rest is discarded") {
    const std::string bytes = hello_frame(pattern_bytes(257, 21)) + get_frame("k");
    check_every_split(small_limits, bytes, {seen_repl_invalid()});
    Feeder feeder(small_limits);
    feeder.feed(opcode_byte(200) + length_field(0xFFFFFFFF));
    feeder.feed(get_frame("ignored"));
    CHECK(feeder.events() == std::vector<Seen>{seen_repl_invalid()});
    CHECK(feeder.parser().buffered_bytes() == 0);
  }
  SUBCASE("200 after any other first byte is an unknown opcode") {
    check_every_split(small_limits, get_frame("k") + opcode_byte(200) + get_frame("x"),
                      {seen_get("k"), seen_invalid(200), seen_get("x")});
    check_every_split(small_limits, opcode_byte(0) + opcode_byte(200), {seen_invalid(0), seen_invalid(200)});
  }
}

std::string random_bytes(std::mt19937_64& rng, size_t size) {
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

size_t random_size(std::mt19937_64& rng, uint64_t around) {
  switch (rng() % 6) {
    case 0: return 0;
    case 1: return rng() % 8;
    case 2: return static_cast<size_t>(around - 1 + rng() % 3);  // around an edge
    case 3: return static_cast<size_t>(rng() % (2 * around));
    default: return static_cast<size_t>(rng() % 24);
  }
}

// A long pipeline of random frames with the events a simple model of the
// protocol expects.
Mix<Seen> make_mix(const ParserLimits& limits, size_t frames, bool with_too_big, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Mix<Seen> mix;
  mix.add(get_frame("first"), {seen_get("first")});  // so that no 200 opens the stream
  for (size_t i = 0; i < frames; ++i) {
    const std::string key = random_bytes(rng, std::min<size_t>(random_size(rng, 16), limits.item_bytes_max));
    switch (rng() % (with_too_big ? 8 : 7)) {
      case 0: mix.add(get_frame(key), {seen_get(key)}); break;
      case 1: mix.add(del_frame(key), {seen_del(key)}); break;
      case 2: mix.add(stats_frame(), {seen_stats()}); break;
      case 3:
      case 4: {
        const std::string value = random_bytes(rng, random_size(rng, limits.inline_value_bytes_max));
        mix.add(put_frame(key, value), expected_put(limits, key, value));
        break;
      }
      case 5: {
        auto byte = static_cast<uint8_t>(rng());
        while (byte == 11 || byte == 12 || byte == 13 || byte == 21) byte = static_cast<uint8_t>(rng());
        mix.add(opcode_byte(byte), {seen_invalid(byte)});
        break;
      }
      case 6: {
        const std::string key_max = random_bytes(rng, limits.item_bytes_max);
        mix.add(put_frame(key_max, ""), {seen_put(key_max, "")});
        break;
      }
      default: {
        const std::string too_long = random_bytes(rng, limits.item_bytes_max + 1 + rng() % 8);
        const std::string frame = rng() % 2 ? put_frame(key, too_long) : put_frame(too_long, key);
        mix.add(rng() % 3 ? frame : get_frame(too_long), {seen_too_big()});
        break;
      }
    }
  }
  return mix;
}

// The model check: the events must carry enough to rebuild the exact input.
std::string reencode(const std::vector<Seen>& events) {
  std::string out;
  for (const Seen& seen : events) {
    switch (seen.kind) {
      case EventKind::get: out += get_frame(seen.key); break;
      case EventKind::del: out += del_frame(seen.key); break;
      case EventKind::stats: out += stats_frame(); break;
      case EventKind::put: out += put_frame(seen.key, seen.data); break;
      case EventKind::put_begin:
        out += opcode_byte(11) + field(seen.key) + length_field(static_cast<uint32_t>(seen.value_size));
        break;
      case EventKind::put_data: out += seen.data; break;
      case EventKind::put_end: break;
      case EventKind::invalid_opcode: out += opcode_byte(seen.byte); break;
      case EventKind::repl_hello: out += hello_frame(seen.data); break;
      default: FAIL("event that cannot be re-encoded: " << seen);
    }
  }
  return out;
}

std::vector<size_t> random_cuts(std::mt19937_64& rng, size_t size) {
  constexpr size_t piece_bytes_scales[] = {1, 7, 64, 1500, 16384};
  std::vector<size_t> cuts;
  for (size_t cut = 0;;) {
    cut += 1 + rng() % piece_bytes_scales[rng() % std::size(piece_bytes_scales)];
    if (cut >= size) return cuts;
    cuts.push_back(cut);
  }
}

TEST_CASE("a pipeline of thousands of frames parses the same under random splits") {
  constexpr size_t frames = 5000;
  constexpr size_t split_rounds = 4;
  const ParserLimits limits{200, 48};
  for (const bool with_too_big : {false, true}) {
    CAPTURE(with_too_big);
    const Mix<Seen> mix = make_mix(limits, frames, with_too_big, with_too_big ? 7 : 42);
    REQUIRE(mix.expected.size() > frames);
    check_sweep(limits, mix.bytes, mix.expected);
    if (!with_too_big) CHECK(reencode(parse_whole(limits, mix.bytes)) == mix.bytes);
    std::mt19937_64 rng(1234);
    for (size_t round = 0; round < split_rounds; ++round) {
      CAPTURE(round);
      CHECK(parse_cut(limits, mix.bytes, random_cuts(rng, mix.bytes.size())) == mix.expected);
    }
  }
}

TEST_CASE("AUTH (31) is an opcode only with ParserLimits::auth") {
  constexpr uint32_t field_max = ParserLimits::auth_field_bytes_max;
  // STATS: a next frame that no item limit refuses.
  const std::string next = stats_frame();
  SUBCASE("without it, 31 costs one byte like any unknown opcode") {
    check_every_split(small_limits, opcode_byte(31) + next, {seen_invalid(31), seen_stats()});
  }
  // Item limits far below the credentials': AUTH's fields have their own bound and always come whole.
  for (const ParserLimits& limits : {ParserLimits{1000, 32, true}, ParserLimits{0, 0, true}, ParserLimits{4, 1, true}}) {
    CAPTURE(limits.item_bytes_max);
    CAPTURE(limits.inline_value_bytes_max);
    SUBCASE("user and password, whole under every split") {
      check_every_split(limits, auth_frame("alice", "s3cret") + next, {seen_auth("alice", "s3cret"), seen_stats()});
    }
    SUBCASE("empty fields and fields of exactly the limit") {
      const std::string user = pattern_bytes(field_max, 30);
      const std::string password = pattern_bytes(field_max, 31);
      check_every_split(limits, auth_frame("", "") + auth_frame(user, password) + next,
                        {seen_auth("", ""), seen_auth(user, password), seen_stats()});
    }
    SUBCASE("a user or password too long is one auth_too_big and the frame is skipped") {
      const std::string too_long = pattern_bytes(field_max + 1, 32);
      check_every_split(limits, auth_frame(too_long, "pw") + next, {seen_auth_too_big(), seen_stats()});
      check_every_split(limits, auth_frame("alice", too_long) + next, {seen_auth_too_big(), seen_stats()});
    }
    SUBCASE("after a replication hello and pipelined with requests") {
      check_every_split(limits, hello_frame("node") + auth_frame("u", "p") + stats_frame() + auth_frame("u", "q"),
                        {seen_hello("node"), seen_auth("u", "p"), seen_stats(), seen_auth("u", "q")});
    }
  }
  SUBCASE("what it buffers stays within buffer_bytes_max()") {
    const ParserLimits limits{4, 1, true};
    const std::string bytes = auth_frame(pattern_bytes(field_max, 33), pattern_bytes(field_max, 34));
    Feeder feeder(limits);
    for (const char byte : bytes) feeder.feed(std::string_view(&byte, 1));
    CHECK(feeder.peak_buffered_bytes() <= FrameParser(limits).buffer_bytes_max());
    CHECK(FrameParser(limits).buffer_bytes_max() == 2 * field_max);
    CHECK(feeder.parser().buffered_bytes() == 0);
  }
}

TEST_CASE("peek_frame_keys finds the keys of whole frames only, up to max") {
  const std::string frames[] = {get_frame("alpha"), stats_frame(), put_frame("beta", "value-b"),
                                del_frame(std::string("g\0mma", 5)), get_frame("delta")};
  std::string pipeline;
  std::vector<std::pair<size_t, size_t>> keys_by_end;  // (end of a keyed frame, keys so far)
  for (const std::string& f : frames) {
    pipeline += f;
    if (f != stats_frame()) keys_by_end.emplace_back(pipeline.size(), keys_by_end.size() + 1);
  }
  std::string_view keys[8];
  REQUIRE(peek_frame_keys(pipeline, keys, 8) == 4);
  CHECK(keys[0] == "alpha");
  CHECK(keys[1] == "beta");
  CHECK(keys[2] == std::string_view("g\0mma", 5));
  CHECK(keys[3] == "delta");
  CHECK(peek_frame_keys(pipeline, keys, 2) == 2);
  // Every cut: only frames wholly inside the input count (a PUT needs its value too).
  for (size_t cut = 0; cut <= pipeline.size(); ++cut) {
    CAPTURE(cut);
    size_t whole = 0;
    for (const auto& [end, count] : keys_by_end) {
      if (end <= cut) whole = count;
    }
    CHECK(peek_frame_keys(std::string_view(pipeline).substr(0, cut), keys, 8) == whole);
  }
  // An unknown opcode or a replication hello ends the look-ahead; no key is invented.
  CHECK(peek_frame_keys(get_frame("a") + opcode_byte(99) + get_frame("b"), keys, 8) == 1);
  CHECK(peek_frame_keys(hello_frame("node"), keys, 8) == 0);
  CHECK(peek_frame_keys(opcode_byte(13) + length_field(0xFFFFFFFF) + "xyz", keys, 8) == 0);
  CHECK(peek_frame_keys("", keys, 8) == 0);
}

TEST_CASE("buffered bytes stay bounded whatever the input") {
  const ParserLimits limit_sets[] = {{0, 0},           {10, 64},
                                     {1000, 32},       {1 << 20, 64 * 1024},
                                     {uint64_t{1} << 40, 64 * 1024}, {0, 0, true}, {1000, 32, true}};
  constexpr size_t garbage_bytes = 256 * 1024;
  for (const ParserLimits& limits : limit_sets) {
    CAPTURE(limits.item_bytes_max);
    CAPTURE(limits.inline_value_bytes_max);
    const uint64_t auth_bytes = limits.auth ? 2 * uint64_t{ParserLimits::auth_field_bytes_max} : 0;
    const uint64_t bound_bytes = std::max<uint64_t>({limits.item_bytes_max, limits.inline_value_bytes_max,
                                                     ParserLimits::repl_hello_bytes_max, auth_bytes});
    std::mt19937_64 rng(limits.item_bytes_max + 99);
    const std::string garbage = random_bytes(rng, garbage_bytes);
    // The Feeder fails the test as soon as buffered_bytes() passes the bound.
    Feeder feeder(limits);
    feeder.feed_cut(garbage, random_cuts(rng, garbage.size()));
    CHECK(feeder.peak_buffered_bytes() <= bound_bytes);
  }
  SUBCASE("a bare length allocates nothing; buffering grows with the bytes received") {
    Feeder feeder(ParserLimits{1 << 20, 64 * 1024});
    feeder.feed(opcode_byte(13) + length_field(1 << 20));
    CHECK(feeder.parser().buffered_bytes() == 0);
    feeder.feed("x");
    CHECK(feeder.parser().buffered_bytes() <= 256);
    feeder.feed(pattern_bytes(10000, 22));
    CHECK(feeder.parser().buffered_bytes() < 2 * 10001);
  }
  SUBCASE("the largest key with the largest value, one byte at a time") {
    const ParserLimits limits{1000, 32};
    for (const size_t key_bytes : {size_t{1000}, size_t{968}, size_t{969}}) {
      CAPTURE(key_bytes);
      const std::string bytes = put_frame(pattern_bytes(key_bytes, 23), pattern_bytes(32, 24));
      Feeder feeder(limits);
      for (const char byte : bytes) feeder.feed(std::string_view(&byte, 1));
      CHECK(feeder.peak_buffered_bytes() <= 1000);
      CHECK(feeder.events().size() == (key_bytes == 968 ? 1 : 3));
      CHECK(feeder.parser().buffered_bytes() == 0);
    }
  }
}

}  // namespace
}  // namespace ringcache::protocol::test
