// --peer HOST:PORT parsing and resolution.
#include <doctest/doctest.h>

#include <netinet/in.h>

#include <string>
#include <vector>

#include "server/replication/peer_address.h"

using namespace ringcache::replication;

TEST_CASE("HOST:PORT, [IPV6]:PORT and names parse") {
  PeerAddress a;
  std::string error;
  REQUIRE(parse_peer_address("10.0.0.2:8889", a, error));
  CHECK(a.host == "10.0.0.2");
  CHECK(a.port == 8889);
  CHECK(a.text() == "10.0.0.2:8889");
  REQUIRE(parse_peer_address("[::1]:1", a, error));
  CHECK(a.host == "::1");
  CHECK(a.port == 1);
  CHECK(a.text() == "[::1]:1");
  REQUIRE(parse_peer_address("cache-2.internal:65535", a, error));
  CHECK(a.host == "cache-2.internal");
  CHECK(a.port == 65535);
}

TEST_CASE("bad peer addresses are refused with a reason") {
  for (const char* text : {"", "host", "host:", ":8889", "host:0", "host:65536", "host:88a", "::1:8889",
                           "[::1]8889", "[::1", "ho st:1", "host:-1", "host:+1"}) {
    PeerAddress a;
    std::string error;
    INFO(text);
    CHECK(!parse_peer_address(text, a, error));
    CHECK(!error.empty());
  }
  PeerAddress a;
  std::string error;
  CHECK(!parse_peer_address(std::string(254, 'h') + ":1", a, error));
}

TEST_CASE("numeric addresses and localhost resolve; an unknown name fails cleanly") {
  PeerAddress a;
  std::string error;
  std::vector<ResolvedAddress> out;
  REQUIRE(parse_peer_address("127.0.0.1:4242", a, error));
  REQUIRE(resolve_peer_address(a, out, error));
  REQUIRE(out.size() == 1);
  CHECK(format_address(out[0]) == "127.0.0.1:4242");
  REQUIRE(parse_peer_address("localhost:4242", a, error));
  REQUIRE(resolve_peer_address(a, out, error));
  CHECK(!out.empty());
  CHECK(out.size() <= peer_addresses_max);
  REQUIRE(parse_peer_address("no-such-host.invalid:1", a, error));
  CHECK(!resolve_peer_address(a, out, error));
  CHECK(!error.empty());
}

TEST_CASE("a peer naming this node itself is recognised") {
  PeerAddress a;
  std::string error;
  REQUIRE(parse_peer_address("127.0.0.1:8889", a, error));
  CHECK(names_this_node(a, "127.0.0.1:8889"));
  CHECK(names_this_node(a, "0.0.0.0:8889"));
  CHECK(!names_this_node(a, "0.0.0.0:8890"));
  CHECK(!names_this_node(a, "10.0.0.1:8889"));
  REQUIRE(parse_peer_address("localhost:8889", a, error));
  CHECK(names_this_node(a, "[::]:8889"));
  REQUIRE(parse_peer_address("10.0.0.2:8889", a, error));
  CHECK(!names_this_node(a, "0.0.0.0:8889"));
  CHECK(names_this_node(a, "10.0.0.2:8889"));
  CHECK(!names_this_node(a, "unix:/run/x"));
}
