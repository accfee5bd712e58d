// ringcache-echo-server: the smallest server that speaks the binary protocol,
// to measure the load generator's own ceiling. It frames requests and answers
// GET with OK + a 16-byte value, PUT and DEL with OK, STATS with its counters,
// and never stores anything. Not a test double of ringcached: a benchmark tool.
//
// One epoll thread per -t, each with its own SO_REUSEPORT listening socket on
// the same port, so the kernel spreads connections over the threads.
//
//   ringcache-echo-server [-p PORT] [-t THREADS]     (port 0 = ephemeral)
// Prints "listening port=N threads=T" on stdout once it accepts connections.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "binary_codec.h"
#include "common/non_copyable.h"
#include "echo_request_parser.h"
#include "whole_number.h"

namespace ringcache::loadgen::echo {
namespace {

constexpr std::size_t read_buffer_bytes = 64 * 1024;
// Replies owed to a client that does not read: past this, stop reading its
// requests until it catches up.
constexpr std::size_t write_queue_bytes_max = 4 * 1024 * 1024;
constexpr std::size_t reply_value_bytes = 16;
constexpr int listen_backlog = 1024;
constexpr int epoll_events_max = 256;
// How often a thread looks at the stop flag and at a paused accept.
constexpr int epoll_wait_ms = 100;
constexpr unsigned threads_max = 64;

std::atomic<bool> stop_requested{false};

void on_stop_signal(int) { stop_requested.store(true, std::memory_order_relaxed); }

struct echo_connection {
  int fd;
  request_parser parser;
  std::vector<std::byte> out;
  std::size_t out_sent = 0;
  std::uint32_t interest = EPOLLIN;
};

struct thread_counters {
  std::uint64_t puts = 0;
  std::uint64_t dels = 0;
  std::uint64_t gets = 0;
  std::uint64_t stats = 0;
  std::uint64_t invalid = 0;
  std::uint64_t connections = 0;
};

void append_u32_be(std::vector<std::byte>& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::byte>(value >> shift));
  }
}

class echo_thread : NonCopyable {
 public:
  explicit echo_thread(int listen_fd) : listen_fd_(listen_fd), read_buffer_(read_buffer_bytes) {}
  ~echo_thread() {
    for (auto& entry : connections_) ::close(entry->fd);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    ::close(listen_fd_);
  }

  bool start(std::string& error) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event interest{};
    interest.events = EPOLLIN;
    interest.data.ptr = nullptr;  // the listener
    if (epoll_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &interest) != 0) {
      error = std::string("epoll: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  void run() {
    std::vector<epoll_event> events(epoll_events_max);
    while (!stop_requested.load(std::memory_order_relaxed)) {
      if (accept_paused_) resume_accept();
      const int ready = epoll_wait(epoll_fd_, events.data(), epoll_events_max, epoll_wait_ms);
      if (ready < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "echo-server: epoll_wait: %s\n", std::strerror(errno));
        return;
      }
      for (int i = 0; i < ready; ++i) {
        auto* connection = static_cast<echo_connection*>(events[i].data.ptr);
        if (connection == nullptr) {
          accept_all();
          continue;
        }
        bool open = true;
        if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) open = on_readable(*connection);
        if (open && (events[i].events & EPOLLOUT) != 0) open = flush(*connection);
        if (!open) close_connection(connection);
      }
    }
  }

  const thread_counters& counters() const { return counters_; }

 private:
  void accept_all() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Retrying at once would spin on the still-readable listener.
          std::fprintf(stderr, "echo-server: accept: %s; pausing accepts\n", std::strerror(errno));
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
          accept_paused_ = true;
          return;
        }
        std::fprintf(stderr, "echo-server: accept: %s\n", std::strerror(errno));
        return;
      }
      const int enable = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof enable);
      auto connection = std::make_unique<echo_connection>();
      connection->fd = fd;
      epoll_event interest{};
      interest.events = EPOLLIN;
      interest.data.ptr = connection.get();
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &interest) != 0) {
        std::fprintf(stderr, "echo-server: epoll_ctl: %s\n", std::strerror(errno));
        ::close(fd);
        continue;
      }
      ++counters_.connections;
      connections_.push_back(std::move(connection));
    }
  }

  void resume_accept() {
    epoll_event interest{};
    interest.events = EPOLLIN;
    interest.data.ptr = nullptr;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &interest) == 0) accept_paused_ = false;
  }

  void close_connection(echo_connection* connection) {
    ::close(connection->fd);  // also leaves the epoll set
    for (auto& entry : connections_) {
      if (entry.get() == connection) {
        entry = std::move(connections_.back());
        connections_.pop_back();
        return;
      }
    }
  }

  void answer(echo_connection& connection, parsed_request request) {
    std::vector<std::byte>& out = connection.out;
    switch (request) {
      case parsed_request::put:
        ++counters_.puts;
        out.push_back(std::byte{binary_wire::reply_ok});
        return;
      case parsed_request::del:
        ++counters_.dels;
        out.push_back(std::byte{binary_wire::reply_ok});
        return;
      case parsed_request::get:
        ++counters_.gets;
        out.push_back(std::byte{binary_wire::reply_ok});
        append_u32_be(out, reply_value_bytes);
        out.insert(out.end(), reply_value_bytes, std::byte{'v'});
        return;
      case parsed_request::stats: {
        ++counters_.stats;
        const std::string text = "PUTS=" + std::to_string(counters_.puts) +
                                 " DELS=" + std::to_string(counters_.dels) +
                                 " GETS=" + std::to_string(counters_.gets) + " KEYS=0" +
                                 " STATS=" + std::to_string(counters_.stats) +
                                 " INVALID=" + std::to_string(counters_.invalid);
        out.push_back(std::byte{binary_wire::reply_ok});
        append_u32_be(out, static_cast<std::uint32_t>(text.size()));
        const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
        out.insert(out.end(), bytes, bytes + text.size());
        return;
      }
      case parsed_request::unknown_opcode:
        ++counters_.invalid;
        out.push_back(std::byte{binary_wire::reply_einval});
        return;
    }
  }

  // false when the connection is finished (EOF or error).
  bool on_readable(echo_connection& connection) {
    const ssize_t got = ::read(connection.fd, read_buffer_.data(), read_buffer_.size());
    if (got == 0) return false;
    if (got < 0) return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
    std::span<const std::byte> input(read_buffer_.data(), static_cast<std::size_t>(got));
    while (!input.empty()) {
      const parse_step step = connection.parser.parse(input);
      input = input.subspan(step.consumed);
      if (step.complete) answer(connection, step.request);
    }
    return flush(connection);
  }

  bool flush(echo_connection& connection) {
    while (connection.out_sent < connection.out.size()) {
      const ssize_t sent =
          ::send(connection.fd, connection.out.data() + connection.out_sent,
                 connection.out.size() - connection.out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
      }
      connection.out_sent += static_cast<std::size_t>(sent);
    }
    const std::size_t owed = connection.out.size() - connection.out_sent;
    if (owed == 0) {
      connection.out.clear();
      connection.out_sent = 0;
    }
    std::uint32_t interest = owed > write_queue_bytes_max ? 0u : static_cast<std::uint32_t>(EPOLLIN);
    if (owed > 0) interest |= EPOLLOUT;
    if (interest != connection.interest) {
      epoll_event change{};
      change.events = interest;
      change.data.ptr = &connection;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, connection.fd, &change) != 0) return false;
      connection.interest = interest;
    }
    return true;
  }

  int listen_fd_;
  int epoll_fd_ = -1;
  bool accept_paused_ = false;
  std::vector<std::byte> read_buffer_;
  std::vector<std::unique_ptr<echo_connection>> connections_;
  thread_counters counters_;
};

int open_listener(std::uint16_t port, std::string& error) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const int enable = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &enable, sizeof enable);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &enable, sizeof enable);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      listen(fd, listen_backlog) != 0) {
    error = "bind/listen 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t bound_port(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

int run(int argc, char** argv) {
  std::uint16_t port = 8889;
  unsigned threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "-h" || argument == "--help") {
      std::puts("usage: ringcache-echo-server [-p PORT] [-t THREADS]\n"
                "Answers the ringcache binary protocol without storing anything (GET: OK + a\n"
                "16-byte value; PUT, DEL: OK) on 127.0.0.1. PORT 0 picks a free port; the\n"
                "chosen one is printed as 'listening port=N threads=T'. Defaults: 8889, 1.");
      return 0;
    }
    const bool is_port = argument == "-p" || argument == "--port";
    const bool is_threads = argument == "-t" || argument == "--threads";
    if ((!is_port && !is_threads) || i + 1 >= argc) {
      std::fprintf(stderr, "echo-server: bad argument '%s' (see --help)\n", argv[i]);
      return 2;
    }
    const std::string_view value = argv[++i];
    const std::optional<unsigned> number = is_port
                                               ? parse_whole_number<unsigned>(value, 0, 65535)
                                               : parse_whole_number<unsigned>(value, 1, threads_max);
    if (!number) {
      std::fprintf(stderr, "echo-server: bad value '%s' for %s\n", argv[i], argv[i - 1]);
      return 2;
    }
    if (is_port) {
      port = static_cast<std::uint16_t>(*number);
    } else {
      threads = *number;
    }
  }

  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);

  std::vector<std::unique_ptr<echo_thread>> loops;
  std::string error;
  for (unsigned i = 0; i < threads; ++i) {
    const int fd = open_listener(port, error);
    if (fd < 0) {
      std::fprintf(stderr, "echo-server: %s\n", error.c_str());
      return 1;
    }
    // The first socket chose the port; the others join it through SO_REUSEPORT.
    if (i == 0) port = bound_port(fd);
    loops.push_back(std::make_unique<echo_thread>(fd));
    if (!loops.back()->start(error)) {
      std::fprintf(stderr, "echo-server: %s\n", error.c_str());
      return 1;
    }
  }
  std::printf("listening port=%u threads=%u\n", static_cast<unsigned>(port), threads);
  std::fflush(stdout);

  std::vector<std::thread> workers;
  for (auto& loop : loops) workers.emplace_back([&loop] { loop->run(); });
  for (std::thread& each : workers) each.join();

  thread_counters total;
  for (const auto& loop : loops) {
    total.puts += loop->counters().puts;
    total.gets += loop->counters().gets;
    total.dels += loop->counters().dels;
    total.invalid += loop->counters().invalid;
    total.connections += loop->counters().connections;
  }
  std::fprintf(stderr, "echo-server: %llu connections, %llu GET, %llu PUT, %llu DEL, %llu EINVAL\n",
               static_cast<unsigned long long>(total.connections),
               static_cast<unsigned long long>(total.gets),
               static_cast<unsigned long long>(total.puts),
               static_cast<unsigned long long>(total.dels),
               static_cast<unsigned long long>(total.invalid));
  return 0;
}

}  // namespace
}  // namespace ringcache::loadgen::echo

int main(int argc, char** argv) { return ringcache::loadgen::echo::run(argc, argv); }
