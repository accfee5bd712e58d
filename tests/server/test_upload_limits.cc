// The share of -m that values still arriving may hold (server/resource_limits.h).
#include <doctest/doctest.h>

#include <initializer_list>

#include "server/resource_limits.h"

using namespace ringcache::server;

namespace {
constexpr uint64_t mib = 1024 * 1024;
}  // namespace

TEST_CASE("a quarter of -m, at least one largest item plus two segments, at most three quarters") {
  // -m 64 with the default --max-item (32 MiB): one 32 MiB item must fit.
  CHECK(upload_bytes_max_for(64 * mib, 32 * mib, mib) == 34 * mib);
  // Small items: the quarter.
  CHECK(upload_bytes_max_for(1024 * mib, mib, mib) == 256 * mib);
  CHECK(upload_bytes_max_for(1024 * mib, 200 * mib, mib) == 256 * mib);
  // --max-item as large as -m: capped so a quarter stays evictable.
  CHECK(upload_bytes_max_for(64 * mib, 64 * mib, mib) == 48 * mib);
  CHECK(upload_bytes_max_for(4 * mib, 2 * mib, mib) == 3 * mib);
}

TEST_CASE("never more than three quarters, never zero") {
  for (uint64_t memory = 4 * mib; memory <= (1ull << 40); memory *= 4) {
    for (uint64_t item : {uint64_t{1}, memory / 8, memory / 2, memory}) {
      const uint64_t limit = upload_bytes_max_for(memory, item, mib);
      CHECK(limit > 0);
      CHECK(limit <= memory / 4 * 3);
      CHECK(limit >= memory / 4);
    }
  }
}
