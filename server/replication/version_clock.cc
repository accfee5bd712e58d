#include "server/replication/version_clock.h"

#include <time.h>

#include <cassert>
#include <charconv>

namespace ringcache::replication {

uint16_t node_tag_of(std::string_view node_id) {
  unsigned number = 0;
  const char* end = node_id.data() + node_id.size();
  const auto [ptr, ec] = std::from_chars(node_id.data(), end, number);
  if (!node_id.empty() && ec == std::errc() && ptr == end && node_id[0] != '0' && number >= 1 &&
      number <= node_tag_max) {
    return static_cast<uint16_t>(number);
  }
  // FNV-1a: stable across builds and machines, which a tag must be.
  uint64_t hash = 14695981039346656037ull;
  for (const char c : node_id) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return static_cast<uint16_t>(hash % node_tag_max + 1);
}

uint64_t wall_clock_unix_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t wall_clock_unix_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

HybridClock::HybridClock(uint16_t tag, WallClock wall_clock) : tag_(tag), wall_clock_(wall_clock) {
  assert(tag >= 1);
  assert(tag <= node_tag_max);
  assert(wall_clock != nullptr);
}

uint64_t HybridClock::physical_hlc() const {
  const uint64_t now_ms = wall_clock_();
  // A wall clock before 2020 is broken; the logical part still orders
  // writes. One past 2159 saturates like the HLC itself.
  uint64_t since_epoch = now_ms > version_epoch_unix_ms ? now_ms - version_epoch_unix_ms : 0;
  if (since_epoch > version_physical_max) since_epoch = version_physical_max;
  return since_epoch << version_logical_bits;
}

// Saturates at hlc_max rather than carrying into the tag bits: versions
// from peers are bounded by --max-clock-skew before they are observed
// (incoming_stream.h), so only a wall clock past 2159 could get here, and
// then repeating the last version is the lesser evil.
uint64_t HybridClock::next() {
  const uint64_t physical = physical_hlc();
  uint64_t old = hlc_.load(std::memory_order_relaxed);
  uint64_t fresh = 0;
  do {
    const uint64_t after = old < hlc_max ? old + 1 : hlc_max;
    fresh = after > physical ? after : physical;
  } while (!hlc_.compare_exchange_weak(old, fresh, std::memory_order_relaxed));
  assert(fresh <= hlc_max);
  assert(fresh >= old);
  return make_version(fresh, tag_);
}

void HybridClock::observe(uint64_t version) {
  const uint64_t seen = version_hlc(version);
  assert(seen <= hlc_max);  // 52 bits by construction of a u64 >> 12
  uint64_t old = hlc_.load(std::memory_order_relaxed);
  while (old < seen && !hlc_.compare_exchange_weak(old, seen, std::memory_order_relaxed)) {
  }
}

}  // namespace ringcache::replication
