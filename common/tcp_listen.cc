#include "common/tcp_listen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

namespace ringcache {
namespace {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

bool parse_numeric_address(const std::string& address, uint16_t port, SocketAddress& out) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
  } else {
    return false;
  }
  return true;
}

uint16_t port_of(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  assert(address.ss_family == AF_INET6);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
}

BindStatus status_of_bind_error(int error_number) {
  switch (error_number) {
    case EADDRINUSE: return BindStatus::address_in_use;
    case EACCES: return BindStatus::permission_denied;
    case EADDRNOTAVAIL: return BindStatus::address_unavailable;
    default: return BindStatus::system_error;
  }
}

BindResult failure(BindStatus status, int fd, int error_number) {
  assert(status != BindStatus::ok);
  if (fd >= 0) close(fd);
  return BindResult{status, -1, error_number, 0};
}

}  // namespace

BindResult bind_listening_socket(const std::string& address, uint16_t port) {
  SocketAddress where;
  if (!parse_numeric_address(address, port, where)) return failure(BindStatus::invalid_address, -1, 0);
  const int fd = socket(where.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return failure(BindStatus::system_error, -1, errno);

  // SO_REUSEADDR lets a restarted daemon bind while old connections sit in
  // TIME_WAIT; it does not allow two listeners on one port (still EADDRINUSE).
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return failure(BindStatus::system_error, fd, errno);
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&where.storage), where.length) != 0 ||
      listen(fd, listen_backlog_connections) != 0) {
    const int error_number = errno;
    return failure(status_of_bind_error(error_number), fd, error_number);
  }

  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    return failure(BindStatus::system_error, fd, errno);
  }
  const uint16_t bound_port = port_of(bound);
  assert(bound_port != 0);
  assert(!(port != 0 && bound_port != port));
  return BindResult{BindStatus::ok, fd, 0, bound_port};
}

std::string bind_failure_text(const BindResult& result) {
  assert(result.status != BindStatus::ok);
  if (result.status == BindStatus::invalid_address) return "invalid address";
  return std::strerror(result.error_number);
}

std::string format_endpoint(const std::string& address, uint16_t port) {
  const bool is_ipv6 = address.find(':') != std::string::npos;
  return (is_ipv6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

}  // namespace ringcache
