// Versions and the hybrid logical clock that issues them (docs/replication.md).
//
// Every replicated write carries one 64-bit version; a replica keeps a write
// only if its version is greater than the one it holds (store::PutMode::newer,
// a plain unsigned compare). The layout makes that compare mean "later in
// hybrid logical time, then higher node tag":
//
//    63                                   22 21             12 11            0
//   +---------------------------------------+-----------------+---------------+
//   | physical: ms since 2020-01-01 UTC (42) |  logical (10)   | node tag (12) |
//   +---------------------------------------+-----------------+---------------+
//
// - physical + logical together form the HLC (Kulkarni et al., "Logical
//   Physical Clocks", 2014): it never goes backwards, stays close to the wall
//   clock, and moves past every version this node has seen (observe()), so a
//   write made after seeing another write always wins over it.
// - 42 bits of milliseconds last until the year 2159. 10 logical bits allow
//   1024 versions per millisecond per node; beyond that the counter carries
//   into the physical part, so the clock runs slightly ahead of the wall clock
//   under extreme load instead of repeating a version.
// - The node tag makes versions of different nodes distinct, so concurrent
//   writes of one key on two nodes are ordered the same way everywhere. Tags
//   have 12 bits: a --node-id that is a decimal number 1-4095 is its own tag;
//   any other id is hashed. Two nodes of a mesh with the same tag refuse each
//   other's streams (replicator.h), loudly, rather than diverge silently.
//   (The 80 bits of a 48-bit physical clock, a 16-bit counter and a 16-bit id
//   do not fit the store's u64; time precision and counter width are what
//   gave way.)
// - The store keeps versions as 32-bit deltas from a per-segment base when
//   they fit (store/item.h): with 22 bits below the millisecond, versions
//   written within about half a second of each other share a base.
// Version 0 never occurs (the tag is never 0): it means "no version".
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "common/non_copyable.h"

namespace ringcache::replication {

inline constexpr unsigned version_tag_bits = 12;
inline constexpr unsigned version_logical_bits = 10;
inline constexpr unsigned version_physical_bits = 42;
static_assert(version_tag_bits + version_logical_bits + version_physical_bits == 64);

inline constexpr uint64_t version_epoch_unix_ms = 1577836800000ull;  // 2020-01-01T00:00:00Z
inline constexpr uint16_t node_tag_max = (1u << version_tag_bits) - 1;
inline constexpr uint64_t version_physical_max = (1ull << version_physical_bits) - 1;
// The largest HLC value (physical and logical bits all set): the clock stops there.
inline constexpr uint64_t hlc_max = (1ull << (version_physical_bits + version_logical_bits)) - 1;
inline constexpr uint64_t version_tag_mask = node_tag_max;

// The HLC part of a version: (physical << logical_bits) | logical.
constexpr uint64_t version_hlc(uint64_t version) { return version >> version_tag_bits; }
constexpr uint16_t version_tag(uint64_t version) {
  return static_cast<uint16_t>(version & version_tag_mask);
}
constexpr uint64_t make_version(uint64_t hlc, uint16_t tag) {
  return (hlc << version_tag_bits) | tag;
}
// Wall-clock time (unix milliseconds) a version was issued at, as far as the
// issuing node's HLC knew.
constexpr uint64_t version_unix_ms(uint64_t version) {
  return (version_hlc(version) >> version_logical_bits) + version_epoch_unix_ms;
}

// The lowest version a clock can issue at unix millisecond `unix_ms` (logical
// part and tag 0, so no issued version equals it): a write whose HLC had not
// reached unix_ms is below it, one made at or after it is not. A delayed
// flush_all uses it as its threshold (client_writes.h). Times before the
// epoch map to 0; a u32 of unix seconds (until 2106) always fits the 42 bits.
constexpr uint64_t version_at_unix_ms(uint64_t unix_ms) {
  if (unix_ms <= version_epoch_unix_ms) return 0;
  return make_version((unix_ms - version_epoch_unix_ms) << version_logical_bits, 0);
}
inline constexpr uint64_t unix_ms_of_last_u32_second = 0xFFFFFFFFull * 1000;
static_assert(version_unix_ms(version_at_unix_ms(unix_ms_of_last_u32_second)) == unix_ms_of_last_u32_second);

// The 12-bit tag (1-4095) of a node id: a decimal id 1-4095 maps to itself,
// anything else to a hash. Never 0.
uint16_t node_tag_of(std::string_view node_id);

// Unix milliseconds (CLOCK_REALTIME).
uint64_t wall_clock_unix_ms();
// Unix microseconds (CLOCK_REALTIME): heartbeats and the lag they measure.
uint64_t wall_clock_unix_us();

// Issues versions for local writes and absorbs the versions of replicated
// ones. Thread-safe and lock-free: every worker calls next(), the threads
// that apply replicated writes call observe().
class HybridClock : NonCopyable {
 public:
  using WallClock = uint64_t (*)();  // unix milliseconds

  explicit HybridClock(uint16_t tag, WallClock wall_clock = &wall_clock_unix_ms);

  uint16_t tag() const { return tag_; }
  // The wall clock this clock follows (unix milliseconds).
  uint64_t wall_ms() const { return wall_clock_(); }
  // A version greater than every version issued or observed before, until
  // the clock saturates at hlc_max (then the same HLC repeats).
  uint64_t next();
  // Moves the clock past `version` (a write received from a peer). Any u64
  // is safe; IncomingStream bounds what reaches here by --max-clock-skew.
  void observe(uint64_t version);
  // The HLC value last issued or observed.
  uint64_t current_hlc() const { return hlc_.load(std::memory_order_relaxed); }

 private:
  uint64_t physical_hlc() const;

  const uint16_t tag_;
  const WallClock wall_clock_;
  std::atomic<uint64_t> hlc_{0};
};

}  // namespace ringcache::replication
