// Passing listening sockets between processes over a Unix socket (SCM_RIGHTS).
//
// ringcached-privsep binds the privileged port(s) as root, and its root child
// hands the listening fds to the unprivileged parent with one message:
//
//   payload (8 bytes, host byte order; both ends are the same binary)
//   +----------------+----------------+
//   | magic u32      | fd_count u32   |
//   +----------------+----------------+
//   control: exactly one cmsg, SOL_SOCKET / SCM_RIGHTS, carrying fd_count fds
//
// The receiver is strict, in the manner of OpenSSH's monitor_fdpass.c: the
// payload must be exactly 8 bytes with the right magic and count, the first
// control message must be SCM_RIGHTS at SOL_SOCKET with exactly the expected
// number of fds, nothing may be truncated, and EINTR is retried. On any error
// every fd that did arrive is closed again, so a bad message never leaks a
// socket into the daemon.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace ringcache::privsep {

// One binary and one text listening socket and the TLS key file at most.
inline constexpr std::size_t fds_per_message_max = 3;

inline constexpr std::uint32_t fd_message_magic = 0x52434650;  // "RCFP"

struct fd_message_header {
  std::uint32_t magic;
  std::uint32_t fd_count;
};
static_assert(sizeof(fd_message_header) == 8, "wire size of the fd message payload");

// describe()'s table (fd_pass.cc) lists a text per status in this order.
enum class fd_pass_status {
  ok,
  peer_closed,           // EOF before any byte arrived
  timed_out,             // SO_RCVTIMEO expired (EAGAIN/EWOULDBLOCK)
  short_payload,         // payload is not exactly sizeof(fd_message_header)
  bad_magic,             // payload is not ours
  payload_count_mismatch,// payload announces a different fd count than expected
  no_control_message,    // no SCM_RIGHTS data at all
  wrong_control_level,   // cmsg_level is not SOL_SOCKET
  wrong_control_type,    // cmsg_type is not SCM_RIGHTS
  wrong_fd_count,        // SCM_RIGHTS carried a different number of fds
  extra_control_message, // a second control message followed the first
  control_truncated,     // MSG_CTRUNC: the kernel dropped fds that did not fit
  payload_truncated,     // MSG_TRUNC: a datagram longer than the header
  invalid_argument,      // caller asked for 0 or more than fds_per_message_max fds
  system_error,          // sendmsg/recvmsg failed; see error_number
};

// A human-readable reason, for error messages.
const char* describe(fd_pass_status status);

struct send_result {
  fd_pass_status status;
  int error_number;  // errno when status == system_error, else 0
};

struct receive_result {
  fd_pass_status status;
  int error_number;  // errno when status == system_error, else 0
  std::array<int, fds_per_message_max> fds;  // valid only when status == ok
  std::size_t fd_count;
};

// Sends fds (1..fds_per_message_max) in one message. MSG_NOSIGNAL: a vanished
// peer is an error status, not a SIGPIPE.
send_result send_fds(int socket_fd, std::span<const int> fds);

// Receives exactly expected_count fds (1..fds_per_message_max). Received fds
// carry FD_CLOEXEC (MSG_CMSG_CLOEXEC); the caller clears it on the ones it
// deliberately hands to an exec'd program.
receive_result receive_fds(int socket_fd, std::size_t expected_count);

}  // namespace ringcache::privsep
