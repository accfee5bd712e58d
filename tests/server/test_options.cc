// Command-line parsing (docs/command_line.md): defaults, every option, and the errors
// that must make the daemon exit 2 with a clear message.
#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "server/options.h"

using namespace ringcache::server;

namespace {

constexpr uint32_t hardware = 6;

ParseResult parse(std::initializer_list<const char*> args) {
  const std::vector<const char*> list(args);
  return parse_options(list, hardware);
}

}  // namespace

TEST_CASE("defaults follow docs/command_line.md") {
  const ParseResult r = parse({});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.port == 8889);
  CHECK(r.options.text_port == 11211);
  CHECK(r.options.listen_address == "0.0.0.0");
  CHECK(r.options.threads == hardware);
  CHECK(r.options.memory_bytes == 64 * mib_bytes);
  CHECK(r.options.item_bytes_max == 32 * mib_bytes);
  CHECK(r.options.listen_fd == -1);
  CHECK(r.options.text_listen_fd == -1);
  CHECK(r.options.upload_idle_ms_max == 30 * 1000);
  CHECK_FALSE(r.options.verbose);
}

TEST_CASE("--upload-timeout takes whole seconds") {
  const ParseResult r = parse({"--upload-timeout", "2"});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.upload_idle_ms_max == 2000);
  CHECK(parse({"--upload-timeout=86400"}).options.upload_idle_ms_max == 86400ull * 1000);
  CHECK(usage_text().find("--upload-timeout SECONDS") != std::string::npos);
}

TEST_CASE("short, long, attached and = forms") {
  const ParseResult r = parse({"-p", "0", "--text-port=0", "-l127.0.0.1", "--threads", "3", "-m", "128",
                               "--max-item=1K", "-v", "--node-id", "node-a"});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.port == 0);
  CHECK(r.options.text_port == 0);
  CHECK(r.options.listen_address == "127.0.0.1");
  CHECK(r.options.threads == 3);
  CHECK(r.options.memory_bytes == 128 * mib_bytes);
  CHECK(r.options.item_bytes_max == 1024);
  CHECK(r.options.verbose);
  CHECK(r.options.node_id == "node-a");
}

TEST_CASE("--max-item defaults to half of -m") {
  const ParseResult r = parse({"-m", "1G"});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.memory_bytes == 1024 * mib_bytes);
  CHECK(r.options.item_bytes_max == 512 * mib_bytes);
}

TEST_CASE("IPv6 listen address") {
  const ParseResult r = parse({"-l", "::1"});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.listen_address == "::1");
}

TEST_CASE("inherited sockets") {
  const ParseResult r = parse({"--listen-fd", "3", "--text-listen-fd=4"});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.listen_fd == 3);
  CHECK(r.options.text_listen_fd == 4);
  CHECK(parse({"--listen-fd", "5", "--text-listen-fd", "5"}).status == ParseStatus::error);
}

TEST_CASE("help and version") {
  CHECK(parse({"-h"}).status == ParseStatus::help);
  CHECK(parse({"--help"}).status == ParseStatus::help);
  CHECK(parse({"-V"}).status == ParseStatus::version);
  CHECK(parse({"--version"}).status == ParseStatus::version);
  CHECK(usage_text().find("--max-item") != std::string::npos);
  CHECK(version_text().starts_with("ringcached "));
}

TEST_CASE("--peer is repeatable; bad, repeated or too many peers are errors") {
  const ParseResult r = parse({"--peer", "10.0.0.2:8889", "--peer=[::1]:9000", "--peer", "cache-3:1"});
  REQUIRE(r.status == ParseStatus::run);
  REQUIRE(r.options.peers.size() == 3);
  CHECK(r.options.peers[0].host == "10.0.0.2");
  CHECK(r.options.peers[0].port == 8889);
  CHECK(r.options.peers[1].host == "::1");
  CHECK(r.options.peers[2].text() == "cache-3:1");
  CHECK(parse({}).options.peers.empty());
  for (const char* bad : {"10.0.0.2", "10.0.0.2:0", "::1:80", "host:http"}) {
    const ParseResult e = parse({"--peer", bad});
    CHECK(e.status == ParseStatus::error);
    CHECK(e.error.find("--peer") != std::string::npos);
  }
  CHECK(parse({"--peer", "a:1", "--peer", "a:1"}).error.find("twice") != std::string::npos);
  std::vector<std::string> many;
  for (size_t i = 0; i <= peers_max; ++i) many.push_back("--peer=h:" + std::to_string(i + 1));
  std::vector<const char*> args;
  for (const auto& a : many) args.push_back(a.c_str());
  CHECK(parse_options(args, hardware).status == ParseStatus::error);
}

TEST_CASE("--peer-secret-file and --max-clock-skew") {
  const ParseResult d = parse({"--peer", "b:1"});
  REQUIRE(d.status == ParseStatus::run);
  CHECK(d.options.peer_secret_file.empty());
  CHECK(d.options.max_clock_skew_s == 10);
  const ParseResult r = parse({"--peer", "b:1", "--peer-secret-file", "/etc/ringcache/peer-secret",
                               "--max-clock-skew=3"});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.peer_secret_file == "/etc/ringcache/peer-secret");
  CHECK(r.options.max_clock_skew_s == 3);
  const ParseResult alone = parse({"--peer-secret-file", "/x"});
  CHECK(alone.status == ParseStatus::error);
  CHECK(alone.error.find("needs --peer") != std::string::npos);
  for (const char* bad : {"0", "-1", "86401", "ten", ""}) {
    const ParseResult e = parse({"--peer", "b:1", "--max-clock-skew", bad});
    CHECK(e.status == ParseStatus::error);
    CHECK(e.error.find("--max-clock-skew") != std::string::npos);
  }
  CHECK(parse({"--peer", "b:1", "--peer-secret-file="}).status == ParseStatus::error);
}

TEST_CASE("--auth-file names a file; without it clients need not authenticate") {
  CHECK(parse({}).options.auth_file.empty());
  const ParseResult r = parse({"--auth-file", "/etc/ringcache/users"});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.auth_file == "/etc/ringcache/users");
  CHECK(parse({"--auth-file=/x", "--text-port", "0"}).options.auth_file == "/x");
  const ParseResult empty = parse({"--auth-file="});
  CHECK(empty.status == ParseStatus::error);
  CHECK(empty.error.find("--auth-file") != std::string::npos);
  CHECK(parse({"--auth-file"}).status == ParseStatus::error);
  CHECK(usage_text().find("--auth-file PATH") != std::string::npos);
}

TEST_CASE("--tls-cert and --tls-key turn TLS on; the other TLS options need them") {
  const ParseResult off = parse({});
  CHECK(off.options.tls_cert.empty());
  CHECK_FALSE(off.options.tls_verify_clients);
  CHECK(off.options.tls_handshake_ms_max == 10 * 1000);

  const ParseResult r = parse({"--tls-cert", "c.pem", "--tls-key=k.pem", "--tls-ca", "ca.pem",
                               "--tls-verify-clients", "--tls-handshake-timeout", "3"});
  REQUIRE(r.status == ParseStatus::run);
  CHECK(r.options.tls_cert == "c.pem");
  CHECK(r.options.tls_key == "k.pem");
  CHECK(r.options.tls_ca == "ca.pem");
  CHECK(r.options.tls_verify_clients);
  CHECK(r.options.tls_handshake_ms_max == 3000);

  CHECK(parse({"--tls-cert", "c.pem"}).error == "TLS needs both --tls-cert and --tls-key (or --tls-key-fd)");
  CHECK(parse({"--tls-key", "k.pem"}).error == "TLS needs both --tls-cert and --tls-key (or --tls-key-fd)");
  CHECK(parse({"--tls-key-fd", "5"}).error == "TLS needs both --tls-cert and --tls-key (or --tls-key-fd)");
  CHECK(parse({"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-key-fd", "5"}).error ==
        "--tls-key and --tls-key-fd both name the private key; give one");
  CHECK(parse({"--tls-cert", "c.pem", "--tls-key-fd", "5", "--listen-fd", "5"}).error ==
        "--tls-key-fd names a listening socket's descriptor");
  CHECK(parse({"--tls-cert", "c.pem", "--tls-key-fd", "-1"}).status == ParseStatus::error);
  CHECK(parse({"--tls-cert", "c.pem", "--tls-key-fd", "x"}).status == ParseStatus::error);
  const ParseResult key_fd = parse({"--tls-cert", "c.pem", "--tls-key-fd", "5"});
  REQUIRE(key_fd.status == ParseStatus::run);
  CHECK(key_fd.options.tls_key_fd == 5);
  CHECK(key_fd.options.tls_key.empty());
  for (const char* alone : {"--tls-ca=ca.pem", "--tls-verify-clients", "--tls-handshake-timeout=5"}) {
    const ParseResult e = parse({alone});
    CHECK(e.status == ParseStatus::error);
    CHECK(e.error.find("need --tls-cert and --tls-key") != std::string::npos);
  }
  const ParseResult no_ca = parse({"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-verify-clients"});
  CHECK(no_ca.error.find("--tls-verify-clients needs --tls-ca") != std::string::npos);
  const ParseResult timeout = parse({"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-handshake-timeout", "0"});
  CHECK(timeout.error.find("--tls-handshake-timeout") != std::string::npos);
  CHECK(parse({"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-handshake-timeout", "301"}).status ==
        ParseStatus::error);
  CHECK(parse({"--tls-cert", "", "--tls-key", "k.pem"}).status == ParseStatus::error);
}

TEST_CASE("TLS with --peer needs --tls-ca: replication links verify each other") {
  const ParseResult no_ca = parse({"--tls-cert", "c.pem", "--tls-key", "k.pem", "--peer", "127.0.0.1:9002"});
  CHECK(no_ca.status == ParseStatus::error);
  CHECK(no_ca.error.find("TLS with --peer needs --tls-ca") != std::string::npos);
  const ParseResult mesh = parse({"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--peer",
                                  "127.0.0.1:9002"});
  CHECK(mesh.status == ParseStatus::run);
  CHECK(mesh.options.tls_ca == "ca.pem");
  CHECK(mesh.options.peers.size() == 1);
  CHECK(usage_text().find("--tls-cert FILE") != std::string::npos);
}

TEST_CASE("bad values are errors that name the option") {
  struct Case {
    std::vector<const char*> args;
    const char* mentions;
  };
  const std::vector<Case> cases = {
      {{"-p", "65536"}, "-p/--port"},
      {{"-p", "-1"}, "-p/--port"},
      {{"-p", "80x"}, "-p/--port"},
      {{"--port="}, "-p/--port"},
      {{"--text-port", "abc"}, "--text-port"},
      {{"-t", "0"}, "-t/--threads"},
      {{"-t", "257"}, "-t/--threads"},
      {{"-m", "0"}, "-m/--memory"},
      {{"-m", "3"}, "-m/--memory"},
      {{"-m", "2048G"}, "-m/--memory"},
      {{"-m", "64X"}, "-m/--memory"},
      {{"-m", "1.5G"}, "-m/--memory"},
      {{"-m", "99999999999999999999"}, "-m/--memory"},
      {{"--max-item", "0"}, "--max-item"},
      {{"-m", "64", "--max-item", "65"}, "--max-item"},
      {{"-l", "localhost"}, "-l/--listen"},
      {{"-l", "300.1.1.1"}, "-l/--listen"},
      {{"--listen-fd", "-3"}, "--listen-fd"},
      {{"--upload-timeout", "0"}, "--upload-timeout"},
      {{"--upload-timeout", "1.5"}, "--upload-timeout"},
      {{"--upload-timeout", "86401"}, "--upload-timeout"},
      {{"--upload-timeout", "-1"}, "--upload-timeout"},
      {{"--node-id", "has space"}, "--node-id"},
      {{"--node-id", ""}, "--node-id"},
      {{"-p"}, "needs a value"},
      {{"--bogus"}, "unknown option"},
      {{"-x"}, "unknown option"},
      {{"-vx"}, "unknown option"},
      {{"--verbose=1"}, "takes no value"},
      {{"stray"}, "unexpected argument"},
  };
  for (const Case& c : cases) {
    const ParseResult r = parse_options(c.args, hardware);
    INFO(c.args.front());
    CHECK(r.status == ParseStatus::error);
    CHECK(r.error.find(c.mentions) != std::string::npos);
  }
}

TEST_CASE("parse_size: plain number is MiB, K M G are powers of 1024") {
  uint64_t bytes = 0;
  CHECK(parse_size("64", bytes));
  CHECK(bytes == 64 * mib_bytes);
  CHECK(parse_size("512k", bytes));
  CHECK(bytes == 512 * 1024);
  CHECK(parse_size("3M", bytes));
  CHECK(bytes == 3 * mib_bytes);
  CHECK(parse_size("2g", bytes));
  CHECK(bytes == 2048 * mib_bytes);
  CHECK_FALSE(parse_size("", bytes));
  CHECK_FALSE(parse_size("K", bytes));
  CHECK_FALSE(parse_size("0", bytes));
  CHECK_FALSE(parse_size("-1", bytes));
  CHECK_FALSE(parse_size("1KB", bytes));
  CHECK_FALSE(parse_size("17179869184G", bytes));  // overflows 64 bits
}

TEST_CASE("hardware threads above the limit are clamped for the default") {
  const std::vector<const char*> none;
  CHECK(parse_options(none, 1000).options.threads == threads_max);
  CHECK(parse_options(none, 0).options.threads == 1);
}
