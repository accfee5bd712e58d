// The text of a status enum, looked up in a table that lists one text per
// status in the enum's order (describe() of fd_pass.cc and
// drop_privileges.cc). The caller names the enum's last status, so a table
// that lacks a text, or has one too many, does not compile.
#pragma once

#include <cassert>
#include <cstddef>

namespace ringcache::privsep {

template <auto last_status, std::size_t N>
const char* status_text(const char* const (&texts)[N], decltype(last_status) status, const char* unknown) {
  static_assert(N == static_cast<std::size_t>(last_status) + 1, "one text per status, in the enum's order");
  const auto index = static_cast<std::size_t>(status);
  assert(index < N && "a status without a text");
  return index < N ? texts[index] : unknown;
}

}  // namespace ringcache::privsep
