// ringcache-loadgen: closed-loop load generator for ringcached (binary
// protocol) and memcached-compatible servers (text or binary protocol). See README.md.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "monotonic_clock.h"
#include "options.h"
#include "process_cpu.h"
#include "report.h"
#include "run_control.h"
#include "tcp_connect.h"
#include "tls_client.h"
#include "worker.h"

namespace ringcache::loadgen {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
// The main thread wakes at least this often to notice SIGINT and failures.
constexpr std::uint64_t main_poll_ns = 50'000'000;

void on_interrupt(int) { interrupt_requested.store(true, std::memory_order_relaxed); }

void sleep_until_ns(std::uint64_t deadline_ns) {
  const std::uint64_t now = monotonic_ns();
  if (deadline_ns <= now) return;
  std::this_thread::sleep_for(std::chrono::nanoseconds(deadline_ns - now));
}

std::vector<std::byte> make_value(std::uint64_t size) {
  std::vector<std::byte> value(size);
  for (std::size_t i = 0; i < value.size(); ++i) {
    value[i] = static_cast<std::byte>('a' + i % 26);
  }
  return value;
}

struct progress_printer {
  const std::vector<std::unique_ptr<worker>>* workers;
  std::uint64_t last_completed = 0;
  std::uint64_t last_errors = 0;
  std::uint64_t last_ns = 0;

  void print(std::uint64_t now_ns, std::uint64_t warmup_start_ns, std::uint64_t measure_start_ns) {
    std::uint64_t completed = 0;
    std::uint64_t errors = 0;
    for (const auto& each : *workers) {
      completed += each->progress().completed.load(std::memory_order_relaxed);
      errors += each->progress().errors.load(std::memory_order_relaxed);
    }
    const double seconds = static_cast<double>(now_ns - last_ns) / 1e9;
    std::fprintf(stderr, "[%6.1f s] %-7s %10.0f ops/s  %llu errors\n",
                 static_cast<double>(now_ns - warmup_start_ns) / 1e9,
                 last_ns + (now_ns - last_ns) / 2 < measure_start_ns ? "warmup" : "load",
                 seconds > 0 ? static_cast<double>(completed - last_completed) / seconds : 0.0,
                 static_cast<unsigned long long>(errors - last_errors));
    last_completed = completed;
    last_errors = errors;
    last_ns = now_ns;
  }
};

// Connects every connection and hands it to its worker; false after saying why.
// With TLS each handshake completes here, before the workers start: the
// measured interval holds no handshake.
bool open_connections(const loadgen_options& options, const resolved_address& peer,
                      const tls_client_context* tls,
                      std::vector<std::unique_ptr<worker>>& workers) {
  for (std::uint32_t index = 0; index < options.connections; ++index) {
    std::string error;
    const int fd = connect_tcp(peer, error);
    if (fd < 0) {
      std::fprintf(stderr, "ringcache-loadgen: cannot connect to %s (connection %u of %u): %s\n",
                   peer.name.c_str(), index + 1, options.connections, error.c_str());
      return false;
    }
    ssl_handle session;
    if (tls != nullptr) {
      session = tls->connect(fd, options.host, error);
      if (!session) {
        std::fprintf(stderr, "ringcache-loadgen: %s (connection %u of %u): %s\n",
                     peer.name.c_str(), index + 1, options.connections, error.c_str());
        ::close(fd);
        return false;
      }
    }
    int error_number = 0;
    if (!workers[index % options.threads]->add_connection(fd, std::move(session), index,
                                                          error_number)) {
      std::fprintf(stderr, "ringcache-loadgen: epoll refused connection %u: %s\n", index + 1,
                   std::strerror(error_number));
      return false;
    }
  }
  return true;
}

struct interval_cpu {
  bool measured = false;  // false when the run ended before the interval began
  std::optional<double> server_seconds;
  double own_seconds = 0;
};

// Prints progress once a second until the measured interval ends (or is cut
// short by SIGINT or a failure) and takes CPU readings at both of its ends.
interval_cpu watch_interval(const loadgen_options& options, run_control& control,
                            const std::vector<std::unique_ptr<worker>>& workers,
                            std::uint64_t warmup_start_ns, std::uint64_t measure_start_ns) {
  progress_printer progress{&workers, 0, 0, warmup_start_ns};
  std::uint64_t next_tick_ns = warmup_start_ns + nanoseconds_per_second;
  std::optional<double> server_cpu_start;
  double own_cpu_start = 0;
  interval_cpu result;
  for (;;) {
    const std::uint64_t now = monotonic_ns();
    if (interrupt_requested.load(std::memory_order_relaxed) ||
        control.failed.load(std::memory_order_relaxed)) {
      control.stop_early(now);
    }
    const std::uint64_t end_ns = control.measure_end_ns.load(std::memory_order_relaxed);
    if (!result.measured && now >= measure_start_ns && now < end_ns) {
      result.measured = true;
      if (options.server_pid) server_cpu_start = process_cpu_seconds(*options.server_pid);
      own_cpu_start = own_cpu_seconds();
    }
    if (now >= next_tick_ns) {
      progress.print(now, warmup_start_ns, measure_start_ns);
      next_tick_ns += nanoseconds_per_second;
    }
    if (now >= end_ns) break;
    std::uint64_t wake_ns = now + main_poll_ns;
    for (const std::uint64_t event : {next_tick_ns, end_ns, measure_start_ns}) {
      if (event > now && event < wake_ns) wake_ns = event;
    }
    sleep_until_ns(wake_ns);
  }
  if (result.measured) {
    if (server_cpu_start) {
      const std::optional<double> server_cpu_end = process_cpu_seconds(*options.server_pid);
      if (server_cpu_end) result.server_seconds = *server_cpu_end - *server_cpu_start;
    }
    result.own_seconds = own_cpu_seconds() - own_cpu_start;
  }
  return result;
}

int run(const loadgen_options& options) {
  resolved_address peer;
  std::string error;
  if (!resolve_address(options.host, options.port, peer, error)) {
    std::fprintf(stderr, "ringcache-loadgen: %s\n", error.c_str());
    return exit_failed;
  }
  tls_client_context tls;
  if (options.tls && !tls.open(options.tls_ca_file, error)) {
    std::fprintf(stderr, "ringcache-loadgen: %s\n", error.c_str());
    return exit_failed;
  }
  const std::vector<std::byte> value = make_value(options.value_size);
  run_control control(static_cast<std::ptrdiff_t>(options.threads) + 1, options.warmup_seconds,
                      options.duration_seconds);
  std::vector<std::unique_ptr<worker>> workers;
  for (unsigned i = 0; i < options.threads; ++i) {
    workers.push_back(
        std::make_unique<worker>(worker_setup{i, &options, value, &control, peer.name}));
  }
  if (!open_connections(options, peer, options.tls ? &tls : nullptr, workers)) return exit_failed;

  const std::uint64_t prefill_start_ns = monotonic_ns();
  std::vector<std::thread> threads;
  for (auto& each : workers) threads.emplace_back([&each] { each->run(); });
  if (options.prefill) {
    std::fprintf(stderr, "prefilling %llu keys...\n",
                 static_cast<unsigned long long>(options.keys));
  }
  control.start_line.arrive_and_wait();
  const std::uint64_t measure_start_ns = control.measure_start_ns.load();
  const std::uint64_t warmup_start_ns =
      measure_start_ns - static_cast<std::uint64_t>(options.warmup_seconds * 1e9);
  const interval_cpu cpu =
      watch_interval(options, control, workers, warmup_start_ns, measure_start_ns);
  for (std::thread& each : threads) each.join();

  run_summary summary;
  summary.options = &options;
  summary.peer_name = peer.name;
  summary.prefill_seconds = static_cast<double>(warmup_start_ns - prefill_start_ns) / 1e9;
  const std::uint64_t end_ns = control.measure_end_ns.load();
  summary.measured_seconds =
      end_ns > measure_start_ns ? static_cast<double>(end_ns - measure_start_ns) / 1e9 : 0.0;
  for (const auto& each : workers) summary.totals.merge(each->totals());
  summary.server_cpu_seconds = cpu.server_seconds;
  summary.loadgen_cpu_seconds = cpu.own_seconds;
  summary.failure = control.failure_message();
  if (options.server_pid && cpu.measured && !cpu.server_seconds) {
    std::fprintf(stderr, "ringcache-loadgen: note: could not read the CPU time of pid %d\n",
                 *options.server_pid);
  }
  if (interrupt_requested.load()) std::fprintf(stderr, "ringcache-loadgen: interrupted\n");
  print_summary(stdout, summary);
  print_result_line(stdout, summary);
  std::fflush(stdout);
  if (!summary.failure.empty()) {
    std::fprintf(stderr, "ringcache-loadgen: %s\n", summary.failure.c_str());
    return exit_failed;
  }
  return exit_ok;
}

}  // namespace
}  // namespace ringcache::loadgen

int main(int argc, char** argv) {
  using namespace ringcache::loadgen;
  parse_result parsed = parse_options(argc, argv);
  if (parsed.status == parse_status::help) {
    std::fputs(usage_text().c_str(), stdout);
    return exit_ok;
  }
  if (parsed.status == parse_status::invalid) {
    std::fprintf(stderr, "ringcache-loadgen: %s\n(see --help)\n", parsed.message.c_str());
    return exit_usage;
  }
  loadgen_options& options = parsed.options;
  if (options.threads > options.connections) {
    std::fprintf(stderr, "ringcache-loadgen: note: using %u threads, one per connection\n",
                 options.connections);
    options.threads = options.connections;
  }
  if (options.server_pid && !process_cpu_seconds(*options.server_pid)) {
    std::fprintf(stderr, "ringcache-loadgen: --server-pid %d: cannot read /proc/%d/stat\n",
                 *options.server_pid, *options.server_pid);
    return exit_usage;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  return run(options);
}
