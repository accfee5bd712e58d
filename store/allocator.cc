#include "store/allocator.h"

#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if RINGCACHE_MIMALLOC
#include <mimalloc.h>
#endif

namespace ringcache::store {

void* allocator_alloc(std::size_t bytes, std::size_t alignment) noexcept {
  assert(bytes > 0);
  assert(alignment != 0);
  assert((alignment & (alignment - 1)) == 0);  // a power of two
#if RINGCACHE_MIMALLOC
  // mi_malloc_aligned over-allocates for large sizes: 800 blocks of 1 MiB
  // took 1216 MiB of address space (RLIMIT_AS counts it), plain mi_malloc
  // 800 MiB. Large blocks from mi_malloc come page-aligned; check anyway.
  if (void* p = mi_malloc(bytes)) {
    if (reinterpret_cast<std::uintptr_t>(p) % alignment == 0) return p;
    mi_free(p);
  }
  return mi_malloc_aligned(bytes, alignment);
#else
  void* p = nullptr;
  if (posix_memalign(&p, alignment, bytes) != 0) return nullptr;
  return p;
#endif
}

void allocator_free(void* p) noexcept {
#if RINGCACHE_MIMALLOC
  mi_free(p);
#else
  std::free(p);
#endif
}

bool allocator_is_mimalloc() noexcept {
#if RINGCACHE_MIMALLOC
  // Debian's libmimalloc exports malloc itself: when it is really linked,
  // plain malloc() lands in a mimalloc region.
  void* probe = std::malloc(64);
  if (probe == nullptr) return false;
  std::memset(probe, 0, 64);
  bool ok = mi_is_in_heap_region(probe);
  std::free(probe);
  return ok;
#else
  return false;
#endif
}

void allocator_prefer_huge_pages() noexcept {
#if RINGCACHE_MIMALLOC
  mi_option_enable(mi_option_large_os_pages);
#endif
}

const char* allocator_name() noexcept {
#if RINGCACHE_MIMALLOC
  return "mimalloc";
#else
  return "libc";
#endif
}

}  // namespace ringcache::store
