// McBinaryProcessor (process/mc_binary_process.h) against a real store:
// every opcode's response (status, opaque, cas, extras, key, value), quiet
// commands, cas semantics shared with the text protocol, streamed and too
// large values, SASL PLAIN under --auth-file, and the text port's
// first-byte choice (process/text_port_session.h). Requests are encoded with the parser
// tests' encoders and parsed by a real McBinaryParser, as McBinarySession
// does; responses are decoded from the connection's OutputQueue.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/io/output_queue.h"
#include "server/process/binary_stats.h"
#include "server/process/auth.h"
#include "server/process/mc_binary_process.h"
#include "server/process/mc_binary_session.h"
#include "server/process/text_port_session.h"
#include "server/process/text_process.h"
#include "server/process/text_stats.h"
#include "server/process/write_path.h"
#include "store/store.h"
#include "tests/protocol/mc_binary_parser_harness.h"
#include "tests/server/server_test_util.h"

using namespace ringcache;
using namespace ringcache::server;
using namespace ringcache::protocol::memcache_binary;
using namespace ringcache::protocol::memcache_binary::test;
using ringcache::server::test::NeverPause;
using ringcache::server::test::PauseAtQueuedBytes;
using ringcache::server::test::pattern;
using ringcache::server::test::take_output;

namespace {

std::atomic<uint32_t> mc_clock_now_s{1'700'000'000};
uint32_t mc_test_clock_s() { return mc_clock_now_s.load(); }

// One response, decoded.
struct Response {
  uint8_t magic = 0, opcode = 0;
  uint16_t status = 0;
  uint32_t opaque = 0;
  uint64_t cas = 0;
  std::string extras, key, value;
};

uint64_t load(std::string_view bytes, size_t at, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; ++i) value = value << 8 | static_cast<uint8_t>(bytes[at + i]);
  return value;
}

// The responses in `bytes`, which must hold whole responses only.
std::vector<Response> decode(std::string_view bytes) {
  std::vector<Response> responses;
  while (!bytes.empty()) {
    REQUIRE(bytes.size() >= header_bytes);
    Response r;
    r.magic = static_cast<uint8_t>(bytes[0]);
    r.opcode = static_cast<uint8_t>(bytes[1]);
    const auto key_length = static_cast<size_t>(load(bytes, 2, 2));
    const auto extras_length = static_cast<size_t>(load(bytes, 4, 1));
    REQUIRE(bytes[5] == 0);
    r.status = static_cast<uint16_t>(load(bytes, 6, 2));
    const auto body = static_cast<size_t>(load(bytes, 8, 4));
    r.opaque = static_cast<uint32_t>(load(bytes, 12, 4));
    r.cas = load(bytes, 16, 8);
    REQUIRE(bytes.size() >= header_bytes + body);
    REQUIRE(extras_length + key_length <= body);
    const std::string_view b = bytes.substr(header_bytes, body);
    r.extras = b.substr(0, extras_length);
    r.key = b.substr(extras_length, key_length);
    r.value = b.substr(extras_length + key_length);
    responses.push_back(r);
    bytes.remove_prefix(header_bytes + body);
  }
  return responses;
}

uint16_t code(Status status) { return static_cast<uint16_t>(status); }

// One connection: `authenticator` is the daemon's (nullptr without --auth-file).
struct Fixture : ringcache::server::test::TextPortStore {
  explicit Fixture(uint64_t item_bytes_max = 1 << 20, Authenticator* authenticator = nullptr)
      : TextPortStore(&mc_test_clock_s, item_bytes_max),
        text(thread, *write, text_stats.thread(0), stats_context, item_bytes_max),
        processor(text),
        parser(processor.parser_limits()),
        daemon_auth(authenticator) {
    reconnect();
  }

  // A new connection to the same daemon: not authenticated, no failures, not closed.
  void reconnect() {
    auth.emplace(daemon_auth, binary_stats.thread(0), -1, "text");
    parser = McBinaryParser(processor.parser_limits());
    stream = McBinaryStream();
    closed = false;
  }

  // Parses `requests` as the next input and processes every event
  // (parse_each); returns the raw response bytes.
  std::string send_raw(std::string_view requests) {
    ringcache::server::test::parse_each(parser, requests, [&](const Event& event) {
      REQUIRE(!closed);
      if (processor.process(event, stream, *auth, out) == McBinaryResult::close) closed = true;
    });
    return take_output(out);
  }
  std::vector<Response> send(std::string_view requests) { return decode(send_raw(requests)); }
  Response one(std::string_view request_bytes) {
    const std::vector<Response> responses = send(request_bytes);
    REQUIRE(responses.size() == 1);
    return responses[0];
  }

  Response set(std::string_view key, std::string_view value, uint32_t flags = 0, uint32_t exptime = 0,
               uint64_t cas = 0, Opcode opcode = Opcode::set) {
    return one(request(opcode, store_extras(flags, exptime), key, value, 1, cas));
  }
  Response get(std::string_view key) { return one(request(Opcode::get, "", key, "", 2)); }

  // The cas the text protocol's gets hands out for the key.
  uint64_t text_cas(std::string_view key) {
    uint64_t cas = 0;
    (void)thread.get(key, [&](const store::ItemView& item) { cas = item.cas(); });
    return cas;
  }

  TextProcessor text;
  McBinaryProcessor processor;
  McBinaryParser parser;
  McBinaryStream stream;
  OutputQueue out;
  bool closed = false;
  Authenticator* daemon_auth;
  std::optional<ConnectionAuth> auth;
};

std::string be32(uint32_t value) {
  std::string out;
  put_be(out, value, 4);
  return out;
}

std::string be64(uint64_t value) {
  std::string out;
  put_be(out, value, 8);
  return out;
}

}  // namespace

TEST_CASE("mc binary: get answers flags, value and the text protocol's cas; a miss is 0x0001") {
  Fixture f;
  const Response stored = f.set("k", "hello", 0xabcd1234);
  CHECK(stored.magic == response_magic);
  CHECK(stored.status == code(Status::success));
  CHECK(stored.opaque == 1);
  CHECK(stored.cas != 0);
  CHECK(stored.cas == f.text_cas("k"));
  const Response hit = f.get("k");
  CHECK(hit.opcode == static_cast<uint8_t>(Opcode::get));
  CHECK(hit.opaque == 2);
  CHECK(hit.extras == be32(0xabcd1234));
  CHECK(hit.key.empty());
  CHECK(hit.value == "hello");
  CHECK(hit.cas == stored.cas);
  const Response miss = f.get("nope");
  CHECK(miss.status == code(Status::key_not_found));
  CHECK(miss.cas == 0);
  CHECK(miss.extras.empty());
  CHECK(miss.value == "Not found");
}

TEST_CASE("mc binary: getk and getkq carry the key; quiet gets say nothing on a miss") {
  Fixture f;
  f.set("a", "1");
  f.set("c", "3");
  const std::vector<Response> batch =
      f.send(request(Opcode::getkq, "", "a", "", 10) + request(Opcode::getkq, "", "b", "", 11) +
             request(Opcode::getq, "", "c", "", 12) + request(Opcode::getk, "", "d", "", 13) +
             request(Opcode::noop, "", "", "", 14));
  REQUIRE(batch.size() == 4);
  CHECK(batch[0].opaque == 10);
  CHECK(batch[0].key == "a");
  CHECK(batch[0].value == "1");
  CHECK(batch[1].opaque == 12);
  CHECK(batch[1].key.empty());
  CHECK(batch[1].value == "3");
  // memcached answers a getk miss with the key and no message.
  CHECK(batch[2].opaque == 13);
  CHECK(batch[2].status == code(Status::key_not_found));
  CHECK(batch[2].key == "d");
  CHECK(batch[2].value.empty());
  CHECK(batch[3].opcode == static_cast<uint8_t>(Opcode::noop));
  CHECK(batch[3].opaque == 14);
}

TEST_CASE("mc binary: add, replace and cas answer memcached's statuses") {
  Fixture f;
  CHECK(f.set("k", "v", 0, 0, 0, Opcode::replace).status == code(Status::key_not_found));
  CHECK(f.set("k", "v", 0, 0, 0, Opcode::add).status == code(Status::success));
  CHECK(f.set("k", "w", 0, 0, 0, Opcode::add).status == code(Status::key_exists));
  const Response replaced = f.set("k", "r", 0, 0, 0, Opcode::replace);
  CHECK(replaced.status == code(Status::success));
  CHECK(f.set("k", "x", 0, 0, replaced.cas - 1).status == code(Status::key_exists));
  CHECK(f.get("k").value == "r");
  const Response swapped = f.set("k", "y", 0, 0, replaced.cas);
  CHECK(swapped.status == code(Status::success));
  CHECK(swapped.cas != replaced.cas);
  CHECK(f.set("gone", "z", 0, 0, 12345).status == code(Status::key_not_found));
  // The cas the text protocol's gets gives works here too.
  CHECK(f.set("k", "t", 0, 0, f.text_cas("k"), Opcode::replace).status == code(Status::success));
}

TEST_CASE("mc binary: quiet stores answer only on error") {
  Fixture f;
  CHECK(f.send(request(Opcode::setq, store_extras(0, 0), "k", "v", 5)).empty());
  CHECK(f.send(request(Opcode::replaceq, store_extras(0, 0), "k", "w", 6)).empty());
  const Response refused = f.one(request(Opcode::addq, store_extras(0, 0), "k", "x", 7));
  CHECK(refused.opcode == static_cast<uint8_t>(Opcode::addq));
  CHECK(refused.status == code(Status::key_exists));
  CHECK(refused.opaque == 7);
  CHECK(f.send(request(Opcode::appendq, "", "k", "!", 8)).empty());
  CHECK(f.get("k").value == "w!");
  CHECK(f.one(request(Opcode::prependq, "", "nope", "!", 9)).status == code(Status::not_stored));
  CHECK(f.send(request(Opcode::deleteq, "", "k", "", 10)).empty());
  CHECK(f.one(request(Opcode::deleteq, "", "k", "", 11)).status == code(Status::key_not_found));
}

TEST_CASE("mc binary: append and prepend") {
  Fixture f;
  f.set("k", "mid", 7);
  const Response appended = f.one(request(Opcode::append, "", "k", ">", 1));
  CHECK(appended.status == code(Status::success));
  CHECK(appended.cas == f.text_cas("k"));
  CHECK(f.one(request(Opcode::prepend, "", "k", "<", 1)).status == code(Status::success));
  const Response got = f.get("k");
  CHECK(got.value == "<mid>");
  CHECK(got.extras == be32(7));
  CHECK(f.one(request(Opcode::append, "", "none", "x", 1)).status == code(Status::not_stored));
}

TEST_CASE("mc binary: delete, with and without a cas") {
  Fixture f;
  const Response stored = f.set("k", "v");
  CHECK(f.one(request(Opcode::del, "", "k", "", 1, stored.cas + 1)).status == code(Status::key_exists));
  const Response deleted = f.one(request(Opcode::del, "", "k", "", 1, stored.cas));
  CHECK(deleted.status == code(Status::success));
  CHECK(deleted.cas == 0);
  CHECK(f.one(request(Opcode::del, "", "k", "", 1)).status == code(Status::key_not_found));
}

TEST_CASE("mc binary: incr and decr create with the initial value unless the expiration is 0xffffffff") {
  Fixture f;
  const Response absent = f.one(request(Opcode::increment, arithmetic_extras(1, 5, 0xffffffff), "n", ""));
  CHECK(absent.status == code(Status::key_not_found));
  const Response created = f.one(request(Opcode::increment, arithmetic_extras(1, 5, 0), "n", ""));
  CHECK(created.status == code(Status::success));
  CHECK(created.value == be64(5));
  CHECK(created.cas == f.text_cas("n"));
  CHECK(f.one(request(Opcode::increment, arithmetic_extras(10, 5, 0), "n", "")).value == be64(15));
  CHECK(f.one(request(Opcode::decrement, arithmetic_extras(100, 0, 0), "n", "")).value == be64(0));
  CHECK(f.send(request(Opcode::incrementq, arithmetic_extras(2, 0, 0), "n", "")).empty());
  CHECK(f.get("n").value == "2");
  f.set("t", "text");
  CHECK(f.one(request(Opcode::increment, arithmetic_extras(1, 0, 0), "t", "")).status == code(Status::non_numeric));
  CHECK(f.one(request(Opcode::decrementq, arithmetic_extras(1, 0, 0xffffffff), "x", "")).status ==
        code(Status::key_not_found));
}

TEST_CASE("mc binary: touch, gat and gatq") {
  Fixture f;
  f.set("k", "v", 3, 100);
  const Response touched = f.one(request(Opcode::touch, be32(1000), "k", "", 4));
  CHECK(touched.status == code(Status::success));
  CHECK(touched.extras == be32(3));
  CHECK(touched.value.empty());
  mc_clock_now_s += 500;
  const Response gat = f.one(request(Opcode::gat, be32(10), "k", "", 5));
  CHECK(gat.value == "v");
  mc_clock_now_s += 20;
  CHECK(f.get("k").status == code(Status::key_not_found));
  CHECK(f.send(request(Opcode::gatq, be32(10), "k", "", 6)).empty());
  CHECK(f.one(request(Opcode::touch, be32(10), "k", "", 7)).status == code(Status::key_not_found));
}

TEST_CASE("mc binary: flush now and with a delay") {
  Fixture f;
  f.set("a", "1");
  CHECK(f.one(request(Opcode::flush, "", "", "", 3)).status == code(Status::success));
  CHECK(f.get("a").status == code(Status::key_not_found));
  f.set("b", "2");
  CHECK(f.send(request(Opcode::flushq, be32(60), "", "", 4)).empty());
  CHECK(f.get("b").status == code(Status::success));
  mc_clock_now_s += 61;
  f.thread.expire();  // the worker's periodic expiry carries out a delayed flush whose time has come
  CHECK(f.get("b").status == code(Status::key_not_found));
}

TEST_CASE("mc binary: noop, version, verbosity and stat") {
  Fixture f;
  CHECK(f.one(request(Opcode::noop, "", "", "", 1)).status == code(Status::success));
  CHECK(f.one(request(Opcode::version, "", "", "", 1)).value == text_version());
  CHECK(f.one(request(Opcode::verbosity, be32(0), "", "", 1)).status == code(Status::success));
  f.set("k", "v");
  const std::vector<Response> stats = f.send(request(Opcode::stat, "", "", "", 9));
  REQUIRE(stats.size() > 10);
  CHECK(stats.back().key.empty());
  CHECK(stats.back().value.empty());
  bool saw_pid = false;
  for (const Response& r : stats) {
    CHECK(r.opaque == 9);
    CHECK(r.cas == 0);
    CHECK(r.status == code(Status::success));
    if (r.key == "pid") saw_pid = !r.value.empty();
    if (r.key == "cmd_set") CHECK(r.value == "1");
  }
  CHECK(saw_pid);
  const std::vector<Response> settings = f.send(request(Opcode::stat, "", "settings", "", 9));
  CHECK(settings.size() > 1);
  CHECK(f.send(request(Opcode::stat, "", "items", "", 9)).size() == 1);
  CHECK(f.one(request(Opcode::stat, "", "bogus", "", 9)).status == code(Status::key_not_found));
}

TEST_CASE("mc binary: bad shapes are 0x0004, unknown opcodes 0x0081, and the stream goes on") {
  Fixture f;
  const std::vector<Response> replies =
      f.send(request(Opcode::get, "xx", "k", "", 1) + request(Opcode::set, "", "k", "v", 2) +
             request(Opcode::noop, "", "k", "", 3) + request(0xee, "e", "k", "v", 4) +
             raw_header(0x00, 300, 0, 300, 5) + std::string(300, 'k') + request(Opcode::get, "", "", "", 6) +
             request(Opcode::noop, "", "", "", 7));
  REQUIRE(replies.size() == 7);
  CHECK(replies[0].status == code(Status::invalid_arguments));
  CHECK(replies[1].status == code(Status::invalid_arguments));
  CHECK(replies[2].status == code(Status::invalid_arguments));
  CHECK(replies[3].status == code(Status::unknown_command));
  CHECK(replies[3].opcode == 0xee);
  CHECK(replies[4].status == code(Status::invalid_arguments));
  CHECK(replies[5].status == code(Status::invalid_arguments));
  CHECK(replies[6].status == code(Status::success));
  for (size_t i = 0; i < replies.size(); ++i) CHECK(replies[i].opaque == i + 1);
  CHECK(!f.closed);
}

TEST_CASE("mc binary: a value over --max-item is 0x0003, drops a set's old value, and the stream goes on") {
  Fixture f(4096);
  f.set("k", "old");
  const std::vector<Response> replies =
      f.send(request(Opcode::setq, store_extras(0, 0), "k", std::string(5000, 'x'), 1) +
             request(Opcode::get, "", "k", "", 2));
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].status == code(Status::value_too_large));
  CHECK(replies[0].value == "Too large.");
  CHECK(replies[1].status == code(Status::key_not_found));
  f.set("a", "keep");
  CHECK(f.one(request(Opcode::append, "", "a", std::string(5000, 'x'), 3)).status == code(Status::value_too_large));
  CHECK(f.get("a").value == "keep");
  CHECK(f.one(request(Opcode::get, "", "a", std::string(5000, 'x'), 4)).status == code(Status::invalid_arguments));
}

TEST_CASE("mc binary: streamed values are stored, appended and refused like whole ones") {
  Fixture f(4 << 20);
  const std::string big = pattern(3 << 20, 7);
  CHECK(f.set("big", big).status == code(Status::success));
  const Response got = f.get("big");
  CHECK(got.value == big);
  CHECK(got.cas == f.text_cas("big"));
  CHECK(f.one(request(Opcode::append, "", "big", pattern(100000, 8), 1)).status == code(Status::success));
  CHECK(f.get("big").value == big + pattern(100000, 8));
  CHECK(f.one(request(Opcode::set, store_extras(0, 0), "big", pattern(100000, 9), 1, 1)).status ==
        code(Status::key_exists));
  CHECK(f.one(request(Opcode::get, "", "big", pattern(100000, 9), 1)).status == code(Status::invalid_arguments));
  CHECK(!f.stream.active);
}

TEST_CASE("mc binary: quit answers then closes, quitq closes silently, bad magic closes") {
  {
    Fixture f;
    const std::vector<Response> replies = f.send(request(Opcode::quit, "", "", "", 8));
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].opaque == 8);
    CHECK(f.closed);
  }
  {
    Fixture f;
    CHECK(f.send(request(Opcode::quitq, "", "", "", 8)).empty());
    CHECK(f.closed);
  }
  {
    Fixture f;
    CHECK(f.send_raw("\x81garbage").empty());
    CHECK(f.closed);
  }
}

TEST_CASE("mc binary session: a slow reader pauses it between requests, and it resumes where it stopped") {
  Fixture f;
  const std::string value = pattern(1000, 3);
  f.set("k", value);
  std::string batch;
  for (uint32_t i = 0; i < 50; ++i) batch += request(Opcode::getk, "", "k", "", i);
  McBinarySession session(f.processor, *f.auth);
  OutputQueue out;
  const PauseAtQueuedBytes pause(out, 10 * 1024);
  std::string replies;
  size_t used = 0;
  int rounds = 0;
  while (used < batch.size()) {
    REQUIRE(++rounds < 100);
    const ConsumeResult result = session.consume(std::string_view(batch).substr(used), out, pause);
    used += result.used;
    CHECK(!result.close_after_reply);
    CHECK(session.at_frame_boundary());
    replies += take_output(out);
  }
  CHECK(rounds > 2);
  const std::vector<Response> decoded = decode(replies);
  REQUIRE(decoded.size() == 50);
  for (uint32_t i = 0; i < 50; ++i) {
    CHECK(decoded[i].opaque == i);
    CHECK(decoded[i].value == value);
  }
}

TEST_CASE("mc binary session: a streamed value split across inputs is held only as a request in progress") {
  Fixture f(4 << 20);
  const std::string value = pattern(300000, 4);
  const std::string bytes = request(Opcode::set, store_extras(0, 0), "s", value, 5);
  McBinarySession session(f.processor, *f.auth);
  OutputQueue out;
  const NeverPause pause;
  CHECK(session.consume(std::string_view(bytes).substr(0, 100000), out, pause).used == 100000);
  CHECK(session.mid_request());
  CHECK(session.held_bytes() <= McBinaryParser::head_bytes_max() + 1);
  CHECK(session.consume(std::string_view(bytes).substr(100000), out, pause).used == bytes.size() - 100000);
  CHECK(!session.mid_request());
  const std::vector<Response> replies = decode(take_output(out));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == code(Status::success));
  CHECK(f.get("s").value == value);
}

// A text-port connection whose first input is the text `line`: it must be
// handed over to a text session, whose reply to the line is returned.
std::string text_session_reply(Fixture& f, const ConnectionAuth& auth, std::string_view line) {
  const NeverPause pause;
  TextPortSession session(f.text, f.processor, auth);
  OutputQueue out;
  CHECK(session.consume(line, out, pause).handed_over);
  const std::unique_ptr<Session> next = session.take_successor();
  REQUIRE(next != nullptr);
  CHECK(next->consume(line, out, pause).used == line.size());
  return take_output(out);
}

TEST_CASE("text port: the first byte picks memcached binary, text, or an error and a close") {
  Fixture f;
  const NeverPause pause;
  const ConnectionAuth no_auth(nullptr, f.binary_stats.thread(0), -1, "text");
  {
    TextPortSession session(f.text, f.processor, no_auth);
    OutputQueue out;
    const std::string noop = request(Opcode::noop, "", "", "", 3);
    const ConsumeResult result = session.consume(noop, out, pause);
    CHECK(result.handed_over);
    CHECK(result.used == 0);
    const std::unique_ptr<Session> next = session.take_successor();
    REQUIRE(next != nullptr);
    CHECK(next->consume(noop, out, pause).used == noop.size());
    const std::vector<Response> replies = decode(take_output(out));
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].opaque == 3);
  }
  CHECK(text_session_reply(f, no_auth, "version\r\n").starts_with("VERSION "));
  for (const char first : {'\x00', '\x01', '\x1b', '\x7f', '\x81', '\xff'}) {
    CAPTURE(int{static_cast<uint8_t>(first)});
    TextPortSession session(f.text, f.processor, no_auth);
    OutputQueue out;
    const ConsumeResult result = session.consume(std::string(1, first) + "get k\r\n", out, pause);
    CHECK(result.close_after_reply);
    CHECK(!result.handed_over);
    CHECK(take_output(out) == unknown_protocol_line);
  }
  CHECK(text_first_byte('\r'));
  CHECK(text_first_byte(' '));
  CHECK(text_first_byte('g'));
  CHECK(!text_first_byte(0x80));
}

// The daemon's --auth-file: "alice:s3cret", kept apart from the fixture so
// that it outlives every connection.
struct AuthFile {
  AuthFile() : authenticator(table(), nullptr) {}
  static AuthTable table() {
    AuthTable table;
    std::string error;
    REQUIRE_MESSAGE(AuthTable::parse("alice:s3cret\n", table, error), error);
    return table;
  }
  Authenticator authenticator;
};

// A connection to a daemon with --auth-file.
struct SaslFixture : AuthFile, Fixture {
  explicit SaslFixture(uint64_t item_bytes_max = 1 << 20) : Fixture(item_bytes_max, &authenticator) {}

  Response sasl_auth(std::string_view message, std::string_view mechanism = "PLAIN") {
    return one(request(Opcode::sasl_auth, "", mechanism, message, 21));
  }
  uint64_t auth_cmds() { return binary_stats.thread(0).auth_cmds.get(); }
  uint64_t auth_errors() { return binary_stats.thread(0).auth_errors.get(); }
};

constexpr std::string_view good_plain{"\0alice\0s3cret", 13};

TEST_CASE("mc binary SASL: LIST_MECHS is PLAIN; before authentication only version is served") {
  SaslFixture f(256 * 1024);
  const Response mechs = f.one(request(Opcode::sasl_list_mechs, "", "", "", 7));
  CHECK(mechs.status == code(Status::success));
  CHECK(mechs.opaque == 7);
  CHECK(mechs.value == "PLAIN");
  CHECK(f.one(request(Opcode::sasl_list_mechs, "", "x", "", 7)).status == code(Status::invalid_arguments));
  CHECK(f.one(request(Opcode::version, "", "", "", 2)).value == text_version());
  // Whole, streamed (over inline_value_bytes_max) and too large values are
  // read in full and dropped; every request is answered 0x0020 and the
  // stream stays in sync.
  const std::vector<Response> refused =
      f.send(request(Opcode::set, store_extras(0, 0), "k", "v", 1) + request(Opcode::get, "", "k", "", 2) +
             request(Opcode::set, store_extras(0, 0), "big", pattern(100000, 1), 3) +
             request(Opcode::setq, store_extras(0, 0), "huge", pattern(300000, 2), 4) +
             request(Opcode::noop, "", "", "", 5) + request(Opcode::stat, "", "", "", 6) +
             request(Opcode::flush, "", "", "", 7) + request(0xee, "", "", "", 8));
  REQUIRE(refused.size() == 8);
  for (size_t i = 0; i < refused.size(); ++i) {
    CAPTURE(i);
    CHECK(refused[i].opaque == i + 1);
    CHECK(refused[i].status == code(Status::auth_error));
    CHECK(refused[i].value == "Auth failure.");
  }
  CHECK(!f.stream.active);
  CHECK(!f.closed);
  CHECK(f.auth_cmds() == 0);
  CHECK(f.text_cas("k") == 0);
  CHECK(f.text_cas("big") == 0);
  for (const Opcode quit : {Opcode::quit, Opcode::quitq}) {
    f.reconnect();
    CHECK(f.one(request(quit, "", "", "", 9)).status == code(Status::auth_error));
    CHECK(f.closed);
  }
}

TEST_CASE("mc binary SASL: PLAIN with the right credentials authenticates, then every request is served") {
  SaslFixture f;
  const Response accepted = f.sasl_auth(good_plain);
  CHECK(accepted.status == code(Status::success));
  CHECK(accepted.opaque == 21);
  CHECK(accepted.value == "Authenticated");
  CHECK(f.set("k", "v").status == code(Status::success));
  CHECK(f.get("k").value == "v");
  CHECK(f.one(request(Opcode::sasl_list_mechs, "", "", "", 1)).value == "PLAIN");
  CHECK((f.auth_cmds() == 1 && f.auth_errors() == 0));
  // An authzid naming the user, and the mechanism in any case (memcached's libsasl2 takes both).
  f.reconnect();
  CHECK(f.sasl_auth(std::string_view("alice\0alice\0s3cret", 18), "plain").status == code(Status::success));
  CHECK(f.get("k").value == "v");
  // A failure after authentication counts, but does not take it back.
  CHECK(f.sasl_auth(std::string_view("\0alice\0wrong", 12)).status == code(Status::auth_error));
  CHECK(f.get("k").value == "v");
  CHECK((f.auth_cmds() == 3 && f.auth_errors() == 1));
}

TEST_CASE("mc binary SASL: wrong or malformed credentials, other mechanisms and SASL_STEP fail; the third closes") {
  SaslFixture f;
  const std::string too_long = '\0' + std::string("alice") + '\0' + std::string(sasl_plain_message_bytes_max, 'p');
  const std::vector<std::pair<std::string, std::string>> failures = {
      {"PLAIN", std::string("\0alice\0wrong", 12)},
      {"PLAIN", std::string("\0bob\0s3cret", 11)},
      {"PLAIN", std::string("bob\0alice\0s3cret", 16)},     // acting as another user
      {"PLAIN", std::string("\0alice\0s3cret\0", 14)},      // a third NUL
      {"PLAIN", std::string("alice\0s3cret", 12)},          // one NUL
      {"PLAIN", std::string("\0\0s3cret", 8)},              // no user
      {"PLAIN", std::string("\0alice\0", 7)},               // no password
      {"PLAIN", ""},
      {"PLAIN", too_long},
      {"CRAM-MD5", std::string(good_plain)},
      {"PLAINX", std::string(good_plain)},
      {std::string(sasl_mechanism_bytes_max + 1, 'P'), std::string(good_plain)},
  };
  for (const auto& [mechanism, message] : failures) {
    CAPTURE(mechanism);
    CAPTURE(message);
    f.reconnect();
    const uint64_t errors = f.auth_errors();
    const Response refused = f.sasl_auth(message, mechanism);
    CHECK(refused.status == code(Status::auth_error));
    CHECK(refused.value == "Auth failure.");
    CHECK(f.auth_errors() == errors + 1);
    CHECK(f.get("k").status == code(Status::auth_error));
    CHECK(!f.closed);
  }
  f.reconnect();
  CHECK(f.one(request(Opcode::sasl_step, "", "PLAIN", good_plain, 3)).status == code(Status::auth_error));
  // Streamed past inline_value_bytes_max, and over --max-item: drained, then failures.
  CHECK(f.sasl_auth(pattern(100000, 3)).status == code(Status::auth_error));
  CHECK(!f.stream.active);
  CHECK(f.sasl_auth(pattern(2 << 20, 4)).status == code(Status::auth_error));
  CHECK(f.closed);
  // Extras are a malformed request, not an attempt (memcached's 0x0004).
  f.reconnect();
  const uint64_t errors = f.auth_errors();
  CHECK(f.one(request(Opcode::sasl_auth, "x", "PLAIN", good_plain, 1)).status == code(Status::invalid_arguments));
  CHECK(f.auth_errors() == errors);
  CHECK(f.sasl_auth(good_plain).status == code(Status::success));
}

TEST_CASE("mc binary without --auth-file: the SASL opcodes are unknown commands") {
  Fixture f;
  for (const Opcode opcode : {Opcode::sasl_list_mechs, Opcode::sasl_auth, Opcode::sasl_step}) {
    CHECK(f.one(request(opcode, "", "PLAIN", good_plain, 1)).status == code(Status::unknown_command));
  }
  CHECK(f.one(request(Opcode::sasl_list_mechs, "", "", "", 1)).status == code(Status::unknown_command));
  CHECK(f.set("k", "v").status == code(Status::success));
}

TEST_CASE("text port under --auth-file: memcached binary authenticates with SASL, split anywhere; text is refused") {
  SaslFixture f;
  const NeverPause pause;
  const ConnectionAuth required(&f.authenticator, f.binary_stats.thread(0), -1, "text");
  const std::string conversation = request(Opcode::get, "", "k", "", 1) + request(Opcode::sasl_list_mechs, "", "", "", 2) +
                                   request(Opcode::sasl_auth, "", "PLAIN", good_plain, 3) +
                                   request(Opcode::set, store_extras(0, 0), "k", "v", 4) +
                                   request(Opcode::get, "", "k", "", 5);
  // Every split of the conversation into two inputs gives the same replies.
  for (size_t split = 1; split < conversation.size(); ++split) {
    CAPTURE(split);
    TextPortSession port(f.text, f.processor, required);
    OutputQueue out;
    REQUIRE(port.consume(conversation, out, pause).handed_over);
    const std::unique_ptr<Session> session = port.take_successor();
    REQUIRE(session != nullptr);
    const std::string_view bytes = conversation;
    CHECK(session->consume(bytes.substr(0, split), out, pause).used == split);
    CHECK(session->consume(bytes.substr(split), out, pause).used == bytes.size() - split);
    const std::vector<Response> replies = decode(take_output(out));
    REQUIRE(replies.size() == 5);
    CHECK(replies[0].status == code(Status::auth_error));
    CHECK(replies[1].value == "PLAIN");
    CHECK(replies[2].value == "Authenticated");
    CHECK(replies[3].status == code(Status::success));
    CHECK(replies[4].value == "v");
  }
  CHECK(f.auth_errors() == 0);
  CHECK(text_session_reply(f, required, "get k\r\n") == "CLIENT_ERROR unauthenticated\r\n");
}
