// The helper's command line: what it accepts, and a precise error for what
// it does not (parse_options never prints or exits).
#include <doctest/doctest.h>

#include "privsep/options.h"

#include <initializer_list>
#include <string>
#include <vector>

namespace {

using namespace ringcache::privsep;

parse_result parse(std::initializer_list<const char*> args) {
  const std::vector<const char*> argv(args);
  return parse_options(argv);
}

}  // namespace

TEST_CASE("defaults: port 889 on 0.0.0.0, no text port, daemon command kept whole") {
  const parse_result r = parse({"--user", "nobody", "--", "/opt/ringcached", "-t", "2", "--user", "x"});
  REQUIRE(r.status == parse_status::ok);
  CHECK(r.options.user == "nobody");
  CHECK(r.options.binary_port == 889);
  CHECK_FALSE(r.options.text_port.has_value());
  CHECK(r.options.listen_address == "0.0.0.0");
  CHECK(r.options.daemon_argv == std::vector<std::string>{"/opt/ringcached", "-t", "2", "--user", "x"});
}

TEST_CASE("both spellings of every option") {
  const parse_result spaced = parse({"--user", "cache", "--port", "8890", "--text-port", "11212",
                                     "--listen", "127.0.0.1", "--", "ringcached"});
  const parse_result joined = parse({"--user=cache", "--port=8890", "--text-port=11212",
                                     "--listen=127.0.0.1", "--", "ringcached"});
  for (const parse_result& r : {spaced, joined}) {
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.options.user == "cache");
    CHECK(r.options.binary_port == 8890);
    REQUIRE(r.options.text_port.has_value());
    CHECK(*r.options.text_port == 11212);
    CHECK(r.options.listen_address == "127.0.0.1");
  }
}

TEST_CASE("port 0 is allowed (the kernel picks) for both ports at once") {
  const parse_result r = parse({"--user", "u", "--port", "0", "--text-port", "0", "--", "d"});
  REQUIRE(r.status == parse_status::ok);
  CHECK(r.options.binary_port == 0);
  CHECK(*r.options.text_port == 0);
}

TEST_CASE("bad ports are refused with the offending argument") {
  for (const char* bad : {"", "-1", "+5", "65536", "99999", "123456", "8x", "0x10", " 80", "889 "}) {
    CAPTURE(bad);
    const parse_result r = parse({"--user", "u", "--port", bad, "--", "d"});
    CHECK(r.status == parse_status::invalid_port);
    CHECK(describe(r).find("--port") != std::string::npos);
  }
  CHECK(parse({"--user", "u", "--text-port=70000", "--", "d"}).status == parse_status::invalid_port);
  CHECK(parse({"--user", "u", "--port", "65535", "--", "d"}).status == parse_status::ok);
}

TEST_CASE("the same port twice is refused") {
  const parse_result r = parse({"--user", "u", "--port", "889", "--text-port", "889", "--", "d"});
  CHECK(r.status == parse_status::same_port);
}

TEST_CASE("structural errors") {
  CHECK(parse({}).status == parse_status::missing_user);
  CHECK(parse({"--", "d"}).status == parse_status::missing_user);
  CHECK(parse({"--user="}).status == parse_status::missing_user);
  CHECK(parse({"--user", "u"}).status == parse_status::missing_separator);
  CHECK(parse({"--user", "u", "ringcached"}).status == parse_status::unknown_option);
  CHECK(parse({"--user", "u", "--"}).status == parse_status::missing_daemon);
  CHECK(parse({"--user", "u", "--", ""}).status == parse_status::missing_daemon);
  CHECK(parse({"--user"}).status == parse_status::missing_value);
  CHECK(parse({"--user", "u", "--port"}).status == parse_status::missing_value);
  const parse_result unknown = parse({"--user", "u", "--bogus", "--", "d"});
  CHECK(unknown.status == parse_status::unknown_option);
  CHECK(describe(unknown) == "unknown option '--bogus'");
  CHECK(parse({"--users", "u", "--", "d"}).status == parse_status::unknown_option);
}

TEST_CASE("the daemon may not be given its own listening fds") {
  for (const char* reserved : {"--listen-fd", "--listen-fd=3", "--text-listen-fd", "--text-listen-fd=4"}) {
    CAPTURE(reserved);
    const parse_result r = parse({"--user", "u", "--", "ringcached", reserved, "3"});
    CHECK(r.status == parse_status::conflicting_daemon_option);
  }
  CHECK(parse({"--user", "u", "--", "ringcached", "--listen-fdx"}).status == parse_status::ok);
}

TEST_CASE("--tls-key: the helper opens the key, so the daemon may not name it too") {
  const parse_result spaced = parse({"--user", "u", "--tls-key", "/etc/k.pem", "--", "d", "--tls-cert", "c"});
  const parse_result joined = parse({"--user", "u", "--tls-key=/etc/k.pem", "--", "d", "--tls-cert", "c"});
  for (const parse_result& r : {spaced, joined}) {
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.options.tls_key_file == "/etc/k.pem");
    CHECK(r.options.daemon_argv == std::vector<std::string>{"d", "--tls-cert", "c"});
  }
  CHECK(parse({"--user", "u", "--tls-key"}).status == parse_status::missing_value);
  CHECK(parse({"--user", "u", "--tls-key=", "--", "d"}).status == parse_status::missing_value);
  for (const char* reserved : {"--tls-key", "--tls-key=k.pem", "--tls-key-fd", "--tls-key-fd=5"}) {
    CAPTURE(reserved);
    const parse_result r = parse({"--user", "u", "--tls-key", "k.pem", "--", "d", reserved, "x"});
    CHECK(r.status == parse_status::conflicting_daemon_option);
  }
  // Without the helper's --tls-key the daemon reads its own key file; its
  // --tls-key-fd would name a descriptor the helper closed.
  CHECK(parse({"--user", "u", "--", "d", "--tls-key", "k.pem"}).status == parse_status::ok);
  CHECK(parse({"--user", "u", "--", "d", "--tls-key-fd", "5"}).status == parse_status::conflicting_daemon_option);
}

TEST_CASE("help wins wherever it appears before the separator") {
  CHECK(parse({"-h"}).status == parse_status::help);
  CHECK(parse({"--user", "u", "--help", "--", "d"}).status == parse_status::help);
  CHECK(parse({"--user", "u", "--", "d", "--help"}).status == parse_status::ok);
  CHECK(std::string(usage_text()).find("--user USER") != std::string::npos);
}
