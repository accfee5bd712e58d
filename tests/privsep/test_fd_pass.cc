// fd passing over a socketpair: the good message and each way a message can
// be wrong. Every rejection must also close whatever fds did arrive.
#include <doctest/doctest.h>

#include "common/non_copyable.h"
#include "privsep/fd_pass.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using namespace ringcache::privsep;

constexpr int receive_timeout_ms = 2000;  // bounds every test that waits
constexpr std::size_t raw_fds_max = 32;   // what send_raw can put in one message

struct socket_pair : ringcache::NonCopyable {
  int sender = -1;
  int receiver = -1;

  explicit socket_pair(int type = SOCK_SEQPACKET) {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
    sender = fds[0];
    receiver = fds[1];
    const timeval timeout{receive_timeout_ms / 1000, (receive_timeout_ms % 1000) * 1000};
    REQUIRE(setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0);
  }
  ~socket_pair() {
    if (sender >= 0) close(sender);
    if (receiver >= 0) close(receiver);
  }
};

// A pipe gives two distinct, recognisable fds to pass.
struct pipe_fds : ringcache::NonCopyable {
  std::array<int, 2> fds{-1, -1};
  pipe_fds() { REQUIRE(pipe2(fds.data(), O_CLOEXEC) == 0); }
  ~pipe_fds() {
    for (int fd : fds) close(fd);
  }
};

std::size_t open_fd_count() {
  std::size_t count = 0;
  DIR* dir = opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

bool same_file(int a, int b) {
  struct stat sa {};
  struct stat sb {};
  REQUIRE(fstat(a, &sa) == 0);
  REQUIRE(fstat(b, &sb) == 0);
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Sends an arbitrary payload with an arbitrary number of fds, the way a buggy
// or hostile sender would, bypassing send_fds' own checks.
void send_raw(int socket_fd, const void* payload, std::size_t payload_bytes, const std::vector<int>& fds) {
  iovec iov{const_cast<void*>(payload), payload_bytes};
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * raw_fds_max)] = {};
  REQUIRE(fds.size() <= raw_fds_max);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  REQUIRE(sendmsg(socket_fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(payload_bytes));
}

void send_header(int socket_fd, std::uint32_t magic, std::uint32_t count, const std::vector<int>& fds) {
  const fd_message_header header{magic, count};
  send_raw(socket_fd, &header, sizeof header, fds);
}

void check_rejected(int receiver, std::size_t expected, fd_pass_status status, std::size_t fds_before) {
  const receive_result result = receive_fds(receiver, expected);
  CHECK(result.status == status);
  CHECK(result.fd_count == 0);
  CHECK(result.fds[0] == -1);
  CHECK(open_fd_count() == fds_before);  // nothing leaked from the bad message
}

std::atomic<int> interrupts_seen{0};
void count_interrupt(int) { interrupts_seen.fetch_add(1); }

}  // namespace

TEST_CASE("good message: one fd arrives, refers to the same file, is close-on-exec") {
  for (int type : {SOCK_SEQPACKET, SOCK_STREAM}) {
    socket_pair pair(type);
    pipe_fds pipe;
    const int to_send = pipe.fds[0];
    REQUIRE(send_fds(pair.sender, std::span<const int>(&to_send, 1)).status == fd_pass_status::ok);
    const receive_result result = receive_fds(pair.receiver, 1);
    REQUIRE(result.status == fd_pass_status::ok);
    REQUIRE(result.fd_count == 1);
    CHECK(result.fds[0] != to_send);
    CHECK(same_file(result.fds[0], to_send));
    CHECK((fcntl(result.fds[0], F_GETFD) & FD_CLOEXEC) != 0);
    close(result.fds[0]);
  }
}

TEST_CASE("good message: two fds arrive in order") {
  socket_pair pair;
  pipe_fds pipe;
  REQUIRE(send_fds(pair.sender, pipe.fds).status == fd_pass_status::ok);
  const receive_result result = receive_fds(pair.receiver, 2);
  REQUIRE(result.status == fd_pass_status::ok);
  REQUIRE(result.fd_count == 2);
  CHECK(same_file(result.fds[0], pipe.fds[0]));
  CHECK(same_file(result.fds[1], pipe.fds[1]));
  close(result.fds[0]);
  close(result.fds[1]);
}

TEST_CASE("good message: two sockets and a key file arrive in order (ringcached-privsep --tls-key)") {
  socket_pair pair;
  pipe_fds pipe;
  FILE* key = std::tmpfile();
  REQUIRE(key != nullptr);
  const std::array<int, 3> sent{pipe.fds[0], pipe.fds[1], fileno(key)};
  REQUIRE(send_fds(pair.sender, sent).status == fd_pass_status::ok);
  const receive_result result = receive_fds(pair.receiver, 3);
  REQUIRE(result.status == fd_pass_status::ok);
  REQUIRE(result.fd_count == 3);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    CHECK(same_file(result.fds[i], sent[i]));
    close(result.fds[i]);
  }
  std::fclose(key);
}

TEST_CASE("missing control message is rejected") {
  socket_pair pair;
  const std::size_t before = open_fd_count();
  send_header(pair.sender, fd_message_magic, 1, {});
  check_rejected(pair.receiver, 1, fd_pass_status::no_control_message, before);
}

TEST_CASE("wrong control message type (SCM_CREDENTIALS) is rejected and the fds closed") {
  socket_pair pair;
  const int on = 1;
  REQUIRE(setsockopt(pair.receiver, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
  const std::size_t before = open_fd_count();

  SUBCASE("credentials alone") { send_header(pair.sender, fd_message_magic, 1, {}); }
  SUBCASE("credentials ahead of the fds") {
    pipe_fds pipe;
    send_header(pair.sender, fd_message_magic, 1, {pipe.fds[0]});
  }
  check_rejected(pair.receiver, 1, fd_pass_status::wrong_control_type, before);
}

TEST_CASE("two fds when one is expected are rejected and both closed") {
  socket_pair pair;
  pipe_fds pipe;
  const std::size_t before = open_fd_count();
  REQUIRE(send_fds(pair.sender, pipe.fds).status == fd_pass_status::ok);
  check_rejected(pair.receiver, 1, fd_pass_status::wrong_fd_count, before);
}

TEST_CASE("one fd when two are expected is rejected") {
  socket_pair pair;
  pipe_fds pipe;
  const std::size_t before = open_fd_count();
  send_header(pair.sender, fd_message_magic, 2, {pipe.fds[0]});
  check_rejected(pair.receiver, 2, fd_pass_status::wrong_fd_count, before);
}

TEST_CASE("more fds than any message may carry are rejected and closed") {
  socket_pair pair;
  pipe_fds first;
  pipe_fds second;
  const std::size_t before = open_fd_count();
  SUBCASE("one more than the maximum: precise count error") {
    send_header(pair.sender, fd_message_magic, 3, {first.fds[0], first.fds[1], second.fds[0]});
    check_rejected(pair.receiver, 2, fd_pass_status::wrong_fd_count, before);
  }
  SUBCASE("far more: the kernel truncates the control data") {
    std::vector<int> many;
    for (std::size_t i = 0; i < raw_fds_max; ++i) many.push_back(first.fds[i % 2]);
    send_header(pair.sender, fd_message_magic, raw_fds_max, many);
    check_rejected(pair.receiver, 2, fd_pass_status::control_truncated, before);
  }
}

TEST_CASE("payload must be exactly the header") {
  socket_pair pair;
  pipe_fds pipe;
  const std::size_t before = open_fd_count();
  SUBCASE("short") {
    const std::uint32_t magic_only = fd_message_magic;
    send_raw(pair.sender, &magic_only, sizeof magic_only, {pipe.fds[0]});
    check_rejected(pair.receiver, 1, fd_pass_status::short_payload, before);
  }
  SUBCASE("one byte long") {
    std::array<unsigned char, sizeof(fd_message_header) + 1> long_payload{};
    const fd_message_header header{fd_message_magic, 1};
    std::memcpy(long_payload.data(), &header, sizeof header);
    send_raw(pair.sender, long_payload.data(), long_payload.size(), {pipe.fds[0]});
    check_rejected(pair.receiver, 1, fd_pass_status::short_payload, before);
  }
  SUBCASE("a longer datagram is cut by the kernel") {
    std::array<unsigned char, 64> long_payload{};
    send_raw(pair.sender, long_payload.data(), long_payload.size(), {pipe.fds[0]});
    check_rejected(pair.receiver, 1, fd_pass_status::payload_truncated, before);
  }
  SUBCASE("wrong magic") {
    send_header(pair.sender, 0xdeadbeef, 1, {pipe.fds[0]});
    check_rejected(pair.receiver, 1, fd_pass_status::bad_magic, before);
  }
  SUBCASE("announced count disagrees") {
    send_header(pair.sender, fd_message_magic, 2, {pipe.fds[0]});
    check_rejected(pair.receiver, 1, fd_pass_status::payload_count_mismatch, before);
  }
}

TEST_CASE("peer closing first is reported, not mistaken for a message") {
  socket_pair pair;
  close(pair.sender);
  pair.sender = -1;
  const std::size_t before = open_fd_count();
  check_rejected(pair.receiver, 1, fd_pass_status::peer_closed, before);
}

TEST_CASE("a silent peer times out") {
  socket_pair pair;
  const timeval short_timeout{0, 50 * 1000};
  REQUIRE(setsockopt(pair.receiver, SOL_SOCKET, SO_RCVTIMEO, &short_timeout, sizeof short_timeout) == 0);
  const std::size_t before = open_fd_count();
  check_rejected(pair.receiver, 1, fd_pass_status::timed_out, before);
}

TEST_CASE("EINTR during recvmsg is retried") {
  struct sigaction action {};
  action.sa_handler = count_interrupt;
  action.sa_flags = 0;  // no SA_RESTART: recvmsg really returns EINTR
  struct sigaction previous {};
  REQUIRE(sigaction(SIGUSR1, &action, &previous) == 0);
  interrupts_seen = 0;

  socket_pair pair;
  pipe_fds pipe;
  const pthread_t receiver_thread = pthread_self();
  std::thread sender([&] {
    using namespace std::chrono_literals;
    std::this_thread::sleep_for(100ms);
    pthread_kill(receiver_thread, SIGUSR1);
    std::this_thread::sleep_for(100ms);
    const int to_send = pipe.fds[0];
    send_fds(pair.sender, std::span<const int>(&to_send, 1));
  });
  const receive_result result = receive_fds(pair.receiver, 1);
  sender.join();
  REQUIRE(sigaction(SIGUSR1, &previous, nullptr) == 0);

  CHECK(interrupts_seen.load() == 1);
  REQUIRE(result.status == fd_pass_status::ok);
  CHECK(same_file(result.fds[0], pipe.fds[0]));
  close(result.fds[0]);
}

TEST_CASE("fd counts outside 1..fds_per_message_max are refused on both ends") {
  socket_pair pair;
  pipe_fds pipe;
  CHECK(send_fds(pair.sender, std::span<const int>()).status == fd_pass_status::invalid_argument);
  std::array<int, fds_per_message_max + 1> too_many{};
  too_many.fill(pipe.fds[0]);
  CHECK(send_fds(pair.sender, too_many).status == fd_pass_status::invalid_argument);
  CHECK(receive_fds(pair.receiver, 0).status == fd_pass_status::invalid_argument);
  CHECK(receive_fds(pair.receiver, fds_per_message_max + 1).status == fd_pass_status::invalid_argument);
}

TEST_CASE("sending to a closed peer is an error status, not SIGPIPE") {
  socket_pair pair;
  close(pair.receiver);
  pair.receiver = -1;
  pipe_fds pipe;
  const int to_send = pipe.fds[0];
  const send_result result = send_fds(pair.sender, std::span<const int>(&to_send, 1));
  CHECK(result.status == fd_pass_status::system_error);
  CHECK(result.error_number == EPIPE);
}

TEST_CASE("every status has a description") {
  for (int s = static_cast<int>(fd_pass_status::ok); s <= static_cast<int>(fd_pass_status::system_error); ++s) {
    CHECK(std::strlen(describe(static_cast<fd_pass_status>(s))) > 0);
  }
}
