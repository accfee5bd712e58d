// Helpers for the replication tests: versioned stores, a log capture, a
// sending node, and a receiving peer that applies what a Replicator sends,
// the way a worker does. Frames and hex come from wire_harness.h, reading a
// value from tests/store/store_test_util.h.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/replication/incoming_stream.h"
#include "server/replication/replicator.h"
#include "server/replication/wire.h"
#include "store/store.h"
#include "tests/replication/wire_harness.h"
#include "tests/store/store_test_util.h"

namespace repl_test {

using namespace ringcache;
using namespace ringcache::replication;
using namespace ringcache::replication::test;
using store_test::get_string;

inline store::StoreConfig versioned_config(uint64_t memory_bytes = 64 * store::mib_bytes) {
  store::StoreConfig config;
  config.memory_limit_bytes = memory_bytes;
  config.versioned = true;
  config.threads_max = 64;
  return config;
}

// Log lines kept for assertions (LogSink is a plain function pointer).
struct LogCapture {
  static inline std::mutex mutex;
  static inline std::vector<std::string> lines;
  static void sink(const char* line) {
    std::lock_guard<std::mutex> lock(mutex);
    lines.emplace_back(line);
  }
  static bool contains(std::string_view text) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& l : lines) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
  static void clear() {
    std::lock_guard<std::mutex> lock(mutex);
    lines.clear();
  }
};

// A real versioned store and what an IncomingStream needs to apply a
// peer's frames to it.
struct StreamFixture {
  explicit StreamFixture(const store::StoreConfig& store_config = versioned_config(), size_t peers = 2)
      : store(store_config), thread(store) {
    config.node_id = "local";
    config.item_bytes_max = 1 << 20;
    config.peers.resize(peers);
  }
  // An admitted unauthenticated stream, as a worker holds one.
  struct Stream {
    std::unique_ptr<IncomingStream> stream;
    // Feeds bytes; a stream that is not authenticating never replies.
    // Only a stream that waits leaves bytes unused (`used`).
    StreamStatus feed(std::string_view bytes, size_t* used = nullptr) {
      std::string reply;
      size_t took = 0;
      const StreamStatus status = stream->feed(bytes, reply, took);
      CHECK(reply.empty());
      CHECK((status == StreamStatus::wait || took == bytes.size()));
      if (used != nullptr) *used = took;
      return status;
    }
    bool at_frame_boundary() const { return stream->at_frame_boundary(); }
  };
  Stream stream() {
    return Stream{IncomingStream::unauthenticated(context(), thread, "peer", "127.0.0.1:1")};
  }
  IncomingContext context() { return IncomingContext{clock, counters, config, trust_log}; }
  store::Store store;
  store::StoreThread thread;
  HybridClock clock{1};
  ReceiverCounters counters;
  ReplicationConfig config;
  TrustLog trust_log{&LogCapture::sink};
};

inline uint64_t version_of(store::StoreThread& t, std::string_view key) {
  uint64_t version = 0;
  t.get(key, [&](const store::ItemView& v) { version = v.version(); });
  return version;
}

// Every live key and value of a store (tombstones excluded).
inline std::map<std::string, std::string> contents(store::StoreThread& t) {
  std::map<std::string, std::string> out;
  uint64_t cursor = 0;
  do {
    cursor = t.scan(cursor, 64, [&](std::string_view key, const store::ItemView& v, bool tombstone) {
      if (tombstone) return;
      std::string value(v.value_size(), '\0');
      v.copy_value(0, value.data(), value.size());
      out.emplace(std::string(key), std::move(value));
    });
  } while (cursor != 0);
  return out;
}

inline bool wait_until(const std::function<bool()>& done, int timeout_ms = 10000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// A listening socket on 127.0.0.1, port chosen by the kernel.
inline int listen_loopback(uint16_t& port, bool do_listen = true) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t length = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
  port = ntohs(addr.sin_port);
  if (do_listen) REQUIRE(::listen(fd, 16) == 0);
  return fd;
}

// The receiving side of a node in a test: accepts replication connections
// one at a time, checks the hello, and applies the stream to `store` with
// IncomingStream, like a worker. `pause_reading` stops reading (a slow
// peer); `refuse` answers the hello with EINVAL and closes.
class Receiver {
 public:
  // listen_fd: bound (and listening unless start_listening() comes later).
  // With a secret, hellos must be v2 and the stream authenticates first.
  Receiver(store::Store& store, HybridClock& clock, int listen_fd, uint16_t port, size_t peers = 1,
           std::shared_ptr<const PeerSecret> secret = nullptr)
      : store_(store), clock_(clock), listen_fd_(listen_fd), port_(port) {
    config_.secret = std::move(secret);
    config_.node_id = "receiver-" + std::to_string(port);
    config_.item_bytes_max = 32 * store::mib_bytes;
    config_.info = &LogCapture::sink;
    config_.peers.resize(peers);
    thread_ = std::thread([this] { run(); });
  }
  ~Receiver() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  void start_listening() { REQUIRE(::listen(listen_fd_, 16) == 0); }
  ReceiverCounters& counters() { return counters_; }
  std::atomic<bool> pause_reading{false};
  std::atomic<bool> refuse{false};
  std::atomic<int> connections{0};
  std::string hello_node_id() {
    std::lock_guard<std::mutex> lock(mutex_);
    return hello_node_id_;
  }

 private:
  // Whether `fd` has input within 20 ms, so that the loops see stop_ soon.
  // A paused node reads nothing: false after a 5 ms nap.
  bool readable(int fd) {
    if (pause_reading) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 20) > 0;
  }

  // One thread per connection, as a peer's streams are served side by side
  // by the daemon's workers.
  void run() {
    std::vector<std::thread> served;
    while (!stop_) {
      // A stalled node accepts nothing either: new connections wait in the
      // backlog, and the threads (and store handles) stay bounded.
      if (!readable(listen_fd_)) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections;
      served.emplace_back([this, fd] {
        store::StoreThread thread(store_);
        serve(fd, thread);
        ::close(fd);
      });
    }
    for (std::thread& t : served) t.join();
  }

  bool read_exact(int fd, char* out, size_t n) {
    while (n > 0 && !stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t got = ::recv(fd, out, n, 0);
      if (got <= 0) return false;
      out += got;
      n -= static_cast<size_t>(got);
    }
    return n == 0;
  }

  void serve(int fd, store::StoreThread& thread) {
    // Assertions here run on the receiver's thread: CHECK and give up on
    // the connection, never REQUIRE (it would throw across the thread).
    char head[5];
    if (!read_exact(fd, head, 5)) return;
    CHECK(static_cast<uint8_t>(head[0]) == 200);
    const auto length = static_cast<size_t>(get_be(head + 1, 4));
    CHECK(length <= hello_bytes_max);
    if (static_cast<uint8_t>(head[0]) != 200 || length > hello_bytes_max) return;
    std::string hello(length, '\0');
    if (!read_exact(fd, hello.data(), length)) return;
    Hello parsed;
    const HelloStatus status = parse_hello(hello, parsed);
    CHECK(status == HelloStatus::ok);
    if (status != HelloStatus::ok) return;
    CHECK((parsed.version == HelloVersion::v2) == (config_.secret != nullptr));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      hello_node_id_ = std::string(parsed.node_id);
    }
    if (refuse) {
      // EINVAL, then FIN, then read until the sender closes: closing with
      // its bytes unread would reset the connection and could discard the
      // EINVAL before the sender reads it.
      const char einval = 111;
      (void)::send(fd, &einval, 1, MSG_NOSIGNAL);
      (void)::shutdown(fd, SHUT_WR);
      char discard[4096];
      while (!stop_) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        if (::recv(fd, discard, sizeof(discard), 0) <= 0) break;
      }
      return;
    }
    const IncomingContext context{clock_, counters_, config_, trust_log_};
    std::string reply;
    std::unique_ptr<IncomingStream> stream =
        config_.secret != nullptr
            ? IncomingStream::challenge(context, thread, parsed, "127.0.0.1", reply)
            : IncomingStream::unauthenticated(context, thread, std::string(parsed.node_id), "127.0.0.1");
    if (!reply.empty()) {
      CHECK(::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(reply.size()));
      reply.clear();
    }
    char buffer[16384];
    while (!stop_) {
      if (!readable(fd)) continue;
      const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
      if (got <= 0) return;
      size_t used = 0;
      const StreamStatus fed = stream->feed(std::string_view(buffer, static_cast<size_t>(got)), reply, used);
      if (!reply.empty()) (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      reply.clear();
      CHECK(fed == StreamStatus::ok);
      if (fed != StreamStatus::ok) return;
    }
  }

  store::Store& store_;
  HybridClock& clock_;
  ReceiverCounters counters_;
  ReplicationConfig config_;
  TrustLog trust_log_{&LogCapture::sink};
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::string hello_node_id_;
  std::thread thread_;
};

// A peer that only receives: its own store and clock.
struct ReceivingPeer {
  explicit ReceivingPeer(bool listen_now = true, uint64_t memory_bytes = 64 * store::mib_bytes,
                         std::shared_ptr<const PeerSecret> secret = nullptr)
      : fd(listen_loopback(port, listen_now)),
        store(versioned_config(memory_bytes)),
        receiver(store, clock, fd, port, 1, std::move(secret)) {}
  uint16_t port = 0;
  int fd;
  store::Store store;
  HybridClock clock{4000};
  Receiver receiver;
};

inline std::shared_ptr<const PeerSecret> make_secret(char fill) {
  return std::make_shared<const PeerSecret>(std::string(32, fill));
}

// A node that sends: a store, a client's handle on it, and the Replicator
// that streams its writes to the peers of `config` once started.
struct SendingNode {
  explicit SendingNode(ReplicationConfig config, const store::StoreConfig& store_config = versioned_config())
      : store(store_config), thread(store), replicator(store, std::move(config)) {}
  void start() {
    std::string error;
    REQUIRE_MESSAGE(replicator.start(error), error);
  }
  store::Store store;
  store::StoreThread thread;
  Replicator replicator;
};

inline ReplicationConfig sender_config(const std::string& node_id, std::vector<uint16_t> ports,
                                       std::shared_ptr<const PeerSecret> secret = nullptr) {
  ReplicationConfig config;
  config.node_id = node_id;
  config.secret = std::move(secret);
  for (const uint16_t port : ports) {
    PeerAddress peer;
    peer.host = "127.0.0.1";
    peer.port = port;
    config.peers.push_back(peer);
  }
  config.workers = 1;
  config.item_bytes_max = 32 * store::mib_bytes;
  config.info = &LogCapture::sink;
  config.tuning.backoff_ms_min = 20;
  config.tuning.backoff_ms_max = 200;
  return config;
}

}  // namespace repl_test
