#include "server/upload_limits.h"

#include <algorithm>
#include <cassert>

namespace ringcache::server {

uint64_t upload_bytes_max_for(uint64_t memory_bytes, uint64_t max_item_bytes, uint64_t segment_bytes) {
  const uint64_t ceiling = memory_bytes / 4 * 3;
  const uint64_t share = std::max(memory_bytes / 4, max_item_bytes + 2 * segment_bytes);
  const uint64_t limit = std::min(share, ceiling);
  assert(limit > 0 && limit <= ceiling);
  return limit;
}

}  // namespace ringcache::server
