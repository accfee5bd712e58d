#include "server/replication/peer_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

namespace ringcache::replication {

namespace {

// "HOST:PORT", or "[HOST]:PORT" for IPv6. Appends rather than chaining
// operator+: g++ 12 at -O3 warns, falsely, on "[" + std::string (-Wrestrict).
std::string host_port(std::string_view host, uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  std::string out;
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace

std::string PeerAddress::text() const { return host_port(host, port); }

bool parse_peer_address(std::string_view text, PeerAddress& out, std::string& error) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = "expected [IPV6]:PORT";
      return false;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = "expected HOST:PORT";
      return false;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      error = "an IPv6 address needs brackets: [ADDRESS]:PORT";
      return false;
    }
  }
  if (host.empty() || host.size() > peer_host_bytes_max) {
    error = "the host must be 1-" + std::to_string(peer_host_bytes_max) + " characters";
    return false;
  }
  for (const char c : host) {
    if (c <= ' ' || c > '~') {
      error = "the host contains a space or a control character";
      return false;
    }
  }
  unsigned port = 0;
  const char* end = port_text.data() + port_text.size();
  const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
  if (port_text.empty() || ec != std::errc() || ptr != end || port < 1 || port > 65535) {
    error = "the port must be a number 1-65535";
    return false;
  }
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(port);
  return true;
}

bool resolve_peer_address(const PeerAddress& peer, std::vector<ResolvedAddress>& out,
                          std::string& error) {
  out.clear();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  addrinfo* result = nullptr;
  const std::string port = std::to_string(peer.port);
  int rc = ::getaddrinfo(peer.host.c_str(), port.c_str(), &hints, &result);
  if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY) {
    // AI_ADDRCONFIG hides loopback addresses when no other interface has an
    // address of that family (a bare network namespace): ask once without it.
    hints.ai_flags = AI_NUMERICSERV;
    rc = ::getaddrinfo(peer.host.c_str(), port.c_str(), &hints, &result);
  }
  if (rc != 0) {
    error = rc == EAI_SYSTEM ? std::string(std::strerror(errno)) : std::string(::gai_strerror(rc));
    return false;
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(result, ::freeaddrinfo);
  for (const addrinfo* a = result; a != nullptr && out.size() < peer_addresses_max; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    ResolvedAddress r;
    std::memcpy(&r.address, a->ai_addr, a->ai_addrlen);
    r.length = a->ai_addrlen;
    out.push_back(r);
  }
  if (out.empty()) {
    error = "no usable address";
    return false;
  }
  return true;
}

std::string format_address(const ResolvedAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address.address);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return host_port(text, ntohs(in->sin_port));
  }
  if (address.address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address.address);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    return host_port(text, ntohs(in6->sin6_port));
  }
  return "?";
}

namespace {

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host.substr(0, 4) == "127.";
}

bool is_wildcard_host(std::string_view host) { return host == "0.0.0.0" || host == "::"; }

}  // namespace

bool names_this_node(const PeerAddress& peer, std::string_view bound) {
  PeerAddress self;
  std::string error;
  if (!parse_peer_address(bound, self, error)) return false;
  if (peer.port != self.port) return false;
  return peer.host == self.host || (is_wildcard_host(self.host) && is_loopback_host(peer.host));
}

}  // namespace ringcache::replication
