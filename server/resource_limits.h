// Process limits set at start-up (SPEC §3): the open-files soft limit, and
// RLIMIT_AS, the hard stop behind the -m budget.
//
// RLIMIT_AS = address space measured once threads, rings and buffers exist
//           + the -m budget
//           + memory_headroom_base_bytes + threads * memory_headroom_thread_bytes
// Why that headroom (PLATFORM.md measured the pieces): mimalloc takes address
// space in segments of up to 32 MiB per allocating thread, so a thread's heap
// may grow by a whole segment for a few bytes; the base covers the
// connections' own state (parsers, reply blocks, at most a few MiB each and
// bounded per worker) and the allocator's metadata. Within the limit, the
// store meets a failed allocation by evicting and retrying, and the server
// meets one by closing the connection that needed it.
//
// Sanitizers reserve terabytes of shadow memory and cannot run under
// RLIMIT_AS at all: such builds skip it and say so in the log.
#pragma once

#include <cstdint>
#include <string>

namespace ringcache::server {

inline constexpr uint64_t memory_headroom_base_bytes = 64ull << 20;
inline constexpr uint64_t memory_headroom_thread_bytes = 32ull << 20;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool built_with_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
inline constexpr bool built_with_sanitizer = true;
#else
inline constexpr bool built_with_sanitizer = false;
#endif
#else
inline constexpr bool built_with_sanitizer = false;
#endif

struct OpenFilesLimit {
  uint64_t before = 0;
  uint64_t after = 0;
  std::string error;  // empty on success
};

// Raises the soft RLIMIT_NOFILE to the hard limit.
OpenFilesLimit raise_open_files_limit();

// The process's address space (VmSize) in bytes, or 0 if /proc is unreadable.
uint64_t measure_address_space_bytes();

enum class MemoryLimitStatus : uint8_t { applied, skipped_sanitizer, failed };

struct MemoryLimit {
  MemoryLimitStatus status = MemoryLimitStatus::failed;
  uint64_t measured_bytes = 0;
  uint64_t headroom_bytes = 0;
  uint64_t limit_bytes = 0;
  std::string error;
};

uint64_t memory_headroom_bytes(uint32_t threads);

// Sets RLIMIT_AS as described above (soft and hard, so it cannot be undone).
MemoryLimit apply_memory_limit(uint64_t memory_bytes, uint32_t threads);

}  // namespace ringcache::server
