// The one clock every latency sample and deadline is taken from.
// CLOCK_MONOTONIC goes through the vDSO (about 20 ns here), so the load
// generator can afford one reading per read() and one per batch of sends.
#pragma once

#include <cstdint>
#include <ctime>

namespace ringcache::loadgen {

inline constexpr std::uint64_t nanoseconds_per_second = 1'000'000'000;

inline std::uint64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * nanoseconds_per_second +
         static_cast<std::uint64_t>(now.tv_nsec);
}

}  // namespace ringcache::loadgen
