#include "privsep/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>

namespace ringcache::privsep {
namespace {

struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

bool parse_numeric_address(const std::string& address, std::uint16_t port, socket_address& out) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
    out.family = AF_INET;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
    out.family = AF_INET6;
    return true;
  }
  return false;
}

listen_status status_of_bind_error(int error_number) {
  switch (error_number) {
    case EADDRINUSE: return listen_status::address_in_use;
    case EACCES: return listen_status::permission_denied;
    case EADDRNOTAVAIL: return listen_status::address_unavailable;
    default: return listen_status::system_error;
  }
}

listen_result failure(listen_status status, int fd, int error_number) {
  if (fd >= 0) close(fd);
  return listen_result{status, -1, error_number, 0};
}

}  // namespace

listen_result open_listen_socket(const std::string& address, std::uint16_t port) {
  socket_address where;
  if (!parse_numeric_address(address, port, where)) {
    return failure(listen_status::invalid_address, -1, 0);
  }
  const int fd = socket(where.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return failure(listen_status::system_error, -1, errno);

  // SO_REUSEADDR lets a restarted daemon bind while old connections sit in
  // TIME_WAIT; it does not allow two listeners on one port (still EADDRINUSE).
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return failure(listen_status::system_error, fd, errno);
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&where.storage), where.length) != 0) {
    const int error_number = errno;
    return failure(status_of_bind_error(error_number), fd, error_number);
  }
  if (listen(fd, listen_backlog_connections) != 0) {
    const int error_number = errno;
    return failure(status_of_bind_error(error_number), fd, error_number);
  }

  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    return failure(listen_status::system_error, fd, errno);
  }
  const std::uint16_t bound_port =
      where.family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port)
                              : ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  assert(port == 0 || bound_port == port);
  return listen_result{listen_status::ok, fd, 0, bound_port};
}

std::string format_endpoint(const std::string& address, std::uint16_t port) {
  const bool is_ipv6 = address.find(':') != std::string::npos;
  std::string text = is_ipv6 ? "[" + address + "]" : address;
  return text + ":" + std::to_string(port);
}

}  // namespace ringcache::privsep
