// Where the listening sockets come from, in order of precedence:
//   1. systemd socket activation (LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES; names
//      "binary" and "text"; a single unnamed socket is the binary port);
//   2. --listen-fd / --text-listen-fd (privsep and tests hand over sockets);
//   3. otherwise the daemon binds -l ADDR : -p PORT itself, and -l ADDR :
//      --text-port PORT for the memcached text protocol unless it is 0 (off).
// Each port has exactly one listening socket; the accepting worker hands
// connections to the others (acceptor.h), which keeps the spread even with a
// single inherited socket.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/non_copyable.h"
#include "common/tcp_listen.h"
#include "server/options.h"

namespace ringcache::server {

enum class ListenerKind : uint8_t { binary, text };

enum class ListenerOrigin : uint8_t { bound, inherited, systemd };

struct Listener {
  int fd = -1;
  ListenerKind kind = ListenerKind::binary;
  ListenerOrigin origin = ListenerOrigin::bound;
  std::string address;  // "127.0.0.1:8889", "[::1]:8889" or "unix:/path"
};

enum class ListenStatus : uint8_t {
  ok,
  bad_option,  // an fd option or the systemd environment is wrong: exit 2
  failed,      // binding failed (address in use, permission): exit 1
};

struct ListenResult {
  ListenStatus status = ListenStatus::failed;
  std::vector<Listener> listeners;
  std::string error;
};

ListenResult open_listeners(const Options& options);
void close_listeners(std::vector<Listener>& listeners);

// Owns open listening sockets and closes them when it goes, on every path
// out of the daemon. main() declares it before everything that uses the
// sockets, so they close last, once no ring refers to them, and the port is
// free at once.
class ListeningSockets : NonCopyable {
 public:
  explicit ListeningSockets(std::vector<Listener> listeners) : listeners_(std::move(listeners)) {}
  ~ListeningSockets() { close_listeners(listeners_); }

  const std::vector<Listener>& listeners() const { return listeners_; }

 private:
  std::vector<Listener> listeners_;
};

// "ADDR:PORT" ("[V6]:PORT", "unix:PATH") of a socket address, or "?".
std::string describe_address(const sockaddr_storage& storage, socklen_t length);
// "ADDR:PORT" of a socket's own end (getsockname) or of its peer
// (getpeername), or "?" if it cannot be told.
std::string describe_local_address(int fd);
std::string describe_peer_address(int fd);

}  // namespace ringcache::server
