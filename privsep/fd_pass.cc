#include "privsep/fd_pass.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

#include "privsep/status_text.h"

namespace ringcache::privsep {
namespace {

// Room for one fd more than we ever accept plus one foreign control message
// (SCM_CREDENTIALS when the socket has SO_PASSCRED): both then arrive whole
// and get a precise diagnosis instead of a bare MSG_CTRUNC.
constexpr std::size_t control_buffer_bytes =
    CMSG_SPACE(sizeof(int) * (fds_per_message_max + 1)) + CMSG_SPACE(sizeof(struct ucred));

constexpr std::size_t received_fds_max = control_buffer_bytes / sizeof(int);

// One text per fd_pass_status, in the enum's order (fd_pass.h).
constexpr const char* fd_pass_status_texts[] = {
    "ok",
    "peer closed the socket before sending the fds",
    "timed out waiting for the fds",
    "message payload has the wrong length",
    "message payload has the wrong magic number",
    "message payload announces an unexpected number of fds",
    "message carries no control message (no fds)",
    "control message level is not SOL_SOCKET",
    "control message type is not SCM_RIGHTS",
    "control message carries an unexpected number of fds",
    "message carries more than one control message",
    "control message was truncated (MSG_CTRUNC)",
    "message payload was truncated (MSG_TRUNC)",
    "fd count out of range",
    "system call failed",
};

// Every fd the kernel installed in this process, whatever the message looked
// like, so that a rejected message can be undone completely.
struct installed_fds {
  std::array<int, received_fds_max> fds{};
  std::size_t count = 0;

  void collect(const msghdr& msg) {
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr;
         cmsg = CMSG_NXTHDR(const_cast<msghdr*>(&msg), cmsg)) {
      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char* data = CMSG_DATA(cmsg);
      for (std::size_t i = 0; i < n && count < fds.size(); ++i) {
        std::memcpy(&fds[count], data + i * sizeof(int), sizeof(int));
        ++count;
      }
    }
  }

  void close_all() {
    for (std::size_t i = 0; i < count; ++i) close(fds[i]);
    count = 0;
  }
};

std::array<int, fds_per_message_max> no_fds() {
  std::array<int, fds_per_message_max> fds{};
  fds.fill(-1);
  return fds;
}

receive_result failure(fd_pass_status status, installed_fds& installed, int error_number = 0) {
  installed.close_all();
  return receive_result{status, error_number, no_fds(), 0};
}

}  // namespace

const char* describe(fd_pass_status status) {
  return status_text<fd_pass_status::system_error>(fd_pass_status_texts, status, "unknown fd_pass_status");
}

send_result send_fds(int socket_fd, std::span<const int> fds) {
  if (fds.empty() || fds.size() > fds_per_message_max) {
    return send_result{fd_pass_status::invalid_argument, 0};
  }
  fd_message_header header{fd_message_magic, static_cast<std::uint32_t>(fds.size())};
  iovec iov{&header, sizeof header};

  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * fds_per_message_max)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  assert(cmsg != nullptr);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());

  ssize_t sent;
  do {
    sent = sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return send_result{fd_pass_status::system_error, errno};
  if (static_cast<std::size_t>(sent) != sizeof header) {
    return send_result{fd_pass_status::short_payload, 0};
  }
  return send_result{fd_pass_status::ok, 0};
}

receive_result receive_fds(int socket_fd, std::size_t expected_count) {
  installed_fds installed;
  if (expected_count == 0 || expected_count > fds_per_message_max) {
    return failure(fd_pass_status::invalid_argument, installed);
  }

  // One spare byte: on a stream socket a longer payload shows up as a byte
  // count above the header size rather than as data silently left unread.
  fd_message_header header{};
  unsigned char spare = 0;
  iovec iov[2] = {{&header, sizeof header}, {&spare, 1}};
  alignas(cmsghdr) unsigned char control[control_buffer_bytes] = {};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;

  ssize_t received;
  do {
    received = recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
  } while (received < 0 && errno == EINTR);
  if (received < 0) {
    const int error_number = errno;
    if (error_number == EAGAIN || error_number == EWOULDBLOCK) {
      return failure(fd_pass_status::timed_out, installed);
    }
    return failure(fd_pass_status::system_error, installed, error_number);
  }
  installed.collect(msg);

  if (received == 0 && msg.msg_controllen == 0) {
    return failure(fd_pass_status::peer_closed, installed);
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) return failure(fd_pass_status::control_truncated, installed);
  if ((msg.msg_flags & MSG_TRUNC) != 0) return failure(fd_pass_status::payload_truncated, installed);

  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == nullptr) return failure(fd_pass_status::no_control_message, installed);
  if (cmsg->cmsg_level != SOL_SOCKET) return failure(fd_pass_status::wrong_control_level, installed);
  if (cmsg->cmsg_type != SCM_RIGHTS) return failure(fd_pass_status::wrong_control_type, installed);
  if (CMSG_NXTHDR(&msg, cmsg) != nullptr) {
    return failure(fd_pass_status::extra_control_message, installed);
  }
  if (cmsg->cmsg_len != CMSG_LEN(sizeof(int) * expected_count)) {
    return failure(fd_pass_status::wrong_fd_count, installed);
  }
  if (static_cast<std::size_t>(received) != sizeof header) {
    return failure(fd_pass_status::short_payload, installed);
  }
  if (header.magic != fd_message_magic) return failure(fd_pass_status::bad_magic, installed);
  if (header.fd_count != expected_count) {
    return failure(fd_pass_status::payload_count_mismatch, installed);
  }

  assert(installed.count == expected_count);
  receive_result result{fd_pass_status::ok, 0, no_fds(), expected_count};
  for (std::size_t i = 0; i < expected_count; ++i) {
    assert(installed.fds[i] >= 0);
    result.fds[i] = installed.fds[i];
  }
  return result;
}

}  // namespace ringcache::privsep
