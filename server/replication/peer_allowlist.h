// PeerAllowlist: where unauthenticated replication streams may come from.
//
// Without --peer-secret-file, a node accepts the v1 hello only from an IP
// address that one of its --peer names resolves to (any source port: the
// peer's outgoing port is ephemeral). The names are resolved by the
// replication thread at every connection attempt (peer_link.h); each
// resolution replaces that peer's addresses here, and a failed one keeps the
// last addresses that worked, so a DNS hiccup does not cut replication.
// A peer whose outgoing connections leave from another address than its name
// resolves to (NAT, several interfaces) needs the secret instead.
//
// IPv4 addresses are kept as IPv4-mapped IPv6, so a dual-stack listener's
// ::ffff:a.b.c.d and an AF_INET peer compare equal. Thread-safe: the
// replication thread writes after resolving (never while resolving), workers
// read at each hello.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/non_copyable.h"
#include "server/replication/peer_address.h"

namespace ringcache::replication {

using IpAddress = std::array<uint8_t, 16>;

// The IP of a socket address as IPv6 (IPv4 mapped); false for other families.
bool ip_of(const sockaddr_storage& address, IpAddress& ip);

class PeerAllowlist : NonCopyable {
 public:
  explicit PeerAllowlist(size_t peers) : by_peer_(peers) {}

  // The addresses peer `index` (its place in --peer) resolved to just now.
  void update(size_t index, const std::vector<ResolvedAddress>& addresses);
  bool allows(const sockaddr_storage& address) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::vector<IpAddress>> by_peer_;
};

}  // namespace ringcache::replication
