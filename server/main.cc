// ringcached: the cache daemon (SPEC §2-§3). main() parses the command line,
// opens the listening sockets, builds the store, starts one EventLoop per
// worker thread, sets the memory limit once everything exists, and then only
// waits for SIGTERM/SIGINT.
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "server/event_loop.h"
#include "server/input_budget.h"
#include "server/listen_sockets.h"
#include "server/log.h"
#include "server/options.h"
#include "server/resource_limits.h"
#include "server/stats.h"
#include "server/worker_sync.h"
#include "store/allocator.h"
#include "store/store.h"

namespace ringcache::server {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

uint32_t hardware_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<uint32_t>(count);
  }
  const unsigned count = std::thread::hardware_concurrency();
  return count == 0 ? 1 : count;
}

void log_memory_limit(const MemoryLimit& limit, uint64_t memory_bytes) {
  switch (limit.status) {
    case MemoryLimitStatus::applied:
      log_info("memory limit: address space %llu bytes measured after start-up; RLIMIT_AS set to "
               "%llu bytes (measured + %llu memory + %llu headroom)",
               static_cast<unsigned long long>(limit.measured_bytes),
               static_cast<unsigned long long>(limit.limit_bytes),
               static_cast<unsigned long long>(memory_bytes),
               static_cast<unsigned long long>(limit.headroom_bytes));
      return;
    case MemoryLimitStatus::skipped_sanitizer:
      log_info("memory limit: sanitizer build, RLIMIT_AS not set (address space %llu bytes "
               "measured; it would be %llu bytes)",
               static_cast<unsigned long long>(limit.measured_bytes),
               static_cast<unsigned long long>(limit.limit_bytes));
      return;
    case MemoryLimitStatus::failed:
      log_info("memory limit: RLIMIT_AS not set: %s", limit.error.c_str());
      return;
  }
}

// Blocks until SIGTERM or SIGINT (blocked in every thread since start-up).
int wait_for_stop_signal(const sigset_t& stop_signals) {
  while (true) {
    int signal_number = 0;
    const int ret = ::sigwait(&stop_signals, &signal_number);
    if (ret == 0) return signal_number;
    if (ret != EINTR) {
      log_info("sigwait: %s; stopping", std::strerror(ret));
      return SIGTERM;
    }
  }
}

int run_daemon(const Options& options) {
  log_set_verbose(options.verbose);

  // A peer that disconnects mid-reply must cost an error code, not the process.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // Before any thread exists, so every worker inherits the mask.
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (RINGCACHE_MIMALLOC && !store::allocator_is_mimalloc()) {
    log_info("fatal: built for mimalloc but allocations are not served by it "
             "(was libmimalloc dropped at link time?)");
    return exit_failure;
  }

  const OpenFilesLimit files = raise_open_files_limit();
  if (!files.error.empty()) {
    log_info("open files limit stays %llu: %s", static_cast<unsigned long long>(files.before),
             files.error.c_str());
  } else if (files.after != files.before) {
    log_info("open files limit raised from %llu to %llu", static_cast<unsigned long long>(files.before),
             static_cast<unsigned long long>(files.after));
  }

  ListenResult listen = open_listeners(options);
  if (listen.status != ListenStatus::ok) {
    log_info("fatal: %s", listen.error.c_str());
    return listen.status == ListenStatus::bad_option ? exit_usage : exit_failure;
  }
  std::string binary_address;
  for (const Listener& listener : listen.listeners) {
    if (listener.kind == ListenerKind::binary && binary_address.empty()) binary_address = listener.address;
    if (listener.kind == ListenerKind::text) {
      log_info("text protocol is not served yet: socket %d (%s) stays unused", listener.fd,
               listener.address.c_str());
    }
  }

  std::unique_ptr<store::Store> store;
  try {
    store::StoreConfig config;
    config.memory_limit_bytes = options.memory_bytes;
    config.threads_max = options.threads;
    store = std::make_unique<store::Store>(config);
  } catch (const std::exception& e) {
    log_info("fatal: cannot create the store: %s", e.what());
    close_listeners(listen.listeners);
    return exit_failure;
  }

  const int stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    log_info("fatal: eventfd: %s", std::strerror(errno));
    close_listeners(listen.listeners);
    return exit_failure;
  }

  StatsRegistry stats(options.threads);
  InputBudget input_budget(input_budget_bytes(options.memory_bytes));
  WorkerSync sync(options.threads);
  protocol::ParserLimits parser_limits{};
  parser_limits.item_max_bytes = options.max_item_bytes;
  WorkerShared shared{.store = *store,
                      .stats = stats,
                      .input_budget = input_budget,
                      .listeners = listen.listeners,
                      .sync = sync,
                      .parser_limits = parser_limits,
                      .max_item_bytes = options.max_item_bytes,
                      .stop_fd = stop_fd};

  std::vector<std::unique_ptr<EventLoop>> loops;
  std::vector<std::thread> threads;
  bool started = true;
  std::string error;
  try {
    for (uint32_t i = 0; i < options.threads; ++i) {
      loops.push_back(std::make_unique<EventLoop>(i, shared));
      EventLoop* loop = loops.back().get();
      threads.emplace_back([loop] { loop->run(); });
    }
  } catch (const std::exception& e) {
    error = std::string("cannot start the worker threads: ") + e.what();
    started = false;
  }
  // Threads that never started count as failed so that wait_ready returns.
  for (size_t i = threads.size(); i < options.threads; ++i) {
    sync.report_failed(static_cast<uint32_t>(i), "not started");
  }
  if (!sync.wait_ready(error) || !started) {
    log_info("fatal: %s", error.c_str());
    sync.abort();
    for (std::thread& thread : threads) thread.join();
    close_listeners(listen.listeners);
    ::close(stop_fd);
    return exit_failure;
  }

  log_memory_limit(apply_memory_limit(options.memory_bytes, options.threads), options.memory_bytes);
  log_info("listening binary=%s text=off threads=%u memory=%llu", binary_address.c_str(),
           options.threads, static_cast<unsigned long long>(options.memory_bytes));
  sync.start();

  const int signal_number = wait_for_stop_signal(stop_signals);
  log_info("%s: shutting down", sync.fatal() ? "worker failure" : ::strsignal(signal_number));
  const uint64_t one = 1;
  if (::write(stop_fd, &one, sizeof(one)) != sizeof(one)) {
    log_info("fatal: cannot wake the workers: %s", std::strerror(errno));
    return exit_failure;
  }
  for (std::thread& thread : threads) thread.join();
  loops.clear();
  store.reset();
  // Last: no ring refers to the sockets any more, so the port is free at once.
  close_listeners(listen.listeners);
  ::close(stop_fd);
  log_info("stopped");
  return sync.fatal() ? exit_failure : exit_ok;
}

}  // namespace
}  // namespace ringcache::server

int main(int argc, char** argv) {
  using namespace ringcache::server;
  const std::vector<const char*> args(argv + 1, argv + argc);
  const ParseResult parsed = parse_options(args, hardware_threads());
  switch (parsed.status) {
    case ParseStatus::help:
      std::fputs(usage_text().c_str(), stdout);
      return exit_ok;
    case ParseStatus::version:
      std::fputs(version_text().c_str(), stdout);
      return exit_ok;
    case ParseStatus::error:
      std::fprintf(stderr, "ringcached: %s\nTry 'ringcached -h' for more information.\n",
                   parsed.error.c_str());
      return exit_usage;
    case ParseStatus::run:
      break;
  }
  try {
    return run_daemon(parsed.options);
  } catch (const std::exception& e) {
    log_info("fatal: %s", e.what());
    return exit_failure;
  }
}
