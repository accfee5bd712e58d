#include "server/listen_sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace ringcache::server {
namespace {

// sd_listen_fds(3): passed descriptors start at 3.
constexpr int systemd_first_fd = 3;
constexpr int systemd_fds_max = 16;

std::string errno_text(int err) { return std::strerror(err); }

// Empty when fd is a listening stream socket, otherwise what is wrong.
std::string check_listening_socket(int fd) {
  if (::fcntl(fd, F_GETFD) < 0) return "not an open file descriptor";
  int type = 0;
  socklen_t length = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
    return errno == ENOTSOCK ? "not a socket" : "getsockopt: " + errno_text(errno);
  }
  if (type != SOCK_STREAM) return "not a stream socket";
  int listening = 0;
  length = sizeof(listening);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0) {
    return "getsockopt: " + errno_text(errno);
  }
  if (listening == 0) return "not a listening socket (listen() was not called)";
  return {};
}

bool parse_int(std::string_view text, int& value) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return !text.empty() && ec == std::errc() && ptr == end;
}

std::vector<std::string> split_names(const char* names) {
  std::vector<std::string> out;
  if (names == nullptr) return out;
  std::string_view rest = names;
  while (true) {
    const size_t colon = rest.find(':');
    out.emplace_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return out;
}

// Appends the systemd sockets; returns false with result.error set.
bool take_systemd_sockets(ListenResult& result) {
  const char* pid_text = std::getenv("LISTEN_PID");
  const char* count_text = std::getenv("LISTEN_FDS");
  if (pid_text == nullptr || count_text == nullptr) return true;
  int pid = 0;
  int count = 0;
  if (!parse_int(pid_text, pid) || pid != ::getpid()) return true;  // meant for another process
  if (!parse_int(count_text, count) || count < 1 || count > systemd_fds_max) {
    result.error = std::string("LISTEN_FDS=") + count_text + ": expected 1-" +
                   std::to_string(systemd_fds_max) + " sockets";
    return false;
  }
  const std::vector<std::string> names = split_names(std::getenv("LISTEN_FDNAMES"));
  for (int i = 0; i < count; ++i) {
    Listener listener;
    listener.fd = systemd_first_fd + i;
    listener.origin = ListenerOrigin::systemd;
    const std::string name = i < static_cast<int>(names.size()) ? names[i] : std::string();
    if (name == "binary") {
      listener.kind = ListenerKind::binary;
    } else if (name == "text") {
      listener.kind = ListenerKind::text;
    } else if (count == 1) {
      listener.kind = ListenerKind::binary;
    } else {
      result.error = "systemd socket " + std::to_string(listener.fd) + " is named '" + name +
                     "': with several sockets each needs FileDescriptorName=binary or text";
      return false;
    }
    if (const std::string problem = check_listening_socket(listener.fd); !problem.empty()) {
      result.error = "systemd socket " + std::to_string(listener.fd) + ": " + problem;
      return false;
    }
    (void)::fcntl(listener.fd, F_SETFD, FD_CLOEXEC);
    result.listeners.push_back(std::move(listener));
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return true;
}

bool take_inherited_socket(int fd, ListenerKind kind, const char* option, ListenResult& result) {
  if (fd < 0) return true;
  for (const Listener& listener : result.listeners) {
    if (listener.kind == kind) return true;  // systemd's socket wins
  }
  if (const std::string problem = check_listening_socket(fd); !problem.empty()) {
    result.error = std::string(option) + " " + std::to_string(fd) + ": " + problem;
    return false;
  }
  (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
  Listener listener;
  listener.fd = fd;
  listener.kind = kind;
  listener.origin = ListenerOrigin::inherited;
  result.listeners.push_back(std::move(listener));
  return true;
}

int bind_listener(const std::string& address, uint16_t port, std::string& error) {
  const BindResult bound = bind_listening_socket(address, port);
  if (bound.status != BindStatus::ok) {
    error = "cannot listen on " + format_endpoint(address, port) + ": " + bind_failure_text(bound);
    return -1;
  }
  return bound.fd;
}

}  // namespace

std::string describe_address(const sockaddr_storage& storage, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (storage.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  if (storage.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
    const size_t path_bytes = length > offsetof(sockaddr_un, sun_path)
                                  ? strnlen(un->sun_path, length - offsetof(sockaddr_un, sun_path))
                                  : 0;
    return "unix:" + std::string(un->sun_path, path_bytes);
  }
  return "?";
}

std::string describe_local_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return "?";
  return describe_address(storage, length);
}

std::string describe_peer_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return "?";
  return describe_address(storage, length);
}

ListenResult open_listeners(const Options& options) {
  ListenResult result;
  if (!take_systemd_sockets(result) ||
      !take_inherited_socket(options.listen_fd, ListenerKind::binary, "--listen-fd", result) ||
      !take_inherited_socket(options.text_listen_fd, ListenerKind::text, "--text-listen-fd", result)) {
    result.status = ListenStatus::bad_option;
    return result;
  }
  bool have_binary = false;
  bool have_text = false;
  for (const Listener& listener : result.listeners) {
    have_binary |= listener.kind == ListenerKind::binary;
    have_text |= listener.kind == ListenerKind::text;
  }
  const auto bind_port = [&](ListenerKind kind, uint16_t port) {
    Listener listener;
    listener.fd = bind_listener(options.listen_address, port, result.error);
    if (listener.fd < 0) return false;
    listener.kind = kind;
    listener.origin = ListenerOrigin::bound;
    result.listeners.push_back(std::move(listener));
    return true;
  };
  if ((!have_binary && !bind_port(ListenerKind::binary, options.port)) ||
      (!have_text && options.text_port != 0 && !bind_port(ListenerKind::text, options.text_port))) {
    result.status = ListenStatus::failed;
    close_listeners(result.listeners);
    return result;
  }
  for (Listener& listener : result.listeners) listener.address = describe_local_address(listener.fd);
  result.status = ListenStatus::ok;
  return result;
}

void close_listeners(std::vector<Listener>& listeners) {
  for (Listener& listener : listeners) {
    if (listener.fd >= 0) ::close(listener.fd);
    listener.fd = -1;
  }
}

}  // namespace ringcache::server
