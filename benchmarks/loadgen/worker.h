// A client thread: owns a set of connections and one level-triggered epoll,
// keeps every connection `--pipeline` requests deep, and records each reply's
// latency in its own histogram (nothing is shared on the hot path; the main
// thread merges the totals after join and reads progress counters that the
// worker publishes once per epoll round).
#pragma once

#include <atomic>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "client_connection.h"
#include "common/non_copyable.h"
#include "key_chooser.h"
#include "latency_histogram.h"
#include "options.h"
#include "run_control.h"

namespace ringcache::loadgen {

// Requests in flight per connection while prefilling, whatever --pipeline is
// (the prefill is not measured, only waited for), fewer when the values are
// large so that the prefill does not flood the server's memory.
inline constexpr std::uint32_t prefill_depth_max = 16;
inline constexpr std::uint64_t prefill_in_flight_bytes_max = 1024 * 1024;
// The prefill is bounded too; a key space that cannot be written in this time
// is a mistake in the command line, reported as such.
inline constexpr double prefill_seconds_max = 120;
inline constexpr std::size_t epoll_events_max = 256;
// Longest epoll_wait, so deadlines and failures are noticed promptly.
inline constexpr int epoll_wait_ms_max = 20;
// Shared by all connections of a worker: codecs keep partial replies, so a
// read buffer never has to outlive one receive().
inline constexpr std::size_t read_buffer_bytes = 256 * 1024;

struct worker_totals {
  std::array<std::uint64_t, reply_status_count> replies{};  // measured interval
  std::uint64_t gets = 0;
  std::uint64_t puts = 0;
  std::uint64_t value_bytes_received = 0;
  latency_histogram latency;  // nanoseconds
  std::uint64_t prefill_replies = 0;
  std::uint64_t prefill_errors = 0;

  void merge(const worker_totals& other);
  std::uint64_t errors() const;
};

// Running totals since the start line (warmup included), for progress lines.
struct alignas(64) worker_progress {
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> errors{0};
};

struct worker_setup {
  unsigned index = 0;
  const loadgen_options* options = nullptr;
  std::span<const std::byte> value;  // PUT payload, shared read-only by all workers
  run_control* control = nullptr;
  std::string peer_name;  // for messages: "127.0.0.1:8889"
};

class worker : NonCopyable {
 public:
  explicit worker(worker_setup setup);
  ~worker();

  // Takes ownership of a connected non-blocking socket and, with TLS, of its
  // finished handshake. Returns false (and closes it) if epoll refuses it;
  // `error_number` then holds the errno.
  bool add_connection(int fd, ssl_handle tls, std::uint32_t global_index, int& error_number);

  // Thread body: prefill (if asked), start line, warmup and measured load.
  void run();

  const worker_totals& totals() const { return totals_; }
  const worker_progress& progress() const { return progress_; }

 private:
  enum class phase : std::uint8_t { prefill, load };

  struct connection_slot {
    connection_slot(int fd, std::unique_ptr<protocol_codec> codec, std::uint32_t depth,
                    std::uint32_t index, ssl_handle tls)
        : connection(fd, std::move(codec), depth, std::move(tls)),
          global_index(index),
          next_prefill_key(index) {}

    client_connection connection;
    std::uint32_t global_index;
    std::uint64_t next_prefill_key;
    bool want_write = false;
  };

  void run_phase(phase current);
  bool on_readable(connection_slot& slot, phase current);
  void refill(connection_slot& slot, phase current);
  bool flush(connection_slot& slot);
  void fail(const connection_slot& slot, std::string_view what);
  void publish_progress();

  worker_setup setup_;
  const loadgen_options& options_;
  std::uint32_t prefill_depth_;
  int epoll_fd_ = -1;
  std::vector<std::unique_ptr<connection_slot>> slots_;
  std::vector<std::byte> read_buffer_;
  std::vector<char> key_buffer_;
  random_source random_;
  key_chooser chooser_;
  std::uint64_t prefill_pending_ = 0;
  std::uint64_t measure_start_ns_ = UINT64_MAX;
  std::uint64_t measure_end_ns_ = UINT64_MAX;
  std::uint64_t completed_ = 0;
  std::uint64_t errors_ = 0;
  worker_totals totals_;
  worker_progress progress_;
};

}  // namespace ringcache::loadgen
