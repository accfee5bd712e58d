// Peer addresses: `--peer HOST:PORT` parsed once, resolved again at every
// connection attempt (a peer's address may only exist once it runs, as with
// the containers of the Repcached paper).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringcache::replication {

inline constexpr size_t peer_host_bytes_max = 253;  // longest DNS name
inline constexpr size_t peer_addresses_max = 8;     // resolved addresses tried per attempt

struct PeerAddress {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  uint16_t port = 0;
  std::string text() const;  // as given: host:port or [v6]:port
};

// "HOST:PORT" or "[IPV6]:PORT", port 1-65535. Returns false with `error` set.
bool parse_peer_address(std::string_view text, PeerAddress& out, std::string& error);

struct ResolvedAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
};

// Resolves with getaddrinfo, which may block on DNS for a name: names are
// resolved on a PeerResolver's thread (peer_resolver.h), only numeric
// addresses on the replication thread, nothing on a worker. Returns false
// with `error` set.
bool resolve_peer_address(const PeerAddress& peer, std::vector<ResolvedAddress>& out,
                          std::string& error);

// "127.0.0.1:8889" / "[::1]:8889".
std::string format_address(const ResolvedAddress& address);

// Whether `peer` certainly names this node, listening on `bound` (as the
// daemon logs it: "0.0.0.0:8889", "[::1]:8889"): the same port and the same
// address, or a loopback address while listening on every address. A mesh
// where a node is its own peer is refused at start-up (docs/replication.md); anything
// subtler is caught when the hello carries our own node id.
bool names_this_node(const PeerAddress& peer, std::string_view bound);

}  // namespace ringcache::replication
