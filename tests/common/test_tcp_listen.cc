// Listening sockets as the daemon and the helper create them, on loopback and port 0.
#include <doctest/doctest.h>

#include "common/tcp_listen.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace {

using namespace ringcache;

bool is_listening(int fd) {
  int accepting = 0;
  socklen_t length = sizeof accepting;
  return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting == 1;
}

}  // namespace

TEST_CASE("127.0.0.1 port 0: listening, close-on-exec, reports the port it got") {
  const BindResult r = bind_listening_socket("127.0.0.1", 0);
  REQUIRE(r.status == BindStatus::ok);
  CHECK(r.fd >= 0);
  CHECK(r.bound_port != 0);
  CHECK(is_listening(r.fd));
  CHECK((fcntl(r.fd, F_GETFD) & FD_CLOEXEC) != 0);
  close(r.fd);
}

TEST_CASE("a port somebody listens on is reported as in use") {
  const BindResult first = bind_listening_socket("127.0.0.1", 0);
  REQUIRE(first.status == BindStatus::ok);
  const BindResult second = bind_listening_socket("127.0.0.1", first.bound_port);
  CHECK(second.status == BindStatus::address_in_use);
  CHECK(second.error_number == EADDRINUSE);
  CHECK(second.fd == -1);
  CHECK(bind_failure_text(second) == "Address already in use");
  close(first.fd);
}

TEST_CASE("only numeric addresses are accepted") {
  for (const char* bad : {"localhost", "", "127.0.0.256", "1.2.3", "::g", "[::1]"}) {
    CAPTURE(bad);
    const BindResult r = bind_listening_socket(bad, 0);
    CHECK(r.status == BindStatus::invalid_address);
    CHECK(r.fd == -1);
    CHECK(bind_failure_text(r) == "invalid address");
  }
}

TEST_CASE("an address no interface has is reported as unavailable") {
  const BindResult r = bind_listening_socket("192.0.2.1", 0);  // TEST-NET-1
  CHECK(r.status == BindStatus::address_unavailable);
}

TEST_CASE("IPv6 loopback, where the machine has it") {
  const BindResult r = bind_listening_socket("::1", 0);
  if (r.status == BindStatus::address_unavailable || r.error_number == EAFNOSUPPORT) {
    MESSAGE("no IPv6 loopback here");
    return;
  }
  REQUIRE(r.status == BindStatus::ok);
  CHECK(is_listening(r.fd));
  close(r.fd);
}

TEST_CASE("endpoints format like the daemon's log line") {
  CHECK(format_endpoint("0.0.0.0", 889) == "0.0.0.0:889");
  CHECK(format_endpoint("::1", 889) == "[::1]:889");
}
