// What the tests of the daemon's modules share: the replies a connection
// would send, read out of its OutputQueue.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string>

#include "server/output_queue.h"

namespace ringcache::server::test {

// Everything queued, as the client would receive it; the queue is left empty.
inline std::string take_output(OutputQueue& out) {
  constexpr size_t iov_max = 16;
  std::string bytes;
  iovec iov[iov_max];
  while (!out.empty()) {
    const size_t count = out.gather(iov, iov_max);
    size_t total = 0;
    for (size_t i = 0; i < count; ++i) {
      bytes.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      total += iov[i].iov_len;
    }
    out.consume(total);
  }
  return bytes;
}

}  // namespace ringcache::server::test
