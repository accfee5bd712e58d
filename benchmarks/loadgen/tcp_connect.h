// Resolving the server and opening the load's connections, with a bounded
// wait so that an unreachable host ends the run instead of hanging it.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace ringcache::loadgen {

inline constexpr int connect_timeout_ms = 5000;

struct resolved_address {
  sockaddr_storage address{};
  socklen_t length = 0;
  std::string name;  // numeric "HOST:PORT" for messages
};

// Returns false with a message in `error` when the host cannot be resolved.
bool resolve_address(const std::string& host, std::uint16_t port, resolved_address& out,
                     std::string& error);

// A connected, non-blocking TCP socket with TCP_NODELAY, or -1 with a message.
int connect_tcp(const resolved_address& peer, std::string& error);

}  // namespace ringcache::loadgen
