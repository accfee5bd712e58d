// SASL PLAIN in memcached's binary protocol under --auth-file
// (process/mc_binary_process.h, docs/memcache_binary_protocol.md,
// "Authentication"): mechanisms, accepted and refused credentials, the
// failure limit, requests refused before authentication, and the text
// port's choice of protocol under --auth-file.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/server/mc_binary_fixture.h"

using namespace ringcache;
using namespace ringcache::server;
using namespace ringcache::server::test;
using namespace ringcache::server::test::mc_binary_test;

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