// Ring: one io_uring instance, owned and used by exactly one worker thread.
//
// Created inside the thread that uses it (docs/platform.md: a SINGLE_ISSUER ring
// used from another thread fails with EEXIST). Set-up tries, in order:
//   1. SINGLE_ISSUER | DEFER_TASKRUN  (completion work runs only when this
//      thread waits: no interrupts of the hot loop; kernel >= 6.1)
//   2. SINGLE_ISSUER | COOP_TASKRUN
//   3. no flags
// falling back on EINVAL only. The CQ ring is cq_per_sq_entries times the SQ
// ring because multishot requests post many completions per submission and a
// multishot request ends on CQ overflow (docs/platform.md). NO_SQARRAY is never
// used (broken with liburing 2.3).
//
// Ring also counts the requests it has in flight: every submission gets
// exactly one final completion (one without IORING_CQE_F_MORE), so shutdown
// can drain until nothing is left.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>

#include "common/non_copyable.h"

namespace ringcache::server {

inline constexpr unsigned ring_sq_entries = 1024;
inline constexpr unsigned cq_per_sq_entries = 4;
// How many times get_sqe() flushes a full SQ before it gives up.
inline constexpr int sqe_flush_attempts_max = 8;

enum class RingStatus : uint8_t { ok, setup_failed, probe_failed, missing_opcode };

class Ring : NonCopyable {
 public:
  Ring() = default;
  ~Ring();

  // On failure, error says why (for the log).
  RingStatus init(unsigned sq_entries, std::string& error);

  // A submission entry that the caller fills; counts it in flight. Never
  // null: a full SQ is flushed first; if the kernel keeps refusing, the
  // process cannot make progress and aborts with a log line.
  io_uring_sqe* get_sqe();
  // A final completion (no IORING_CQE_F_MORE) of one of our submissions.
  void complete_one();
  uint64_t in_flight() const { return in_flight_; }

  // Submits what was prepared and waits for at least one completion.
  // Returns 0 or a negative errno (EINTR, ETIME and EBUSY are worth retrying).
  int submit_and_wait();

  io_uring* raw() { return &ring_; }
  int fd() const { return ring_.ring_fd; }
  // "defer_taskrun", "coop_taskrun" or "plain", for the start-up log.
  const char* mode() const { return mode_; }

 private:
  io_uring ring_{};
  bool initialized_ = false;
  const char* mode_ = "none";
  uint64_t in_flight_ = 0;
};

}  // namespace ringcache::server
