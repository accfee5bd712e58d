// McBinaryProcessor (process/mc_binary_process.h) against a real store:
// every opcode's response (status, opaque, cas, extras, key, value), quiet
// commands, cas semantics shared with the text protocol, streamed and too
// large values, and the text port's first-byte choice
// (process/text_port_session.h). SASL PLAIN is in test_mc_binary_sasl.cc;
// the fixture in mc_binary_fixture.h.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/server/mc_binary_fixture.h"

using namespace ringcache;
using namespace ringcache::server;
using namespace ringcache::server::test;
using namespace ringcache::server::test::mc_binary_test;

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

TEST_CASE("mc binary: an add with a cas is a compare-and-swap, as memcached 1.6.18 answers it") {
  // memcached turns set, add and replace with a nonzero cas into a cas store.
  Fixture f;
  CHECK(f.set("absent", "v", 0, 0, 12345, Opcode::add).status == code(Status::key_not_found));
  CHECK_FALSE(f.get("absent").status == code(Status::success));
  const Response stored = f.set("k", "v");
  CHECK(f.set("k", "w", 0, 0, stored.cas + 1, Opcode::add).status == code(Status::key_exists));
  const Response swapped = f.set("k", "x", 0, 0, stored.cas, Opcode::add);
  CHECK(swapped.status == code(Status::success));
  CHECK(swapped.cas != stored.cas);
  CHECK(f.get("k").value == "x");
  CHECK(f.one(request(Opcode::addq, store_extras(0, 0), "k", "y", 3, stored.cas)).status ==
        code(Status::key_exists));
  CHECK(f.send(request(Opcode::addq, store_extras(0, 0), "k", "z", 4, swapped.cas)).empty());
  CHECK(f.get("k").value == "z");
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
