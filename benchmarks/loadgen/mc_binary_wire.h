// The packet layout of memcached's binary protocol
// (docs/memcache_binary_protocol.md) as the load generator's codec and its
// test spell it: magic, opcodes and statuses of the commands it sends.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringcache::loadgen::mc_binary_wire {

enum class magic : std::uint8_t { request = 0x80, response = 0x81 };
enum class opcode : std::uint8_t { get = 0x00, set = 0x01, getq = 0x09, noop = 0x0a };
enum class status : std::uint16_t {
  ok = 0x0000, not_found = 0x0001, exists = 0x0002, too_large = 0x0003,
  invalid = 0x0004, not_stored = 0x0005, unknown_command = 0x0081,
};
inline constexpr std::size_t header_bytes = 24;
inline constexpr std::size_t set_extras_bytes = 8;  // flags, expiration
// The opaque's top bit marks the batch's last getq and its noop; the other
// 31 bits number the requests (pipelines are far shorter than 2^31).
inline constexpr std::uint32_t noop_follows = 0x8000'0000U;
inline constexpr std::uint32_t sequence_mask = 0x7fff'ffffU;

}  // namespace ringcache::loadgen::mc_binary_wire
