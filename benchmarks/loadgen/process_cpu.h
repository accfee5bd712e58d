// CPU time of a process from /proc/PID/stat (user + system, all threads), used
// to report the server's CPU seconds per million requests.
#pragma once

#include <optional>

namespace ringcache::loadgen {

// Seconds, or nullopt if the process does not exist or the file is unreadable.
std::optional<double> process_cpu_seconds(int pid);

// CPU seconds used by this process so far (getrusage).
double own_cpu_seconds();

}  // namespace ringcache::loadgen
