#include "server/replication/peer_allowlist.h"

#include <netinet/in.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace ringcache::replication {

bool ip_of(const sockaddr_storage& address, IpAddress& ip) {
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    std::memcpy(ip.data(), &v6.sin6_addr, ip.size());
    return true;
  }
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    ip.fill(0);
    ip[10] = 0xff;
    ip[11] = 0xff;
    std::memcpy(ip.data() + 12, &v4.sin_addr, 4);
    return true;
  }
  return false;
}

void PeerAllowlist::update(size_t index, const std::vector<ResolvedAddress>& addresses) {
  assert(index < by_peer_.size());
  std::vector<IpAddress> ips;
  ips.reserve(addresses.size());
  for (const ResolvedAddress& address : addresses) {
    IpAddress ip{};
    if (ip_of(address.address, ip)) ips.push_back(ip);
  }
  if (ips.empty()) return;  // keep what the last resolution gave
  std::lock_guard<std::mutex> lock(mutex_);
  by_peer_[index] = std::move(ips);
}

bool PeerAllowlist::allows(const sockaddr_storage& address) const {
  IpAddress ip{};
  if (!ip_of(address, ip)) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  return std::any_of(by_peer_.begin(), by_peer_.end(), [&](const std::vector<IpAddress>& ips) {
    return std::find(ips.begin(), ips.end(), ip) != ips.end();
  });
}

}  // namespace ringcache::replication
