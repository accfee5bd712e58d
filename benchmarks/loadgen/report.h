// The final summary: a human-readable block and one machine-readable line
// ("RESULT key=value ...", keys fixed, latencies in microseconds) for scripts.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "options.h"
#include "worker.h"

namespace ringcache::loadgen {

struct run_summary {
  const loadgen_options* options = nullptr;
  std::string peer_name;
  double measured_seconds = 0;
  double prefill_seconds = 0;
  worker_totals totals;
  std::optional<double> server_cpu_seconds;  // over the measured interval
  double loadgen_cpu_seconds = 0;            // over the measured interval
  std::string failure;                       // empty when the run succeeded
};

void print_summary(std::FILE* out, const run_summary& summary);
void print_result_line(std::FILE* out, const run_summary& summary);

}  // namespace ringcache::loadgen
