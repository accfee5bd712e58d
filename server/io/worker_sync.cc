#include "server/io/worker_sync.h"

#include <signal.h>
#include <unistd.h>

#include <cassert>

namespace ringcache::server {

WorkerSync::WorkerSync(uint32_t workers)
    : workers_(workers), ring_fds_(workers, -1), drained_(static_cast<std::ptrdiff_t>(workers)) {
  assert(workers >= 1);
}

void WorkerSync::report_ready(uint32_t index, int ring_fd) {
  assert(index < workers_);
  {
    std::lock_guard lock(mutex_);
    ring_fds_[index] = ring_fd;
    ++ready_;
  }
  changed_.notify_all();
}

void WorkerSync::report_failed(uint32_t index, const std::string& error) {
  assert(index < workers_);
  {
    std::lock_guard lock(mutex_);
    if (failed_++ == 0) first_error_ = "worker " + std::to_string(index) + ": " + error;
  }
  changed_.notify_all();
}

bool WorkerSync::wait_start() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return phase_ != Phase::starting; });
  return phase_ == Phase::running;
}

void WorkerSync::arrive_drained_and_wait() { drained_.arrive_and_wait(); }

void WorkerSync::report_fatal() {
  {
    std::lock_guard lock(mutex_);
    fatal_ = true;
  }
  // main() sleeps in sigwait(); the same signal as an operator's stop.
  ::kill(::getpid(), SIGTERM);
}

bool WorkerSync::wait_ready(std::string& error) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return ready_ + failed_ == workers_; });
  if (failed_ == 0) return true;
  error = first_error_;
  return false;
}

void WorkerSync::start() {
  {
    std::lock_guard lock(mutex_);
    assert(ready_ == workers_);
    phase_ = Phase::running;
  }
  changed_.notify_all();
}

void WorkerSync::abort() {
  {
    std::lock_guard lock(mutex_);
    phase_ = Phase::aborted;
  }
  changed_.notify_all();
}

bool WorkerSync::fatal() const {
  std::lock_guard lock(mutex_);
  return fatal_;
}

int WorkerSync::ring_fd(uint32_t index) const {
  std::lock_guard lock(mutex_);
  assert(index < workers_ && phase_ == Phase::running);
  return ring_fds_[index];
}

}  // namespace ringcache::server
