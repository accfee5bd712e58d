// memcpy/memcmp for byte strings that may be empty: an empty string_view
// may hold a null pointer, and passing null to memcpy is undefined even for
// zero bytes (UBSan reports it).
#pragma once

#include <cstddef>
#include <cstring>

namespace ringcache::store {

inline void copy_bytes(char* dst, const char* src, std::size_t n) {
  if (n != 0) std::memcpy(dst, src, n);
}

inline bool equal_bytes(const char* a, const char* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n) == 0;
}

}  // namespace ringcache::store
