#include "process_cpu.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace ringcache::loadgen {

std::optional<double> process_cpu_seconds(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  if (!file) return std::nullopt;
  const std::string content((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces and
  // parentheses itself: fields are counted from the last ')'.
  const std::size_t name_end = content.rfind(')');
  if (name_end == std::string::npos) return std::nullopt;
  std::string_view rest = std::string_view(content).substr(name_end + 1);
  // After ')': state is field 3, utime field 14, stime field 15.
  constexpr int utime_position = 14 - 3;
  std::uint64_t ticks[2] = {0, 0};
  for (int field = 0; field <= utime_position + 1; ++field) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const std::size_t end = rest.find(' ');
    const std::string_view token = rest.substr(0, end);
    if (token.empty()) return std::nullopt;
    if (field >= utime_position) {
      std::uint64_t& slot = ticks[field - utime_position];
      const auto [stop, error] = std::from_chars(token.data(), token.data() + token.size(), slot);
      if (error != std::errc{} || stop != token.data() + token.size()) return std::nullopt;
    }
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  }
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (ticks_per_second <= 0) return std::nullopt;
  return static_cast<double>(ticks[0] + ticks[1]) / static_cast<double>(ticks_per_second);
}

double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& value) {
    return static_cast<double>(value.tv_sec) + static_cast<double>(value.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace ringcache::loadgen
