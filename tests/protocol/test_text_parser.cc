// TextParser framing tests: inline and streamed data blocks, refused blocks
// skipped by counting, line limits and what follows them, pipelines, the
// bound on what the parser buffers, and a model check over a long random
// pipeline. Grammar tests are in test_text_command.cc.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "server/protocol/text/text_peek.h"
#include "tests/protocol/parser_sweep.h"
#include "tests/protocol/text_parser_harness.h"

namespace ringcache::protocol::text::test {
namespace {

using namespace ringcache::test;

// Small limits make streaming, too_large and line_too_long reachable with
// short inputs, so every split position stays cheap to try.
constexpr ParserLimits small_limits{1000, 32, 64, 128};

std::string set_text(std::string_view key, std::string_view value, std::string_view command = "set") {
  return std::string(command) + " " + std::string(key) + " 0 0 " + std::to_string(value.size()) + "\r\n" +
         std::string(value) + "\r\n";
}

// What the parser must report for one set: whole up to inline_value_bytes_max, else streamed.
std::vector<Seen> expected_set(const ParserLimits& limits, std::string_view key, std::string_view value) {
  const Seen request = seen_storage(C::set, std::string(key), 0, 0, std::string(value));
  if (value.size() <= limits.inline_value_bytes_max) return {request};
  return seen_stream(request, value);
}

Seen seen_too_large(Command command, std::string key, bool noreply = false) {
  Seen seen = seen_error(E::too_large, command, noreply);
  seen.key = std::move(key);
  return seen;
}

TEST_CASE("values up to inline_value_bytes_max come whole, longer ones stream") {
  const std::string at_max = pattern_bytes(small_limits.inline_value_bytes_max, 1);
  const std::string above_max = pattern_bytes(small_limits.inline_value_bytes_max + 1, 2);
  const std::string item_max = pattern_bytes(small_limits.item_bytes_max, 3);
  check_every_split(small_limits, set_text("k", at_max) + "mn\r\n",
                    concat(expected_set(small_limits, "k", at_max), {seen_request(C::meta_noop)}));
  check_every_split(small_limits, set_text("k", above_max) + "mn\r\n",
                    concat(expected_set(small_limits, "k", above_max), {seen_request(C::meta_noop)}));
  check_every_split(small_limits, set_text("k", item_max), expected_set(small_limits, "k", item_max));
  SUBCASE("a streamed ms carries its flags at value_end too") {
    const std::string bytes = "ms key 33 T5 O7 q\r\n" + above_max + "\r\n";
    check_every_split(small_limits, bytes,
                      seen_stream(seen_meta(C::meta_set, "key", meta_flags("TOq").with_opaque("7").with_ttl(5)), above_max));
  }
}

TEST_CASE("a streamed value's pieces are views into each input; the parser holds only its line") {
  const ParserLimits limits{uint64_t{1} << 30, 64 * 1024};
  const std::string value = pattern_bytes(1 << 20, 4);
  const std::string bytes = set_text("big", value) + "get big\r\n";
  constexpr size_t receive_buffer_bytes = 16 * 1024;
  Feeder feeder(limits);
  CHECK(feed_receive_buffers(feeder, bytes, receive_buffer_bytes, 256) > 60);
  CHECK(feeder.events() == concat(expected_set(limits, "big", value), {seen_retrieval(C::get, "big")}));
  CHECK(feeder.parser().buffered_bytes() == 0);
}

TEST_CASE("a data block must end with \\r\\n, inline or streamed") {
  const std::string above_max = pattern_bytes(small_limits.inline_value_bytes_max + 5, 5);
  for (const std::string terminator : {"\n\r", "xx", "\r\r", "\nx"}) {
    CAPTURE(terminator);
    check_every_split(small_limits, "set k 0 0 2\r\nab" + terminator + "mn\r\n",
                      {seen_error(E::bad_data_chunk, C::set), seen_request(C::meta_noop)});
    std::vector<Seen> streamed = seen_stream(seen_storage(C::set, "k", 0, 0, above_max), above_max);
    streamed.back() = seen_error(E::bad_data_chunk, C::set);
    check_every_split(small_limits, "set k 0 0 " + std::to_string(above_max.size()) + "\r\n" + above_max + terminator + "mn\r\n",
                      concat(streamed, {seen_request(C::meta_noop)}));
  }
}

TEST_CASE("a refused data block is skipped by counting, never buffered") {
  const ParserLimits limits{1 << 20, 64 * 1024};
  SUBCASE("too large: 4 GiB") {
    Feeder feeder(limits);
    feeder.feed("set k 1 2 4294967296\r\n");
    CHECK(feeder.events() == std::vector<Seen>{seen_too_large(C::set, "k")});
    feed_filler(feeder, 4294967296ull, 'v');
    CHECK_FALSE(feeder.parser().at_frame_boundary());
    feeder.feed("\r\nmn\r\n");
    CHECK(feeder.parser().at_frame_boundary());
    CHECK(feeder.events() == std::vector<Seen>{seen_too_large(C::set, "k"), seen_request(C::meta_noop)});
  }
  SUBCASE("a bad line with a readable size: its block is skipped whatever it holds") {
    Feeder feeder(limits);
    feeder.feed("set k x 0 100\r\n");
    feeder.feed(std::string(50, 'v') + "\r\nget k\r\n");
    CHECK_FALSE(feeder.parser().at_frame_boundary());
    feeder.feed(std::string(50 - 9, 'v') + "\r\nmn\r\n");
    CHECK(feeder.events() == std::vector<Seen>{seen_error(E::bad_command_line, C::set), seen_request(C::meta_noop)});
  }
  SUBCASE("the terminator of a skipped block is not checked (memcached swallows size + 2)") {
    check_every_split(small_limits, "ms k 1001\r\n" + std::string(1003, 'v') + "mn\r\n",
                      {seen_too_large(C::meta_set, "k"), seen_request(C::meta_noop)});
  }
}

TEST_CASE("line limits: exact, one over, partial, and what follows") {
  const std::string at_max = "mn " + std::string(small_limits.line_bytes_max - 3, 'x');
  const std::string retrieval_at_max = "get " + std::string(small_limits.retrieval_line_bytes_max - 4, 'k');
  REQUIRE(at_max.size() == small_limits.line_bytes_max);
  SUBCASE("a line of exactly line_bytes_max, with either line end") {
    check_every_split(small_limits, at_max + "\r\n" + at_max + "\n",
                      {seen_request(C::meta_noop), seen_request(C::meta_noop)});
  }
  SUBCASE("one byte more ends the input") {
    for (const std::string end : {"\r\n", "\n"}) {
      check_every_split(small_limits, at_max + "x" + end + "mn\r\n", {seen_error(E::line_too_long)});
    }
  }
  SUBCASE("get lines may be longer, up to retrieval_line_bytes_max") {
    check_every_split(small_limits, retrieval_at_max + "\r\n",
                      {seen_retrieval(C::get, retrieval_at_max.substr(4))});
    check_every_split(small_limits, retrieval_at_max + "k\r\nmn\r\n", {seen_error(E::line_too_long)});
  }
  SUBCASE("a key too long inside an allowed get line is a client error, not a closed connection") {
    const ParserLimits limits{1000, 32, 2048, 4096};
    check_every_split(limits, "get " + std::string(300, 'k') + "\r\nmn\r\n",
                      {seen_error(E::bad_command_line, C::get), seen_request(C::meta_noop)});
  }
  SUBCASE("a partial line is refused as soon as it cannot fit, before its end arrives") {
    Feeder feeder(small_limits);
    feeder.feed(at_max + "\r");
    CHECK(feeder.events().empty());
    CHECK_FALSE(feeder.parser().at_frame_boundary());
    feeder.feed("\n" + at_max);
    CHECK(feeder.events() == std::vector<Seen>{seen_request(C::meta_noop)});
    feeder.feed("y");
    CHECK(feeder.events() == std::vector<Seen>{seen_request(C::meta_noop), seen_error(E::line_too_long)});
    CHECK(feeder.parser().closed());
    CHECK(feeder.parser().buffered_bytes() == 0);
    feeder.feed("\r\nmn\r\nset k 0 0 1\r\nx\r\n");
    CHECK(feeder.events().size() == 2);
    CHECK(feeder.parser().at_frame_boundary());
  }
  SUBCASE("memcached's defaults: 2048 for a command, 64 KiB of keys") {
    const ParserLimits limits{1 << 20};
    Feeder garbage(limits);
    garbage.feed(std::string(3000, 'x'));
    CHECK(garbage.events() == std::vector<Seen>{seen_error(E::line_too_long)});
    std::string keys;
    while (keys.size() + 11 <= 64 * 1024 - 4) keys += (keys.empty() ? "" : " ") + std::string(10, 'k');
    CHECK(parse_whole(limits, "get " + keys + "\r\n").front().kind == EventKind::request);
    CHECK(parse_chunks(limits, "get " + keys + "\r\n", 1000).front().kind == EventKind::request);
    CHECK(parse_chunks(limits, "get " + keys + std::string(64 * 1024, ' ') + "\r\n", 1000) ==
          std::vector<Seen>{seen_error(E::line_too_long)});
  }
}

TEST_CASE("pipelined multi-gets and sets parse in place without allocating") {
  const ParserLimits limits{1 << 20};
  std::string bytes;
  std::vector<Seen> expected;
  for (int i = 0; i < 500; ++i) {
    const std::string key = "key:" + std::to_string(i);
    const std::string value = pattern_bytes(static_cast<size_t>(i % 50), static_cast<uint8_t>(i));
    bytes += set_text(key, value) + "get " + key + " missing:" + std::to_string(i) + " " + key + "\r\n";
    expected.push_back(seen_storage(C::set, key, 0, 0, value));
    expected.push_back(seen_retrieval(C::get, key + " missing:" + std::to_string(i) + " " + key));
  }
  Feeder whole(limits);
  whole.feed(bytes);
  CHECK(whole.events() == expected);
  CHECK(whole.peak_buffered_bytes() == 0);
  check_sweep(limits, bytes, expected);
}

TEST_CASE("at_frame_boundary and what the parser holds between requests") {
  Feeder feeder(small_limits);
  CHECK(feeder.parser().at_frame_boundary());
  feeder.feed("get a");
  CHECK_FALSE(feeder.parser().at_frame_boundary());
  CHECK(feeder.parser().buffered_bytes() > 0);
  feeder.feed("\r\nset k 0 0 5\r\nab");
  CHECK_FALSE(feeder.parser().at_frame_boundary());
  feeder.feed("cde\r\n");
  CHECK(feeder.parser().at_frame_boundary());
  CHECK(feeder.parser().buffered_bytes() == 0);
  feeder.feed("set k 0 0 40\r\n" + std::string(10, 'v'));
  CHECK_FALSE(feeder.parser().at_frame_boundary());
  CHECK(feeder.streaming());
  feeder.feed(std::string(30, 'v') + "\r");
  CHECK_FALSE(feeder.parser().at_frame_boundary());
  feeder.feed("\nset k 0 0 2000\r\n" + std::string(100, 'v'));
  CHECK_FALSE(feeder.parser().at_frame_boundary());
  CHECK(feeder.parser().buffered_bytes() == 0);
  feeder.feed(std::string(1900, 'v') + "\r\n");
  CHECK(feeder.parser().at_frame_boundary());
  CHECK(feeder.events().size() == 6);
}

// A long pipeline of random requests with the events a simple model of the
// protocol expects.
Mix<Seen> make_mix(const ParserLimits& limits, size_t requests, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Mix<Seen> mix;
  const auto random_key = [&rng] {
    std::string key(1 + rng() % 12, 'a');
    for (char& c : key) c = static_cast<char>('!' + rng() % 94);
    return key;
  };
  const auto random_size = [&rng](uint64_t around) {
    switch (rng() % 4) {
      case 0: return static_cast<size_t>(rng() % 4);
      case 1: return static_cast<size_t>(around - 1 + rng() % 3);  // around an edge
      default: return static_cast<size_t>(rng() % (2 * around));
    }
  };
  for (size_t i = 0; i < requests; ++i) {
    const std::string key = random_key();
    switch (rng() % 9) {
      case 0: {
        const std::string second = random_key();
        mix.add("get " + key + " " + second + "\r\n", {seen_retrieval(C::get, key + " " + second)});
        break;
      }
      case 1: case 2: {
        std::string value(random_size(limits.inline_value_bytes_max), '\0');
        for (char& c : value) c = static_cast<char>(rng());
        mix.add(set_text(key, value), expected_set(limits, key, value));
        break;
      }
      case 3: {
        const size_t size = limits.item_bytes_max + 1 + rng() % 100;
        mix.add(set_text(key, std::string(size, 'v'), "add"), {seen_too_large(C::add, key)});
        break;
      }
      case 4: mix.add("delete " + key + " noreply\r\n", {seen_keyed(C::del, key, true)}); break;
      case 5: {
        const uint64_t delta = rng();
        mix.add("incr " + key + " " + std::to_string(delta) + "\r\n", {seen_keyed(C::incr, key, false, delta)});
        break;
      }
      case 6: mix.add("mg " + key + " v k O" + std::to_string(i) + "\r\n",
                  {seen_meta(C::meta_get, key, meta_flags("vkO").with_opaque(std::to_string(i)))});
        break;
      case 7: mix.add("set " + key + " 0 0 3\r\nabcd\r\n", {seen_error(E::bad_data_chunk, C::set), seen_error(E::unknown_command)});
        break;
      default: mix.add("bogus\r\n", {seen_error(E::unknown_command)}); break;
    }
  }
  return mix;
}

TEST_CASE("peek_text_keys finds the keys of whole requests only, up to max") {
  const std::vector<std::pair<std::string, std::vector<std::string>>> requests = {
      {"get a bb ccc\r\n", {"a", "bb", "ccc"}},
      {"set s 0 0 5\r\nhello\r\n", {"s"}},
      {"gat 100 g1 g2\n", {"g1", "g2"}},
      {"delete d noreply\r\n", {"d"}},
      {"cas c 1 2 3 99\r\nabc\r\n", {"c"}},
      {"mg m v f\r\n", {"m"}},
      {"ms n 2 T0\r\nxy\r\n", {"n"}},
      {"incr i 5\r\n", {"i"}},
      {"gets  two   spaces\r\n", {"two", "spaces"}},
  };
  std::string pipeline;
  std::vector<std::pair<size_t, std::vector<std::string>>> keys_by_end;
  std::vector<std::string> all;
  for (const auto& [bytes, request_keys] : requests) {
    pipeline += bytes;
    all.insert(all.end(), request_keys.begin(), request_keys.end());
    keys_by_end.emplace_back(pipeline.size(), all);
  }
  std::string_view keys[32];
  const size_t n = peek_text_keys(pipeline, keys, 32);
  REQUIRE(n == all.size());
  for (size_t i = 0; i < n; ++i) CHECK(keys[i] == all[i]);
  CHECK(peek_text_keys(pipeline, keys, 2) == 2);
  // Every cut: only whole requests count (a storage command with its data).
  for (size_t cut = 0; cut <= pipeline.size(); ++cut) {
    CAPTURE(cut);
    size_t whole = 0;
    for (const auto& [end, so_far] : keys_by_end) {
      if (end <= cut) whole = so_far.size();
    }
    CHECK(peek_text_keys(std::string_view(pipeline).substr(0, cut), keys, 32) == whole);
  }
  // Unknown commands end the look-ahead (a data block might follow them);
  // so does a storage command whose byte count is not a number.
  CHECK(peek_text_keys("get a\r\nstats\r\nget b\r\n", keys, 32) == 1);
  CHECK(peek_text_keys("set k 0 0 x\r\nget b\r\n", keys, 32) == 0);
  CHECK(peek_text_keys("set k 0 0 18446744073709551615\r\nab\r\n", keys, 32) == 0);
  CHECK(peek_text_keys("", keys, 32) == 0);
}

TEST_CASE("model check: a long random pipeline, whole, in sweep chunks and cut at random") {
  // Item limits stay small: every refused value is fed byte by byte below.
  for (const ParserLimits& limits : {small_limits, ParserLimits{3000, 1024, 256, 1024}}) {
    const Mix<Seen> mix = make_mix(limits, 1000, 7);
    check_sweep(limits, mix.bytes, mix.expected);
    std::mt19937_64 rng(11);
    std::vector<size_t> cuts;
    for (size_t cut = 0; cut < mix.bytes.size(); cut += 1 + rng() % 300) cuts.push_back(cut);
    Feeder feeder(limits);
    feeder.feed_cut(mix.bytes, cuts);
    CHECK(feeder.events() == mix.expected);
    CHECK(feeder.peak_buffered_bytes() <= feeder.parser().frame_buffer_bytes_max());
  }
}

}  // namespace
}  // namespace ringcache::protocol::text::test
