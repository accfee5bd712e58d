// What the tests of the daemon's modules share: value bytes, and the
// replies a connection would send, read out of its OutputQueue.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "server/io/output_queue.h"
#include "store/store.h"

namespace ringcache::server::test {

// Deterministic bytes of every value, different for each seed.
inline std::string pattern(size_t size, unsigned seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// A store for one test: 64 MiB, room for every test's values.
inline store::StoreConfig test_store_config() {
  store::StoreConfig config;
  config.memory_limit_bytes = 64 * store::mib_bytes;
  return config;
}

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
