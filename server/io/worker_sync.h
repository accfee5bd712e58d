// WorkerSync: how main() and the worker threads meet at start-up and
// shutdown.
//
// Start-up: every worker creates its ring and buffers in its own thread
// (report_ready/report_failed); main waits for all of them, measures the
// address space and sets RLIMIT_AS, logs the start-up line, then releases the
// workers (start) or sends them home (abort). No client byte is read before
// the memory limit is in place.
//
// Shutdown: a worker leaves its loop once its ring has drained, then waits
// for every other worker (arrive_drained_and_wait) before closing its ring,
// so a connection handed over by msg_ring at the last moment always reaches
// a ring that is still open (EventLoop::reap_late_handoffs closes it).
#pragma once

#include <barrier>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace ringcache::server {

class WorkerSync {
 public:
  explicit WorkerSync(uint32_t workers);

  uint32_t workers() const { return workers_; }

  // Worker side.
  void report_ready(uint32_t index, int ring_fd);
  void report_failed(uint32_t index, const std::string& error);
  bool wait_start();  // false: start-up was aborted, leave at once
  void arrive_drained_and_wait();
  // A worker that cannot go on: ask main to stop everything (exit status 1).
  void report_fatal();

  // Main side.
  bool wait_ready(std::string& error);
  void start();
  void abort();
  bool fatal() const;

  // Valid once start() was called.
  int ring_fd(uint32_t index) const;

 private:
  enum class Phase : uint8_t { starting, running, aborted };

  const uint32_t workers_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  uint32_t ready_ = 0;
  uint32_t failed_ = 0;
  std::string first_error_;
  Phase phase_ = Phase::starting;
  bool fatal_ = false;
  std::vector<int> ring_fds_;
  std::barrier<> drained_;
};

}  // namespace ringcache::server
