// Global operator new/delete on top of mimalloc, linked into every executable
// that runs under RLIMIT_AS.
//
// Why: Debian's libmimalloc aborts the process when a C++ `operator new`
// fails, ignoring std::set_new_handler (docs/platform.md, measured). Defining every
// variant here makes a failed `new` throw std::bad_alloc (or return nullptr
// for nothrow), which the daemon answers by closing one connection instead of
// dying. In libc builds (sanitizers) this file compiles to nothing.
#if RINGCACHE_MIMALLOC
#include <mimalloc.h>

#include <cstddef>
#include <new>

namespace {

void* allocate_or_throw(std::size_t n) {
  for (;;) {
    if (void* p = mi_malloc(n == 0 ? 1 : n)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* allocate_aligned_or_throw(std::size_t n, std::align_val_t al) {
  for (;;) {
    if (void* p = mi_malloc_aligned(n == 0 ? 1 : n, static_cast<std::size_t>(al))) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

void* operator new(std::size_t n) { return allocate_or_throw(n); }
void* operator new[](std::size_t n) { return allocate_or_throw(n); }
void* operator new(std::size_t n, std::align_val_t al) { return allocate_aligned_or_throw(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return allocate_aligned_or_throw(n, al); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return mi_malloc(n == 0 ? 1 : n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return mi_malloc(n == 0 ? 1 : n); }
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return mi_malloc_aligned(n == 0 ? 1 : n, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return mi_malloc_aligned(n == 0 ? 1 : n, static_cast<std::size_t>(al));
}

void operator delete(void* p) noexcept { mi_free(p); }
void operator delete[](void* p) noexcept { mi_free(p); }
void operator delete(void* p, std::size_t) noexcept { mi_free(p); }
void operator delete[](void* p, std::size_t) noexcept { mi_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { mi_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { mi_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { mi_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { mi_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { mi_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { mi_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { mi_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { mi_free(p); }
#endif
