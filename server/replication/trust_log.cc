#include "server/replication/trust_log.h"

#include <time.h>

#include "server/replication/log_sink.h"

namespace ringcache::replication {

int64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void TrustLog::refusal(int64_t now_ms, const std::string& line) {
  uint64_t left_out = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (now_ms - window_start_ms_ >= 1000) {
      window_start_ms_ = now_ms;
      window_lines_ = 0;
    }
    if (window_lines_ == refusal_lines_per_s_max) {
      ++suppressed_;
      return;
    }
    ++window_lines_;
    left_out = suppressed_;
    suppressed_ = 0;
  }
  if (left_out == 0) {
    emit(sink_, "%s", line.c_str());
  } else {
    emit(sink_, "%s (%llu more refusals not logged)", line.c_str(), static_cast<unsigned long long>(left_out));
  }
}

bool TrustLog::skew_line_due(int64_t now_ms, std::string_view peer_node_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string key(peer_node_id);
  const auto it = skew_logged_ms_.find(key);
  if (it != skew_logged_ms_.end() && now_ms - it->second < skew_log_interval_ms) return false;
  if (it == skew_logged_ms_.end() && skew_logged_ms_.size() >= skew_log_peers_max) skew_logged_ms_.clear();
  skew_logged_ms_[key] = now_ms;
  return true;
}

}  // namespace ringcache::replication
