// Whether a view handed out by a parser lies in a buffer of its own: what
// every parser's in_own_buffer() answers (tests and fuzzing check that
// event views point into the input or into the parser, never elsewhere).
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace ringcache::protocol {

// True when the non-empty `view` lies inside [begin, begin + size).
inline bool lies_within(std::string_view view, const char* begin, size_t size) {
  if (view.empty() || begin == nullptr) return false;
  // std::less gives a total order even for pointers into different objects.
  const std::less<const char*> before;
  return !before(view.data(), begin) && !before(begin + size, view.data() + view.size());
}

}  // namespace ringcache::protocol
