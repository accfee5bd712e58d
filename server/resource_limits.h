// Process limits set at start-up (docs/command_line.md): the open-files soft limit,
// RLIMIT_AS, the hard stop behind the -m budget, and the share of -m that
// values still arriving may hold.
//
// RLIMIT_AS = address space measured once threads, rings and buffers exist
//           + the -m budget
//           + memory_headroom_base_bytes + threads * memory_headroom_thread_bytes
// Why that headroom (docs/platform.md measured the pieces): mimalloc takes address
// space in segments of up to 32 MiB per allocating thread, so a thread's heap
// may grow by a whole segment for a few bytes; the base covers the
// connections' own state (parsers, reply blocks, at most a few MiB each and
// bounded per worker) and the allocator's metadata. Within the limit, the
// store meets a failed allocation by evicting and retrying, and the server
// meets one by closing the connection that needed it.
//
// Sanitizers reserve terabytes of shadow memory and cannot run under
// RLIMIT_AS at all: such builds skip it and say so in the log.
//
// Values still arriving (uploads, issue 11). A streamed value (a binary PUT
// above 64 KiB, a text data block, a peer's replication frame) is written
// straight into a store Reservation as its bytes arrive, and what an
// unpublished reservation holds cannot be evicted. Two bounds keep clients
// that stall in the middle of one from starving everyone else:
// - memory: the store refuses a claim that would take the bytes held by
//   all unpublished reservations past StoreConfig::upload_bytes_max
//   (store/store.h); the daemon sets it to upload_bytes_max_for() below.
//   The refused value is still read and dropped, and answered EUNK /
//   SERVER_ERROR out of memory storing object.
// - time: a connection in the middle of a request that has neither
//   received nor sent a byte for upload_idle_ms_max (--upload-timeout,
//   options.h) is closed and its reservation dropped (io/event_loop.h).
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

// The share of -m that values still arriving may hold:
// - a quarter of it: many concurrent large PUTs proceed, while three
//   quarters stay evictable for everything else;
// - but at least one item of the largest accepted size (--max-item) plus
//   two segments (its chain and segment headers and its key), so a client
//   that sends the largest value the daemon accepts is not refused while
//   nothing else is in flight;
// - and never more than three quarters of it, so small writes always have
//   a quarter of the memory to evict into, whatever --max-item says.
uint64_t upload_bytes_max_for(uint64_t memory_bytes, uint64_t item_bytes_max, uint64_t segment_bytes);

}  // namespace ringcache::server
