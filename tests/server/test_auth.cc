// Client authentication (--auth-file, process/auth.h): the auth file's
// every refusal, the constant-time check, and both protocols' sessions
// before and after authentication against a real store, through a
// Connection as the event loop drives it.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "server/io/connection.h"
#include "server/process/auth.h"
#include "server/process/binary_process.h"
#include "server/process/binary_session.h"
#include "server/process/binary_stats.h"
#include "server/process/text_process.h"
#include "server/process/text_session.h"
#include "server/process/text_stats.h"
#include "store/store.h"
#include "tests/server/server_test_util.h"

using namespace ringcache;
using namespace ringcache::server;
using ringcache::server::test::pattern;
using ringcache::server::test::take_output;

namespace {

constexpr char ok = 101, einval = 111, enotfound = 112;

std::string field(std::string_view bytes) {
  const auto n = static_cast<uint32_t>(bytes.size());
  const char length[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                          static_cast<char>(n)};
  return std::string(length, 4) + std::string(bytes);
}
std::string put(std::string_view key, std::string_view value) { return '\x0b' + field(key) + field(value); }
std::string get(std::string_view key) { return '\x0d' + field(key); }
std::string auth(std::string_view user, std::string_view password) {
  return '\x1f' + field(user) + field(password);
}
std::string replies(std::initializer_list<char> codes) { return std::string(codes); }

AuthTable table_of(std::string_view text) {
  AuthTable table;
  std::string error;
  REQUIRE_MESSAGE(AuthTable::parse(text, table, error), error);
  return table;
}

std::string parse_error(std::string_view text) {
  AuthTable table;
  std::string error;
  CHECK_FALSE(AuthTable::parse(text, table, error));
  return error;
}

// A file in a fresh directory under TMPDIR, removed with it.
struct TempFile {
  TempFile() {
    const char* tmp = std::getenv("TMPDIR");
    dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/ringcache-auth-XXXXXX";
    REQUIRE(::mkdtemp(dir.data()) != nullptr);
    path = dir + "/auth";
  }
  ~TempFile() {
    std::remove(path.c_str());
    ::rmdir(dir.c_str());
  }
  void write(std::string_view text, mode_t mode) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
  }
  std::string dir;
  std::string path;
};

// One worker's processors of both protocols over a real store, with
// authentication on (credentials "alice:s3cret").
struct Fixture {
  Fixture()
      : store(test::test_store_config()),
        thread(store),
        registry(1),
        text_stats(1),
        budget(1 << 30),
        write(WritePath::make(thread, nullptr, 0)),
        binary(thread, *write, registry.thread(0), registry, budget, item_bytes_max),
        text(thread, *write, text_stats.thread(0), TextStatsContext{registry, text_stats, item_bytes_max},
             item_bytes_max),
        authenticator(table_of("alice:s3cret\nbob:pw:with:colons\n"), nullptr) {
    limits.item_bytes_max = item_bytes_max;
    limits.auth = true;
  }

  std::unique_ptr<Connection> binary_connection(bool with_auth = true) {
    protocol::ParserLimits session_limits = limits;
    session_limits.auth = with_auth;
    const ConnectionAuth state(with_auth ? &authenticator : nullptr, registry.thread(0), -1, "binary");
    return std::make_unique<Connection>(3, 0, 0,
                                        std::make_unique<BinarySession>(binary, session_limits, -1, nullptr, state));
  }
  std::unique_ptr<Connection> text_connection() {
    const ConnectionAuth state(&authenticator, registry.thread(0), -1, "text");
    return std::make_unique<Connection>(3, 0, 0, std::make_unique<TextSession>(text, state));
  }
  std::string send(Connection& c, std::string_view bytes) {
    REQUIRE(c.feed(bytes, 0) == FeedStatus::ok);
    return take_output(c.out);
  }

  static constexpr uint64_t item_bytes_max = 4 * store::mib_bytes;
  store::Store store;
  store::StoreThread thread;
  StatsRegistry registry;
  TextStatsRegistry text_stats;
  InputBudget budget;
  std::unique_ptr<WritePath> write;
  BinaryProcessor binary;
  TextProcessor text;
  Authenticator authenticator;
  protocol::ParserLimits limits{};
};

}  // namespace

TEST_CASE("auth file: user:password lines, memcached's -Y format") {
  const AuthTable table = table_of("alice:s3cret\r\nbob:pw:with:colons\ncarol: spaced pw \n");
  CHECK(table.size() == 3);
  CHECK(table.check("alice", "s3cret"));
  CHECK(table.check("bob", "pw:with:colons"));
  CHECK(table.check("carol", " spaced pw "));
  CHECK_FALSE(table.check("alice", "s3cre"));
  CHECK_FALSE(table.check("alice", "s3cret "));
  CHECK_FALSE(table.check("alice", "s3cret\r"));
  CHECK_FALSE(table.check("alice", ""));
  CHECK_FALSE(table.check("bob", "s3cret"));
  CHECK_FALSE(table.check("", ""));
  CHECK_FALSE(table.check("alice:s3cret", ""));
  CHECK(table_of("alice:s3cret").check("alice", "s3cret"));  // no final newline
}

TEST_CASE("auth file: every malformed line is refused, naming the line, never the password") {
  CHECK(parse_error("") == "no user:password line");
  CHECK(parse_error("alice:s3cret\nbob\n").starts_with("line 2: no colon"));
  CHECK(parse_error("alice:s3cret\n\n").starts_with("line 2: no colon"));
  CHECK(parse_error(":s3cret\n").starts_with("line 1: empty user"));
  CHECK(parse_error("alice:\n").starts_with("line 1: empty password"));
  CHECK(parse_error("al ice:s3cret\n").starts_with("line 1: a space or control character"));
  CHECK(parse_error("al\tice:s3cret\n").starts_with("line 1: a space or control character"));
  const std::string long_text(auth_credential_bytes_max + 1, 'x');
  CHECK(parse_error(long_text + ":pw\n").starts_with("line 1: a user or password longer than"));
  const std::string error = parse_error("alice:" + long_text + "\n");
  CHECK(error.starts_with("line 1: a user or password longer than"));
  CHECK(error.find(long_text) == std::string::npos);
  std::string lines;
  for (size_t i = 0; i <= auth_file_lines_max; ++i) lines += "user" + std::to_string(i) + ":pw\n";
  CHECK(parse_error(lines).starts_with("more than"));
  lines.resize(lines.rfind("user"));
  CHECK(table_of(lines).size() == auth_file_lines_max);
}

TEST_CASE("auth file: refused unless a private, regular, non-empty file of bounded size") {
  TempFile file;
  AuthTable table;
  std::string error;
  file.write("alice:s3cret\n", 0600);
  CHECK(AuthTable::load(file.path, table, error));
  CHECK(table.check("alice", "s3cret"));
  file.write("alice:s3cret\n", 0604);
  CHECK_FALSE(AuthTable::load(file.path, table, error));
  CHECK(error.find("readable or writable by others; chmod 600") != std::string::npos);
  file.write("alice:s3cret\n", 0602);
  CHECK_FALSE(AuthTable::load(file.path, table, error));
  CHECK(error.find("readable or writable by others") != std::string::npos);
  file.write("", 0600);
  CHECK_FALSE(AuthTable::load(file.path, table, error));
  CHECK(error.find("holds 0 bytes") != std::string::npos);
  file.write(std::string(auth_file_bytes_max + 1, 'a'), 0600);
  CHECK_FALSE(AuthTable::load(file.path, table, error));
  CHECK(error.find("is larger than") != std::string::npos);
  file.write("alice:s3cret\nnocolon\n", 0600);
  CHECK_FALSE(AuthTable::load(file.path, table, error));
  CHECK(error == "--auth-file " + file.path + ": line 2: no colon (each line is user:password)");
  CHECK_FALSE(AuthTable::load(file.dir, table, error));
  CHECK(error.find("not a regular file") != std::string::npos);
  CHECK_FALSE(AuthTable::load(file.dir + "/missing", table, error));
  CHECK(error.starts_with("--auth-file " + file.dir + "/missing: "));
}

TEST_CASE("binary port: before AUTH every request is read in full and answered EINVAL") {
  Fixture f;
  std::unique_ptr<Connection> c = f.binary_connection();
  // A streamed value (above the parser's inline limit) is drained, not stored.
  const std::string big = pattern(300 * 1024, 1);
  CHECK(f.send(*c, get("k") + put("k", "v") + put("big", big) + std::string(1, '\x15') + std::string(1, '\x07')) ==
        replies({einval, einval, einval, einval, einval}));
  CHECK(c->at_frame_boundary());
  CHECK(f.send(*c, auth("alice", "s3cret") + get("k") + get("big") + put("k", "v") + get("k")) ==
        replies({ok, enotfound, enotfound, ok, ok}) + field("v"));
  CHECK(f.store.stats().keys == 1);
}

TEST_CASE("binary port: a wrong AUTH is EINVAL, and the third closes the connection") {
  Fixture f;
  std::unique_ptr<Connection> c = f.binary_connection();
  CHECK(f.send(*c, auth("alice", "wrong") + auth("alice", "s3cre") + get("k")) ==
        replies({einval, einval, einval}));
  CHECK_FALSE(c->close_after_reply());
  CHECK(f.send(*c, auth("alice", "s3cret\n") + get("k")) == replies({einval}));
  CHECK(c->close_after_reply());
  const StatsSnapshot stats = f.registry.collect(f.store.stats(), f.item_bytes_max);
  CHECK(stats.auth_cmds == 3);
  CHECK(stats.auth_errors == 3);
}

TEST_CASE("binary port: AUTH split anywhere, too long fields, and after authentication") {
  Fixture f;
  const std::string stream = auth(std::string(2000, 'u'), "pw") + auth("bob", "pw:with:colons") + put("k", "v") +
                             auth("alice", "wrong") + get("k");
  const std::string expected = replies({einval, ok, ok, einval, ok}) + field("v");
  for (size_t split = 0; split <= stream.size(); split += (split < 64 ? 1 : 211)) {
    std::unique_ptr<Connection> c = f.binary_connection();
    INFO("split at " << split);
    std::string got = f.send(*c, std::string_view(stream).substr(0, split));
    got += f.send(*c, std::string_view(stream).substr(split));
    CHECK(got == expected);
  }
  const StatsSnapshot stats = f.registry.collect(f.store.stats(), f.item_bytes_max);
  CHECK(stats.auth_errors == stats.auth_cmds * 2 / 3);
  CHECK(format_stats(stats).find(" AUTH_CMDS=" + std::to_string(stats.auth_cmds) +
                                 " AUTH_ERRORS=" + std::to_string(stats.auth_errors)) != std::string::npos);
}

TEST_CASE("binary port without --auth-file: 31 is an unknown opcode") {
  Fixture f;
  std::unique_ptr<Connection> c = f.binary_connection(false);
  CHECK(f.send(*c, std::string(1, '\x1f') + put("k", "v") + get("k")) == replies({einval, ok, ok}) + field("v"));
}

TEST_CASE("text port: memcached's authfile convention") {
  Fixture f;
  std::unique_ptr<Connection> c = f.text_connection();
  const std::string unauthenticated = "CLIENT_ERROR unauthenticated\r\n";
  CHECK(f.send(*c, "get k\r\n") == unauthenticated);
  CHECK(f.send(*c, "version\r\nmn\r\nmg k v\r\nbogus\r\n") ==
        unauthenticated + unauthenticated + unauthenticated + unauthenticated);
  // Other storage commands: their data block is read and dropped.
  CHECK(f.send(*c, "add k 0 0 12\r\nalice s3cret\r\nms k 2\r\nhi\r\nget k\r\n") ==
        unauthenticated + unauthenticated + unauthenticated);
  const std::string big(100 * 1024, 'x');
  CHECK(f.send(*c, "append k 0 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\nget k\r\n") ==
        unauthenticated + unauthenticated);
  CHECK(f.send(*c, "set k 0 0 5\r\nhello\r\n") == "CLIENT_ERROR bad authentication token format\r\n");
  CHECK(f.send(*c, "set k 0 0 12\r\nalice wrong!\r\n") == "CLIENT_ERROR authentication failure\r\n");
  CHECK(f.store.stats().keys == 0);
  CHECK(f.send(*c, "set anykey 5 100 14 noreply\r\n alice  s3cret\r\nget anykey\r\n") == "STORED\r\nEND\r\n");
  CHECK(f.send(*c, "set k 0 0 12\r\nalice s3cret\r\nget k\r\n") ==
        "STORED\r\nVALUE k 0 12\r\nalice s3cret\r\nEND\r\n");
  CHECK(f.send(*c, "stats\r\n").find("STAT auth_cmds 3\r\nSTAT auth_errors 2\r\n") != std::string::npos);
}

TEST_CASE("text port: a set too long for credentials fails; the third failure closes") {
  Fixture f;
  std::unique_ptr<Connection> c = f.text_connection();
  const std::string big(100 * 1024, 'x');
  CHECK(f.send(*c, "set k 0 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\n") ==
        "CLIENT_ERROR authentication failure\r\n");
  CHECK(f.send(*c, "set k 0 0 1\r\nx\r\nset k 0 0 12\r\nalice wrong!\r\nget k\r\n") ==
        "CLIENT_ERROR bad authentication token format\r\nCLIENT_ERROR authentication failure\r\n");
  CHECK(c->close_after_reply());
  // Over --max-item: the block is skipped by counting, and the set is a failure too.
  std::unique_ptr<Connection> other = f.text_connection();
  CHECK(f.send(*other, "set k 0 0 " + std::to_string(f.item_bytes_max + 1) + "\r\n") ==
        "CLIENT_ERROR authentication failure\r\n");
  CHECK(f.send(*other, std::string(f.item_bytes_max + 1, 'x') + "\r\nget k\r\n") ==
        "CLIENT_ERROR unauthenticated\r\n");
}

TEST_CASE("text port: quit before authentication closes; a bad data chunk keeps the stream in sync") {
  Fixture f;
  std::unique_ptr<Connection> c = f.text_connection();
  // The parser's resync after a bad chunk (an error for the block, one for the line after it).
  CHECK(f.send(*c, "set k 0 0 2\r\nabcd\r\nset k 0 0 12\r\nalice s3cret\r\n") ==
        "CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR unauthenticated\r\nSTORED\r\n");
  std::unique_ptr<Connection> other = f.text_connection();
  CHECK(f.send(*other, "quit\r\nget k\r\n").empty());
  CHECK(other->close_after_reply());
}
