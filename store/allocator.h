// Where store memory comes from: mimalloc in normal builds (Debian's
// libmimalloc), libc malloc in sanitizer builds so that ASan/TSan see it.
//
// Under RLIMIT_AS these return nullptr instead of aborting; the caller
// (BlockPool) answers a failure by evicting a segment and retrying.
#pragma once

#include <cstddef>

namespace ringcache::store {

// Returns nullptr when the allocator cannot serve the request.
void* allocator_alloc(std::size_t bytes, std::size_t alignment) noexcept;
void allocator_free(void* p) noexcept;

// True when allocations are served by mimalloc. With --as-needed linking a
// program that never names an mi_* symbol silently keeps glibc's malloc, so
// the daemon checks this at start-up. Always false in libc builds.
bool allocator_is_mimalloc() noexcept;

// Asks the allocator for huge OS pages (MADV_HUGEPAGE) for what it maps
// from now on. Store lookups are random accesses over the whole budget:
// with 4 KiB pages nearly every one is a TLB miss. Measured with
// BM_get_hit/100 (1 M items, 1 thread): 1267 -> 792 ns CPU per GET.
void allocator_prefer_huge_pages() noexcept;

// "mimalloc" or "libc", for logs.
const char* allocator_name() noexcept;

}  // namespace ringcache::store
