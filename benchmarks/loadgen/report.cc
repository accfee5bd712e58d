#include "report.h"

#include <cassert>

namespace ringcache::loadgen {

namespace {

struct latency_figures {
  double p50_us, p99_us, p999_us, max_us;
};

latency_figures latency_of(const latency_histogram& histogram) {
  const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return latency_figures{us(histogram.value_at_quantile(0.50)),
                         us(histogram.value_at_quantile(0.99)),
                         us(histogram.value_at_quantile(0.999)), us(histogram.max())};
}

std::uint64_t operations(const worker_totals& totals) { return totals.gets + totals.puts; }

double per_second(std::uint64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

// CPU seconds per million requests; negative when unknown.
double cpu_per_million(std::optional<double> cpu_seconds, std::uint64_t requests) {
  if (!cpu_seconds || requests == 0) return -1;
  return *cpu_seconds / (static_cast<double>(requests) / 1e6);
}

std::uint64_t replies_of(const worker_totals& totals, reply_status status) {
  return totals.replies[static_cast<std::size_t>(status)];
}

}  // namespace

void print_summary(std::FILE* out, const run_summary& summary) {
  assert(summary.options != nullptr);
  const loadgen_options& options = *summary.options;
  const worker_totals& totals = summary.totals;
  const std::uint64_t ops = operations(totals);
  const std::uint64_t hits = replies_of(totals, reply_status::hit);
  const std::uint64_t misses = replies_of(totals, reply_status::miss);
  std::fprintf(out,
               "ringcache-loadgen: %s protocol to %s, %u threads, %u connections, pipeline %u\n"
               "  %llu keys (%s) of %u B, values of %llu B, get ratio %.2f\n",
               std::string(protocol_name(options.protocol)).c_str(), summary.peer_name.c_str(),
               options.threads, options.connections, options.pipeline,
               static_cast<unsigned long long>(options.keys),
               describe_popularity(options.key_popularity).c_str(), options.key_size,
               static_cast<unsigned long long>(options.value_size), options.get_ratio);
  if (options.prefill) {
    std::fprintf(out, "prefill     %llu PUTs in %.2f s, %llu errors\n",
                 static_cast<unsigned long long>(totals.prefill_replies), summary.prefill_seconds,
                 static_cast<unsigned long long>(totals.prefill_errors));
  }
  std::fprintf(out, "measured    %.2f s after %.2f s of warmup\n", summary.measured_seconds,
               options.warmup_seconds);
  std::fprintf(out, "throughput  %.0f ops/s (%llu requests)\n",
               per_second(ops, summary.measured_seconds), static_cast<unsigned long long>(ops));
  std::fprintf(out, "gets        %llu: %llu hits, %llu misses (hit ratio %.1f %%)\n",
               static_cast<unsigned long long>(totals.gets),
               static_cast<unsigned long long>(hits), static_cast<unsigned long long>(misses),
               hits + misses > 0 ? 100.0 * static_cast<double>(hits) /
                                       static_cast<double>(hits + misses)
                                 : 0.0);
  std::fprintf(out, "puts        %llu: %llu stored\n",
               static_cast<unsigned long long>(totals.puts),
               static_cast<unsigned long long>(replies_of(totals, reply_status::stored)));
  std::fprintf(out, "errors      %llu", static_cast<unsigned long long>(totals.errors()));
  for (std::size_t i = 0; i < reply_status_count; ++i) {
    const auto status = static_cast<reply_status>(i);
    if (is_error(status) && totals.replies[i] > 0) {
      std::fprintf(out, " %s=%llu", std::string(reply_status_name(status)).c_str(),
                   static_cast<unsigned long long>(totals.replies[i]));
    }
  }
  std::fputc('\n', out);
  const latency_figures latency = latency_of(totals.latency);
  std::fprintf(out, "latency us  p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", latency.p50_us,
               latency.p99_us, latency.p999_us, latency.max_us);
  std::fprintf(out, "received    %.1f MiB of values (%.1f MiB/s)\n",
               static_cast<double>(totals.value_bytes_received) / (1024.0 * 1024.0),
               per_second(totals.value_bytes_received, summary.measured_seconds) /
                   (1024.0 * 1024.0));
  if (summary.server_cpu_seconds) {
    std::fprintf(out, "server cpu  %.2f s, %.3f s per million requests\n",
                 *summary.server_cpu_seconds, cpu_per_million(summary.server_cpu_seconds, ops));
  }
  std::fprintf(out, "client cpu  %.2f s, %.3f s per million requests\n",
               summary.loadgen_cpu_seconds,
               cpu_per_million(summary.loadgen_cpu_seconds, ops));
  if (!summary.failure.empty()) std::fprintf(out, "FAILED      %s\n", summary.failure.c_str());
}

void print_result_line(std::FILE* out, const run_summary& summary) {
  const worker_totals& totals = summary.totals;
  const std::uint64_t ops = operations(totals);
  const latency_figures latency = latency_of(totals.latency);
  std::fprintf(out,
               "RESULT status=%s ops=%llu seconds=%.3f ops_per_s=%.0f gets=%llu puts=%llu "
               "hits=%llu misses=%llu errors=%llu",
               summary.failure.empty() ? "ok" : "failed", static_cast<unsigned long long>(ops),
               summary.measured_seconds, per_second(ops, summary.measured_seconds),
               static_cast<unsigned long long>(totals.gets),
               static_cast<unsigned long long>(totals.puts),
               static_cast<unsigned long long>(replies_of(totals, reply_status::hit)),
               static_cast<unsigned long long>(replies_of(totals, reply_status::miss)),
               static_cast<unsigned long long>(totals.errors()));
  std::fprintf(out, " p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f", latency.p50_us,
               latency.p99_us, latency.p999_us, latency.max_us);
  std::fprintf(out, " client_cpu_s_per_mreq=%.3f",
               cpu_per_million(summary.loadgen_cpu_seconds, ops));
  if (summary.server_cpu_seconds) {
    std::fprintf(out, " server_cpu_s_per_mreq=%.3f",
                 cpu_per_million(summary.server_cpu_seconds, ops));
  }
  std::fputc('\n', out);
}

}  // namespace ringcache::loadgen
