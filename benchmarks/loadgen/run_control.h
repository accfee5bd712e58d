// State shared by the main thread and the workers for one run: the start line
// every thread crosses after the prefill, the deadlines fixed at that moment,
// and the first failure, which stops everyone.
//
// Timeline:  connect -> [prefill] -> start line -> warmup -> measured interval
// Deadlines are absolute CLOCK_MONOTONIC nanoseconds. Workers count a reply in
// the results when it is received inside [measure_start_ns, measure_end_ns),
// so the interval is exact whatever the thread scheduling; the main thread
// moves measure_end_ns earlier on SIGINT or failure.
#pragma once

#include <atomic>
#include <barrier>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "monotonic_clock.h"

namespace ringcache::loadgen {

// Set by the SIGINT/SIGTERM handler; the main thread ends the measured
// interval, a worker still prefilling gives up.
inline std::atomic<bool> interrupt_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "stored from a signal handler");

class run_control;

struct start_line_completion {
  run_control* control;
  void operator()() noexcept;
};

class run_control {
 public:
  run_control(std::ptrdiff_t participants, double warmup_seconds, double duration_seconds)
      : start_line(participants, start_line_completion{this}),
        warmup_ns_(seconds_to_ns(warmup_seconds)),
        duration_ns_(seconds_to_ns(duration_seconds)) {}

  std::barrier<start_line_completion> start_line;
  std::atomic<std::uint64_t> measure_start_ns{UINT64_MAX};
  std::atomic<std::uint64_t> measure_end_ns{UINT64_MAX};
  std::atomic<bool> failed{false};

  // Keeps the first message: later failures are usually its consequences.
  void report_failure(std::string message) {
    std::lock_guard lock(failure_mutex_);
    if (!failed.load(std::memory_order_relaxed)) failure_message_ = std::move(message);
    failed.store(true, std::memory_order_release);
  }
  std::string failure_message() const {
    std::lock_guard lock(failure_mutex_);
    return failure_message_;
  }

  // Ends the measured interval now if it has not ended yet.
  void stop_early(std::uint64_t now_ns) {
    std::uint64_t end = measure_end_ns.load(std::memory_order_relaxed);
    while (now_ns < end &&
           !measure_end_ns.compare_exchange_weak(end, now_ns, std::memory_order_relaxed)) {
    }
  }

 private:
  friend struct start_line_completion;

  static std::uint64_t seconds_to_ns(double seconds) {
    return static_cast<std::uint64_t>(seconds * static_cast<double>(nanoseconds_per_second));
  }

  mutable std::mutex failure_mutex_;
  std::string failure_message_;
  std::uint64_t warmup_ns_;
  std::uint64_t duration_ns_;
};

inline void start_line_completion::operator()() noexcept {
  const std::uint64_t start = monotonic_ns() + control->warmup_ns_;
  control->measure_start_ns.store(start, std::memory_order_relaxed);
  control->measure_end_ns.store(start + control->duration_ns_, std::memory_order_relaxed);
}

}  // namespace ringcache::loadgen
