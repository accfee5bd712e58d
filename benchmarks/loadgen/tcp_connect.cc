#include "tcp_connect.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "monotonic_clock.h"

namespace ringcache::loadgen {

bool resolve_address(const std::string& host, std::uint16_t port, resolved_address& out,
                     std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int status = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (status != 0) {
    error = "cannot resolve '" + host + "': " + gai_strerror(status);
    return false;
  }
  std::memcpy(&out.address, found->ai_addr, found->ai_addrlen);
  out.length = found->ai_addrlen;
  freeaddrinfo(found);
  char numeric[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&out.address), out.length, numeric,
                  sizeof numeric, nullptr, 0, NI_NUMERICHOST) != 0) {
    std::strcpy(numeric, host.c_str());
  }
  // Built by appends: g++ 12 reports a false -Wrestrict on "[" + string.
  const bool bracketed = out.address.ss_family == AF_INET6;
  out.name.clear();
  if (bracketed) out.name.push_back('[');
  out.name.append(numeric);
  if (bracketed) out.name.push_back(']');
  out.name.push_back(':');
  out.name.append(service);
  return true;
}

int connect_tcp(const resolved_address& peer, std::string& error) {
  const int fd = socket(peer.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const int enable = 1;
  // Small pipelined requests must leave at once, not wait for Nagle.
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof enable) != 0) {
    error = std::string("TCP_NODELAY: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&peer.address), peer.length) != 0 &&
      errno != EINPROGRESS) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  const std::uint64_t deadline_ns =
      monotonic_ns() + static_cast<std::uint64_t>(connect_timeout_ms) * 1'000'000;
  for (;;) {
    pollfd watch{fd, POLLOUT, 0};
    const std::uint64_t now = monotonic_ns();
    if (now >= deadline_ns) {
      error = "timed out after " + std::to_string(connect_timeout_ms) + " ms";
      ::close(fd);
      return -1;
    }
    const int ready = poll(&watch, 1, static_cast<int>((deadline_ns - now) / 1'000'000 + 1));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      error = std::string("poll: ") + std::strerror(errno);
      ::close(fd);
      return -1;
    }
    if (ready == 0) continue;
    int socket_error = 0;
    socklen_t length = sizeof socket_error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &socket_error, &length) != 0) socket_error = errno;
    if (socket_error != 0) {
      error = std::strerror(socket_error);
      ::close(fd);
      return -1;
    }
    return fd;
  }
}

}  // namespace ringcache::loadgen
