// Log lines about peers refused at the trust boundary (bad hellos, failed
// authentication, addresses that are not peers, clocks too far ahead), and
// about clients that failed --auth-file's authentication (server/process/auth.h),
// bounded so that whoever can reach the port cannot flood the log:
// - refusals: at most refusal_lines_per_s_max lines a second; the ones left
//   out are counted and the next line that gets out says how many;
// - clock skew: one line per peer node id per skew_log_interval_ms (a peer
//   ahead of us reconnects and is refused every few seconds).
// Thread-safe; the lock is held for a few comparisons, never during I/O.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/non_copyable.h"
#include "server/replication/replication_config.h"

namespace ringcache::replication {

inline constexpr uint32_t refusal_lines_per_s_max = 10;
inline constexpr int64_t skew_log_interval_ms = 60 * 1000;
// Peers remembered for the skew interval; past it the map starts over (a
// node id is chosen by whoever connects, so the map must stay bounded).
inline constexpr size_t skew_log_peers_max = 1024;

class TrustLog : NonCopyable {
 public:
  explicit TrustLog(LogSink line_sink) : sink_(line_sink) {}

  // A refused connection or stream; `line` must not contain secrets.
  void refusal(int64_t now_ms, const std::string& line);
  // Whether a skew refusal of `peer_node_id` should be logged now.
  bool skew_line_due(int64_t now_ms, std::string_view peer_node_id);
  LogSink sink() const { return sink_; }

 private:
  const LogSink sink_;
  std::mutex mutex_;
  int64_t window_start_ms_ = 0;
  uint32_t window_lines_ = 0;
  uint64_t suppressed_ = 0;
  std::unordered_map<std::string, int64_t> skew_logged_ms_;
};

// CLOCK_MONOTONIC milliseconds.
int64_t monotonic_ms();

}  // namespace ringcache::replication
