#include "server/resource_limits.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ringcache::server {

OpenFilesLimit raise_open_files_limit() {
  OpenFilesLimit result;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    result.error = std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    return result;
  }
  result.before = limit.rlim_cur;
  result.after = limit.rlim_cur;
  if (limit.rlim_cur == limit.rlim_max) return result;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    result.error = std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    return result;
  }
  result.after = limit.rlim_cur;
  return result;
}

uint64_t measure_address_space_bytes() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  unsigned long long pages = 0;
  const int fields = std::fscanf(statm, "%llu", &pages);
  std::fclose(statm);
  if (fields != 1) return 0;
  return pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

uint64_t memory_headroom_bytes(uint32_t threads) {
  return memory_headroom_base_bytes + static_cast<uint64_t>(threads) * memory_headroom_thread_bytes;
}

MemoryLimit apply_memory_limit(uint64_t memory_bytes, uint32_t threads) {
  MemoryLimit result;
  result.measured_bytes = measure_address_space_bytes();
  result.headroom_bytes = memory_headroom_bytes(threads);
  result.limit_bytes = result.measured_bytes + memory_bytes + result.headroom_bytes;
  if (built_with_sanitizer) {
    result.status = MemoryLimitStatus::skipped_sanitizer;
    return result;
  }
  if (result.measured_bytes == 0) {
    result.error = "cannot read /proc/self/statm";
    return result;
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) != 0) {
    result.error = std::string("getrlimit(RLIMIT_AS): ") + std::strerror(errno);
    return result;
  }
  // Without CAP_SYS_RESOURCE a hard limit can only be lowered.
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < result.limit_bytes) {
    result.limit_bytes = limit.rlim_max;
  }
  limit.rlim_cur = result.limit_bytes;
  limit.rlim_max = result.limit_bytes;
  if (::setrlimit(RLIMIT_AS, &limit) != 0) {
    result.error = std::string("setrlimit(RLIMIT_AS): ") + std::strerror(errno);
    return result;
  }
  result.status = MemoryLimitStatus::applied;
  return result;
}

uint64_t upload_bytes_max_for(uint64_t memory_bytes, uint64_t item_bytes_max, uint64_t segment_bytes) {
  const uint64_t ceiling = memory_bytes / 4 * 3;
  const uint64_t share = std::max(memory_bytes / 4, item_bytes_max + 2 * segment_bytes);
  const uint64_t limit = std::min(share, ceiling);
  assert(limit > 0 && limit <= ceiling);
  return limit;
}

}  // namespace ringcache::server
