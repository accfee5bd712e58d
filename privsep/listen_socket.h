// Creating a bound, listening TCP socket for one address and port.
//
// This is the only thing ringcached-privsep needs root for (ports below
// 1024). The address must be a numeric IPv4 or IPv6 literal: the helper never
// resolves names while it is root.
#pragma once

#include <cstdint>
#include <string>

namespace ringcache::privsep {

// The kernel clamps this to net.core.somaxconn.
inline constexpr int listen_backlog_connections = 4096;

enum class listen_status {
  ok,
  invalid_address,    // not a numeric IPv4/IPv6 literal
  address_in_use,     // EADDRINUSE: another socket already listens there
  permission_denied,  // EACCES: a privileged port without the privilege
  address_unavailable,// EADDRNOTAVAIL: no local interface has this address
  system_error,       // socket/setsockopt/bind/listen failed otherwise
};

struct listen_result {
  listen_status status;
  int fd;            // the listening socket (SOCK_CLOEXEC) when status == ok, else -1
  int error_number;  // errno behind a failed call, else 0
  std::uint16_t bound_port;  // the port actually bound (differs when port 0 was asked)
};

listen_result open_listen_socket(const std::string& address, std::uint16_t port);

// "ADDR:PORT" or "[ADDR]:PORT" for IPv6, for log lines.
std::string format_endpoint(const std::string& address, std::uint16_t port);

}  // namespace ringcache::privsep
