// Binding a listening TCP socket to one numeric address and port: the one way
// both the daemon (server/listen_sockets.cc, -l and -p) and the privileged
// helper (privsep/main.cc, port 889) do it, so they share the options, the
// backlog and the classification of what went wrong.
//
// The address must be a numeric IPv4 or IPv6 literal: nothing here resolves
// names, since the helper calls it as root.
#pragma once

#include <cstdint>
#include <string>

namespace ringcache {

// The kernel clamps this to net.core.somaxconn.
inline constexpr int listen_backlog_connections = 4096;

enum class BindStatus : uint8_t {
  ok,
  invalid_address,      // not a numeric IPv4/IPv6 literal
  address_in_use,       // EADDRINUSE: another socket already listens there
  permission_denied,    // EACCES: a privileged port without the privilege
  address_unavailable,  // EADDRNOTAVAIL: no local interface has this address
  system_error,         // socket/setsockopt/bind/listen failed otherwise
};

struct BindResult {
  BindStatus status = BindStatus::system_error;
  int fd = -1;               // the listening socket (SOCK_CLOEXEC) when status == ok, else -1
  int error_number = 0;      // errno behind a failed call, else 0
  uint16_t bound_port = 0;   // the port actually bound (differs when port 0 was asked)
};

BindResult bind_listening_socket(const std::string& address, uint16_t port);

// Why a bind failed, for a log line: "invalid address" or the system's words
// for its errno.
std::string bind_failure_text(const BindResult& result);

// "ADDR:PORT", or "[ADDR]:PORT" for IPv6, for log lines.
std::string format_endpoint(const std::string& address, uint16_t port);

}  // namespace ringcache
