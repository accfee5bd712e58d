// Filling an iovec array for one writev/sendmsg from queued bytes: a
// contiguous span, or a value that the store keeps in several runs (a large
// item spans blocks). The client reply queue (io/output_queue.h) and
// replication's PieceQueue send pinned values this way.
//
// Header-only and dependency-free, so that replication/ can see it too.
#pragma once

#include <sys/uio.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringcache::server {

// Adds `span` as iov[used]; returns the iovecs now used.
inline size_t add_iovec(iovec* iov, size_t used, std::string_view span) {
  assert(!span.empty());
  iov[used].iov_base = const_cast<char*>(span.data());
  iov[used].iov_len = span.size();
  return used + 1;
}

// Adds the runs of a value from `offset` up to `size` while iov has room
// (used < iov_max); run_at(offset) is the run that starts at offset, never
// empty. Returns the iovecs now used.
template <class RunAt>
size_t add_value_runs(iovec* iov, size_t used, size_t iov_max, uint64_t offset, uint64_t size, RunAt&& run_at) {
  assert(used <= iov_max);
  assert(!(offset > size));
  while (offset < size && used < iov_max) {
    const std::string_view run = run_at(offset);
    used = add_iovec(iov, used, run);
    offset += run.size();
  }
  return used;
}

}  // namespace ringcache::server
