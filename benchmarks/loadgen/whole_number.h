// A whole number in a range, spelled in decimal and nothing else: what the
// load generator's and the echo server's command lines accept.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace ringcache::loadgen {

template <class number>
std::optional<number> parse_whole_number(std::string_view text, number low, number high) {
  number value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < low ||
      value > high) {
    return std::nullopt;
  }
  return value;
}

}  // namespace ringcache::loadgen
