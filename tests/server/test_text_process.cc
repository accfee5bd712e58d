// TextProcessor (process/text_process.h, text_meta.cc) against a real store: the
// reply to every command of the memcached text protocol and what it leaves
// in the store, noreply, errors, a multi-get paused and resumed, streamed
// values. Requests are parsed by a real TextParser, as a TextSession does,
// or built as events where a test needs one exact event; time comes from the
// store's clock, which the tests move.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/io/log.h"
#include "server/io/output_queue.h"
#include "server/protocol/text/text_parser.h"
#include "server/process/binary_stats.h"
#include "server/process/text_process.h"
#include "server/process/text_stats.h"
#include "server/process/write_path.h"
#include "store/store.h"
#include "tests/server/server_test_util.h"

using namespace ringcache;
using namespace ringcache::server;
using ringcache::server::test::NeverPause;
using ringcache::server::test::PauseAtQueuedBytes;
using ringcache::server::test::pattern;
using ringcache::server::test::take_output;
using protocol::text::Command;
using protocol::text::Event;
using protocol::text::EventKind;

namespace {

// The store's seconds clock (StoreConfig::clock_s), moved by the tests.
std::atomic<uint32_t> clock_now_s{1'700'000'000};
uint32_t test_clock_s() { return clock_now_s.load(); }

struct Fixture : ringcache::server::test::TextPortStore {
  explicit Fixture(uint64_t item_bytes_max = 1 << 20)
      : TextPortStore(&test_clock_s, item_bytes_max),
        processor(thread, *write, text_stats.thread(0), stats_context, item_bytes_max),
        parser(processor.parser_limits()) {}

  // Parses `requests` as the next input of the connection and processes
  // every event (parse_each); returns the replies.
  std::string send(std::string_view requests, const PauseCheck& pause = NeverPause()) {
    ringcache::server::test::parse_each(parser, requests, [&](const Event& event) {
      if (processor.process(event, state, out, pause) == TextResult::close) closed = true;
    });
    return take_output(out);
  }

  // A single event, as built by a test.
  std::string process(const Event& event) {
    if (processor.process(event, state, out, NeverPause()) == TextResult::close) closed = true;
    return take_output(out);
  }

  std::string value_of(std::string_view key) { return send("get " + std::string(key) + "\r\n"); }

  // The cas of an item, read with gets.
  uint64_t cas_of(std::string_view key) {
    const std::string reply = value_of_with_cas(key);
    const size_t line_end = reply.find("\r\n");
    REQUIRE(line_end != std::string::npos);
    const size_t cas_start = reply.rfind(' ', line_end) + 1;
    return std::stoull(reply.substr(cas_start, line_end - cas_start));
  }
  std::string value_of_with_cas(std::string_view key) { return send("gets " + std::string(key) + "\r\n"); }

  TextCounters& counters() { return text_stats.thread(0); }

  TextProcessor processor;
  protocol::text::TextParser parser;
  TextRequestState state;
  OutputQueue out;
  bool closed = false;
};

std::string value_reply(std::string_view key, uint32_t flags, std::string_view value) {
  return "VALUE " + std::string(key) + " " + std::to_string(flags) + " " + std::to_string(value.size()) + "\r\n" +
         std::string(value) + "\r\n";
}

// A storage event as the parser hands it out around a streamed value.
Event stream_event(EventKind kind, Command command, std::string_view key, uint64_t value_size, uint32_t flags = 0) {
  Event event;
  event.kind = kind;
  event.command = command;
  event.key = key;
  event.value_size = value_size;
  event.flags = flags;
  return event;
}

Event data_event(Command command, std::string_view piece) {
  Event event;
  event.kind = EventKind::value_data;
  event.command = command;
  event.data = piece;
  return event;
}

}  // namespace

TEST_CASE("set, add, replace, append, prepend and cas answer as memcached and change the store") {
  Fixture f;
  CHECK(f.send("set k 5 0 3\r\nabc\r\n") == "STORED\r\n");
  CHECK(f.value_of("k") == value_reply("k", 5, "abc") + "END\r\n");
  CHECK(f.send("add k 0 0 1\r\nx\r\n") == "NOT_STORED\r\n");
  CHECK(f.send("add fresh 1 0 1\r\nx\r\n") == "STORED\r\n");
  CHECK(f.send("replace missing 0 0 1\r\nx\r\n") == "NOT_STORED\r\n");
  CHECK(f.send("replace k 7 0 2\r\nxy\r\n") == "STORED\r\n");
  CHECK(f.value_of("k") == value_reply("k", 7, "xy") + "END\r\n");
  CHECK(f.send("append k 0 0 2\r\n>>\r\nprepend k 0 0 2\r\n<<\r\n") == "STORED\r\nSTORED\r\n");
  CHECK(f.value_of("k") == value_reply("k", 7, "<<xy>>") + "END\r\n");  // concat keeps the flags
  CHECK(f.send("append missing 0 0 1\r\nx\r\nprepend missing 0 0 1\r\nx\r\n") == "NOT_STORED\r\nNOT_STORED\r\n");

  const uint64_t cas = f.cas_of("k");
  CHECK(f.send("cas k 0 0 3 " + std::to_string(cas + 1) + "\r\nbad\r\n") == "EXISTS\r\n");
  CHECK(f.send("cas k 9 0 3 " + std::to_string(cas) + "\r\nnew\r\n") == "STORED\r\n");
  CHECK(f.send("cas k 0 0 3 " + std::to_string(cas) + "\r\nold\r\n") == "EXISTS\r\n");  // the cas moved on
  CHECK(f.send("cas missing 0 0 1 1\r\nx\r\n") == "NOT_FOUND\r\n");
  CHECK(f.value_of("k") == value_reply("k", 9, "new") + "END\r\n");

  CHECK(f.counters().cmd_set.get() == 13);
  CHECK(f.counters().total_items.get() == 6);
  CHECK(f.counters().cas_hits.get() == 1);
  CHECK(f.counters().cas_badval.get() == 2);
  CHECK(f.counters().cas_misses.get() == 1);
}

TEST_CASE("noreply sends nothing at all, errors included, and still acts") {
  Fixture f;
  CHECK(f.send("set k 0 0 2 noreply\r\n10\r\n").empty());
  CHECK(f.send("add k 0 0 1 noreply\r\nx\r\n").empty());
  CHECK(f.send("replace k 0 0 2 noreply\r\n20\r\n").empty());
  CHECK(f.send("append k 0 0 1 noreply\r\n0\r\nprepend k 0 0 1 noreply\r\n1\r\n").empty());
  CHECK(f.value_of("k") == value_reply("k", 0, "1200") + "END\r\n");
  CHECK(f.send("incr k 5 noreply\r\ndecr k 1 noreply\r\n").empty());
  CHECK(f.value_of("k") == value_reply("k", 0, "1204") + "END\r\n");
  CHECK(f.send("cas k 0 0 1 " + std::to_string(f.cas_of("k")) + " noreply\r\nc\r\n").empty());
  CHECK(f.value_of("k") == value_reply("k", 0, "c") + "END\r\n");
  CHECK(f.send("touch k 100 noreply\r\ntouch missing 1 noreply\r\n").empty());
  CHECK(f.send("incr k 1 noreply\r\n").empty());  // not a number: the CLIENT_ERROR is suppressed too
  CHECK(f.send("set bad 0 0 2 noreply\r\nabxx").empty());  // bad data chunk, suppressed
  CHECK(f.send("delete k noreply\r\ndelete k noreply\r\n").empty());
  CHECK(f.value_of("k") == "END\r\n");
  CHECK(f.send("set k 0 0 1\r\nv\r\nflush_all noreply\r\nverbosity 0 noreply\r\n") == "STORED\r\n");
  CHECK(f.value_of("k") == "END\r\n");
  CHECK(f.counters().client_errors.get() == 2);
}

TEST_CASE("get, gets, gat and gats answer many keys in order, misses left out") {
  Fixture f;
  f.send("set a 1 0 1\r\nA\r\nset b 2 0 2\r\nBB\r\nset c 3 0 0\r\n\r\n");
  CHECK(f.send("get a missing b c a\r\n") ==
        value_reply("a", 1, "A") + value_reply("b", 2, "BB") + value_reply("c", 3, "") + value_reply("a", 1, "A") +
            "END\r\n");
  CHECK(f.send("get nothing here\r\n") == "END\r\n");
  const uint64_t cas_b = f.cas_of("b");
  CHECK(f.send("gets b\r\n") == "VALUE b 2 2 " + std::to_string(cas_b) + "\r\nBB\r\nEND\r\n");
  CHECK(f.counters().get_hits.get() == 6);
  CHECK(f.counters().get_misses.get() == 3);

  // gat touches each key it finds: 100 s from now.
  CHECK(f.send("gat 100 a missing b\r\n") == value_reply("a", 1, "A") + value_reply("b", 2, "BB") + "END\r\n");
  const std::string gats = f.send("gats 100 c\r\n");
  CHECK(gats == "VALUE c 3 0 " + std::to_string(f.cas_of("c")) + "\r\n\r\nEND\r\n");
  CHECK(f.counters().touch_hits.get() == 3);
  CHECK(f.counters().touch_misses.get() == 1);
  clock_now_s += 99;
  CHECK(f.send("get a b c\r\n") == value_reply("a", 1, "A") + value_reply("b", 2, "BB") + value_reply("c", 3, "") +
                                       "END\r\n");
  clock_now_s += 2;
  CHECK(f.send("get a b c\r\n") == "END\r\n");
  // A negative exptime expires the item at once, before gat reads it
  // (docs/text_protocol.md: the value "after setting each item's expiry").
  f.send("set d 0 0 1\r\nD\r\n");
  CHECK(f.send("gat -1 d\r\n") == "END\r\n");
  CHECK(f.value_of("d") == "END\r\n");
}

TEST_CASE("incr and decr work on decimal values") {
  Fixture f;
  f.send("set n 0 0 2\r\n99\r\nset text 0 0 3\r\nabc\r\nset max 0 0 20\r\n18446744073709551615\r\n");
  CHECK(f.send("incr n 1\r\n") == "100\r\n");
  CHECK(f.value_of("n") == value_reply("n", 0, "100") + "END\r\n");
  CHECK(f.send("decr n 30\r\n") == "70\r\n");
  CHECK(f.send("decr n 1000\r\n") == "0\r\n");  // stops at zero
  CHECK(f.send("incr max 2\r\n") == "1\r\n");   // wraps at 2^64
  CHECK(f.send("incr missing 1\r\ndecr missing 1\r\n") == "NOT_FOUND\r\nNOT_FOUND\r\n");
  CHECK(f.send("incr text 1\r\n") == "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  CHECK(f.send("incr n x\r\n") == "CLIENT_ERROR invalid numeric delta argument\r\n");
  CHECK(f.counters().incr_hits.get() == 2);
  CHECK(f.counters().decr_hits.get() == 2);
  CHECK(f.counters().incr_misses.get() == 1);
  CHECK(f.counters().decr_misses.get() == 1);
}

TEST_CASE("touch and delete") {
  Fixture f;
  f.send("set k 0 0 1\r\nv\r\n");
  CHECK(f.send("touch k 10\r\ntouch missing 10\r\n") == "TOUCHED\r\nNOT_FOUND\r\n");
  clock_now_s += 9;
  CHECK(f.value_of("k") == value_reply("k", 0, "v") + "END\r\n");
  clock_now_s += 2;
  CHECK(f.value_of("k") == "END\r\n");
  f.send("set k 0 0 1\r\nv\r\n");
  CHECK(f.send("delete k\r\ndelete k\r\n") == "DELETED\r\nNOT_FOUND\r\n");
  CHECK(f.send("delete k 0\r\n") == "NOT_FOUND\r\n");
  CHECK(f.send("delete k 5\r\n") == "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
  CHECK(f.counters().delete_hits.get() == 1);
  CHECK(f.counters().delete_misses.get() == 2);
}

TEST_CASE("flush_all now or after a delay; items stored after it stay") {
  Fixture f;
  f.send("set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n");
  CHECK(f.send("flush_all\r\n") == "OK\r\n");
  CHECK(f.send("get a b\r\n") == "END\r\n");
  f.send("set a 0 0 1\r\n1\r\n");
  CHECK(f.send("flush_all 10\r\n") == "OK\r\n");
  CHECK(f.value_of("a") == value_reply("a", 0, "1") + "END\r\n");
  clock_now_s += 11;
  f.thread.expire();  // the worker's periodic expiry carries out a delayed flush whose time has come
  CHECK(f.value_of("a") == "END\r\n");
  CHECK(f.send("set c 0 0 1\r\n3\r\n") == "STORED\r\n");
  CHECK(f.value_of("c") == value_reply("c", 0, "3") + "END\r\n");
  CHECK(f.counters().cmd_flush.get() == 2);
}

TEST_CASE("version, verbosity, stats and mn") {
  Fixture f;
  CHECK(f.send("version\r\n") == "VERSION " + std::string(text_version()) + "\r\n");
  CHECK(text_version().starts_with("1.6.18-ringcache-"));
  CHECK(f.send("verbosity 1\r\n") == "OK\r\n");
  CHECK(log_verbose());
  CHECK(f.send("verbosity 0\r\n") == "OK\r\n");
  CHECK_FALSE(log_verbose());
  f.send("set k 0 0 1\r\nv\r\nget k nope\r\n");
  const std::string stats = f.send("stats\r\n");
  CHECK(stats.find("STAT cmd_get 2\r\n") != std::string::npos);
  CHECK(stats.find("STAT get_hits 1\r\n") != std::string::npos);
  CHECK(stats.find("STAT curr_items 1\r\n") != std::string::npos);
  CHECK(stats.find("STAT time " + std::to_string(clock_now_s.load()) + "\r\n") != std::string::npos);
  CHECK(stats.ends_with("END\r\n"));
  const std::string settings = f.send("stats settings\r\n");
  CHECK(settings.find("STAT item_size_max 1048576\r\n") != std::string::npos);
  CHECK(settings.ends_with("END\r\n"));
  CHECK(f.send("stats items\r\nstats slabs\r\n") == "END\r\nEND\r\n");
  CHECK(f.send("stats bogus\r\n") == "ERROR\r\n");
  CHECK(f.send("mn\r\n") == "MN\r\n");
}

TEST_CASE("meta get: return flags in request order, q, touch, vivify") {
  Fixture f;
  CHECK(f.send("ms foo 2 F7 T100 k O1\r\nhi\r\n") == "HD kfoo O1\r\n");
  CHECK(f.send("mg foo v f k s t O9\r\n") == "VA 2 f7 kfoo s2 t100 O9\r\nhi\r\n");
  CHECK(f.send("mg foo s v\r\n") == "VA 2 s2\r\nhi\r\n");
  CHECK(f.send("mg foo\r\n") == "HD\r\n");
  CHECK(f.send("mg foo c\r\n") == "HD c" + std::to_string(f.cas_of("foo")) + "\r\n");
  CHECK(f.send("mg missing v\r\nmg missing k O5 v\r\n") == "EN\r\nEN kmissing O5\r\n");
  CHECK(f.send("mg missing v q\r\nmg foo q k\r\nmn\r\n") == "HD kfoo\r\nMN\r\n");
  CHECK(f.send("mg Zm9v b v k\r\n") == "VA 2 kZm9v b\r\nhi\r\n");  // base64 key, echoed as sent
  // T touches: 30 s from now.
  CHECK(f.send("mg foo T30 t\r\n") == "HD t30\r\n");
  clock_now_s += 31;
  CHECK(f.send("mg foo v\r\n") == "EN\r\n");
  // N vivifies: the first miss creates an empty item and wins (W); the next sees it.
  CHECK(f.send("mg job N30 v\r\n") == "VA 0 W\r\n\r\n");
  CHECK(f.send("mg job N30 v\r\n") == "VA 0\r\n\r\n");
  CHECK(f.counters().cmd_meta.get() == 14);
}

TEST_CASE("meta set: modes, compare cas, q, returned cas") {
  Fixture f;
  CHECK(f.send("ms foo 2\r\nhi\r\n") == "HD\r\n");
  CHECK(f.send("ms foo 1 ME\r\nx\r\nms none 1 MR\r\nx\r\nms foo 1 MA\r\n!\r\nms foo 1 MP\r\n<\r\n") ==
        "NS\r\nNS\r\nHD\r\nHD\r\n");
  CHECK(f.value_of("foo") == value_reply("foo", 0, "<hi!") + "END\r\n");
  CHECK(f.send("ms fresh 1 ME\r\nx\r\n") == "HD\r\n");
  const uint64_t cas = f.cas_of("foo");
  CHECK(f.send("ms foo 1 C" + std::to_string(cas) + "\r\n1\r\nms foo 1 C" + std::to_string(cas) + "\r\n2\r\n") ==
        "HD\r\nEX\r\n");
  CHECK(f.send("ms missing 1 C5\r\nx\r\n") == "NF\r\n");
  CHECK(f.send("ms foo 1 q\r\n3\r\nmn\r\n") == "MN\r\n");
  const std::string with_cas = f.send("ms foo 1 c\r\n4\r\n");
  CHECK(with_cas == "HD c" + std::to_string(f.cas_of("foo")) + "\r\n");
  // Append with N creates the item on a miss.
  CHECK(f.send("ms log 3 MA N100\r\nabc\r\nms log 3 MA N100\r\ndef\r\n") == "HD\r\nHD\r\n");
  CHECK(f.value_of("log") == value_reply("log", 0, "abcdef") + "END\r\n");
  CHECK(f.send("ms other 1 MA\r\nx\r\n") == "NS\r\n");
  CHECK(f.counters().cas_hits.get() == 1);
  CHECK(f.counters().cas_badval.get() == 1);
  CHECK(f.counters().cas_misses.get() == 1);
}

TEST_CASE("meta delete and meta arithmetic") {
  Fixture f;
  f.send("set foo 3 0 2\r\nhi\r\n");
  const uint64_t cas = f.cas_of("foo");
  CHECK(f.send("md foo C" + std::to_string(cas + 1) + "\r\n") == "EX\r\n");
  CHECK(f.send("md foo x\r\n") == "HD\r\n");  // x empties the value, keeps the item and its flags
  CHECK(f.value_of("foo") == value_reply("foo", 3, "") + "END\r\n");
  CHECK(f.send("md foo q\r\nmd foo\r\nmd foo k O2\r\nmn\r\n") == "NF\r\nNF kfoo O2\r\nMN\r\n");

  CHECK(f.send("ma cnt\r\nma cnt N0 J10 v\r\nma cnt v\r\nma cnt MD D4 v\r\n") ==
        "NF\r\nVA 2\r\n10\r\nVA 2\r\n11\r\nVA 1\r\n7\r\n");
  CHECK(f.send("ma cnt q\r\nma cnt\r\n") == "HD\r\n");
  CHECK(f.value_of("cnt") == value_reply("cnt", 0, "9") + "END\r\n");
  CHECK(f.send("ma cnt C" + std::to_string(f.cas_of("cnt") + 1) + " v\r\n") == "EX\r\n");
  CHECK(f.send("ma cnt t T50 v\r\n") == "VA 2 t50\r\n10\r\n");
  f.send("set text 0 0 1\r\nx\r\n");
  CHECK(f.send("ma text\r\n") == "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  CHECK(f.send("ma cnt MX\r\n") == "CLIENT_ERROR invalid mode for ma M token\r\n");
}

TEST_CASE("errors are answered with their line and the stream goes on") {
  Fixture f(1024);
  f.send("set k 0 0 3\r\nold\r\n");
  CHECK(f.send("bogus\r\nmn\r\n") == "ERROR\r\nMN\r\n");
  CHECK(f.send("set k x 0 1\r\nv\r\nmn\r\n") == "CLIENT_ERROR bad command line format\r\nMN\r\n");
  CHECK(f.send("set k 0 0 2\r\nabxxmn\r\n") == "CLIENT_ERROR bad data chunk\r\nMN\r\n");
  CHECK(f.send("mg k v v\r\n") == "CLIENT_ERROR duplicate flag\r\n");
  CHECK(f.send("ms k 1 MX q\r\nx\r\n") == "CLIENT_ERROR invalid mode for ms M token\r\n");
  CHECK(f.send("touch k x\r\n") == "CLIENT_ERROR invalid exptime argument\r\n");
  CHECK(f.value_of("k") == value_reply("k", 0, "old") + "END\r\n");
  CHECK(f.counters().client_errors.get() == 6);
  // A set too large for the cache also drops the key's old value, as memcached does.
  CHECK(f.send("set k 0 0 2000\r\n" + std::string(2000, 'v') + "\r\nmn\r\n") ==
        "SERVER_ERROR object too large for cache\r\nMN\r\n");
  CHECK(f.value_of("k") == "END\r\n");
  CHECK(f.counters().too_large.get() == 1);
  CHECK_FALSE(f.closed);
  // A line too long to frame is answered, then the connection closes.
  CHECK(f.send("mn " + std::string(3000, 'x') + "\r\nmn\r\n") == "CLIENT_ERROR line too long\r\n");
  CHECK(f.closed);
}

TEST_CASE("quit closes without a reply") {
  Fixture f;
  CHECK(f.send("mn\r\nquit\r\n") == "MN\r\n");
  CHECK(f.closed);
}

TEST_CASE("a multi-get paused by the connection resumes where it stopped") {
  Fixture f;
  const std::string value = pattern(1000, 1);
  std::string sets;
  for (const char* key : {"k1", "k2", "k3", "k4"}) sets += "set " + std::string(key) + " 0 0 1000\r\n" + value + "\r\n";
  f.send(sets);
  const std::string request = "get k1 k2 missing k3 k4\r\n";
  const std::string unpaused = f.send(request);
  REQUIRE(unpaused.ends_with("END\r\n"));

  // Each value reaches the limit: the connection pauses after every key found.
  const PauseAtQueuedBytes pause(f.out, 1000);
  std::string received;
  std::string input = request;
  std::string_view rest = input;
  size_t consumed = 0;
  const Event event = f.parser.next(rest, consumed);
  REQUIRE(event.kind == EventKind::request);
  REQUIRE(f.processor.process(event, f.state, f.out, pause) == TextResult::proceed);
  REQUIRE_FALSE(f.state.retrieval.empty());
  CHECK(f.state.held_bytes() >= std::string_view("k2 missing k3 k4").size());
  std::fill(input.begin(), input.end(), '#');  // the processor kept a copy of the keys, not a view
  int rounds = 0;
  while (!f.state.retrieval.empty()) {
    REQUIRE(++rounds < 10);
    const std::string part = take_output(f.out);
    CHECK_FALSE(part.ends_with("END\r\n"));
    received += part;
    f.processor.continue_retrieval(f.state, f.out, pause);
  }
  received += take_output(f.out);
  CHECK(rounds == 3);
  CHECK(received == unpaused);
  CHECK(f.state.retrieval.keys.empty());
}

TEST_CASE("a paused gat touches its last keys with the time of the request") {
  Fixture f;
  const std::string value = pattern(1000, 2);
  f.send("set a 0 0 1000\r\n" + value + "\r\nset b 0 0 1000\r\n" + value + "\r\n");
  const PauseAtQueuedBytes pause(f.out, 1);
  CHECK(f.send("gat 100 a b\r\n", pause) == value_reply("a", 0, value));
  REQUIRE_FALSE(f.state.retrieval.empty());
  clock_now_s += 50;
  f.processor.continue_retrieval(f.state, f.out, pause);
  CHECK(take_output(f.out) == value_reply("b", 0, value) + "END\r\n");
  clock_now_s += 51;  // 101 s after the gat: both expired, b as well
  CHECK(f.send("get a b\r\n") == "END\r\n");
}

TEST_CASE("a streamed value: value_begin, value_data pieces, value_end") {
  Fixture f;
  const std::string value = pattern(100 * 1024, 3);  // above copy_value_bytes_max: sent pinned
  SUBCASE("set: the pieces fill a reservation") {
    CHECK(f.process(stream_event(EventKind::value_begin, Command::set, "big", value.size(), 4)).empty());
    for (size_t start = 0; start < value.size(); start += 16 * 1024) {
      const std::string piece = value.substr(start, 16 * 1024);
      CHECK(f.process(data_event(Command::set, piece)).empty());
    }
    CHECK(f.value_of("big") == "END\r\n");  // nothing visible before value_end
    CHECK(f.process(stream_event(EventKind::value_end, Command::set, "big", value.size(), 4)) == "STORED\r\n");
    CHECK(f.value_of("big") == value_reply("big", 4, value) + "END\r\n");
  }
  SUBCASE("append: the pieces are gathered, then concatenated") {
    f.send("set log 0 0 3\r\nabc\r\n");
    CHECK(f.process(stream_event(EventKind::value_begin, Command::append, "log", value.size())).empty());
    CHECK(f.process(data_event(Command::append, std::string_view(value).substr(0, 1000))).empty());
    CHECK(f.state.held_bytes() >= 1000);
    CHECK(f.process(data_event(Command::append, std::string_view(value).substr(1000))).empty());
    CHECK(f.process(stream_event(EventKind::value_end, Command::append, "log", value.size())) == "STORED\r\n");
    CHECK(f.value_of("log") == value_reply("log", 0, "abc" + value) + "END\r\n");
  }
  SUBCASE("a bad data chunk at its end stores nothing and keeps the old value") {
    f.send("set big 0 0 3\r\nold\r\n");
    CHECK(f.process(stream_event(EventKind::value_begin, Command::set, "big", value.size())).empty());
    CHECK(f.process(data_event(Command::set, value)).empty());
    Event bad;
    bad.kind = EventKind::error;
    bad.command = Command::set;
    bad.error = protocol::text::Error::bad_data_chunk;
    CHECK(f.process(bad) == "CLIENT_ERROR bad data chunk\r\n");
    CHECK_FALSE(f.state.stream.active);
    CHECK(f.value_of("big") == value_reply("big", 0, "old") + "END\r\n");
  }
  SUBCASE("through the parser, set and ms") {
    CHECK(f.send("set big 1 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n") == "STORED\r\n");
    CHECK(f.value_of("big") == value_reply("big", 1, value) + "END\r\n");
    CHECK(f.send("ms meta " + std::to_string(value.size()) + " F2 k\r\n" + value + "\r\n") == "HD kmeta\r\n");
    CHECK(f.send("mg meta v f\r\n") == "VA " + std::to_string(value.size()) + " f2\r\n" + value + "\r\n");
  }
}

TEST_CASE("exptime follows memcached: 0 never, negative now, up to 30 days relative, else unix time") {
  constexpr uint32_t now = 1'700'000'000;
  CHECK(TextProcessor::expires_at(0, now) == 0);
  CHECK(TextProcessor::expires_at(-1, now) == now);
  CHECK(TextProcessor::expires_at(-1, 0) == 1);  // expired, never "0 = never"
  CHECK(TextProcessor::expires_at(100, now) == now + 100);
  CHECK(TextProcessor::expires_at(relative_exptime_s_max, now) == now + relative_exptime_s_max);
  CHECK(TextProcessor::expires_at(relative_exptime_s_max + 1, now) == now);  // an absolute time long past
  CHECK(TextProcessor::expires_at(int64_t{now} + 5, now) == now + 5);
  CHECK(TextProcessor::expires_at(int64_t{1} << 40, now) == UINT32_MAX);
}
