// ringcached: the cache daemon (docs/binary_protocol.md, docs/command_line.md). main() parses the command line;
// run_daemon() prepares the process (signals, limits); build_and_serve()
// opens the listening sockets and builds the store and replication, each
// owned by an RAII holder so that every way out closes them; serve() starts
// one EventLoop per worker thread with the processors of process/, sets the
// memory limit once everything exists, waits for SIGTERM/SIGINT (reloading
// the TLS certificate on SIGHUP) and stops the workers.
#include <sched.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "common/non_copyable.h"
#include "server/io/event_loop.h"
#include "server/io/input_budget.h"
#include "server/io/log.h"
#include "server/io/tls/tls_context.h"
#include "server/io/worker_sync.h"
#include "server/listen_sockets.h"
#include "server/options.h"
#include "server/process/binary_stats.h"
#include "server/process/text_stats.h"
#include "server/process/worker_processors.h"
#include "server/replication/replicator.h"
#include "server/resource_limits.h"
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

// Without --node-id (docs/replication.md), a random id 1-4095 (its own version tag).
std::string random_node_id() {
  uint16_t value = 0;
  if (::getrandom(&value, sizeof(value), 0) != sizeof(value)) {
    value = static_cast<uint16_t>(::getpid() ^ ::time(nullptr));
  }
  return std::to_string(1 + value % replication::node_tag_max);
}

void replication_info(const char* line) { log_info("%s", line); }
void replication_debug(const char* line) { log_debug("%s", line); }

// The Replicator when --peer is given (nullptr otherwise), or an error.
std::unique_ptr<replication::Replicator> make_replicator(const Options& options, store::Store& store,
                                                         const std::string& binary_address,
                                                         const TlsContext* tls, std::string& error) {
  if (options.peers.empty()) return nullptr;
  replication::ReplicationConfig config;
  config.node_id = options.node_id.empty() ? random_node_id() : options.node_id;
  config.peers = options.peers;
  for (const replication::PeerAddress& peer : config.peers) {
    if (replication::names_this_node(peer, binary_address)) {
      error = "--peer " + peer.text() + " is this node itself: list the other nodes of the mesh";
      return nullptr;
    }
  }
  if (!options.peer_secret_file.empty()) {
    replication::PeerSecret secret;
    if (replication::load_peer_secret(options.peer_secret_file, secret, error) != replication::SecretFileStatus::ok) {
      return nullptr;
    }
    // A first MAC and nonce here, before the memory limit is measured:
    // libcrypto sets itself up (its random generator included) once.
    replication::AuthNonce nonce{};
    if (!replication::make_auth_nonce(nonce)) {
      error = "libcrypto cannot give random bytes";
      return nullptr;
    }
    (void)replication::auth_mac(secret, replication::AuthRole::initiator,
                                replication::AuthTranscript{config.node_id, config.node_id, nonce, nonce});
    config.secret = std::make_shared<const replication::PeerSecret>(std::move(secret));
  }
  config.max_clock_skew_ms = int64_t{options.max_clock_skew_s} * 1000;
  config.tls = tls;
  config.tls_handshake_ms_max = static_cast<int64_t>(options.tls_handshake_ms_max);
  config.workers = options.threads;
  config.item_bytes_max = options.item_bytes_max;
  config.tuning = replication::tuning_for_memory(options.memory_bytes);
  config.info = &replication_info;
  config.debug = &replication_debug;
  return std::make_unique<replication::Replicator>(store, std::move(config));
}

// Blocks until SIGTERM or SIGINT (blocked in every thread since start-up).
// With TLS, SIGHUP (blocked too) reloads the certificate and key: the next
// connections use them, open ones keep theirs.
int wait_for_stop_signal(const sigset_t& stop_signals, TlsContext* tls) {
  while (true) {
    int signal_number = 0;
    const int ret = ::sigwait(&stop_signals, &signal_number);
    if (ret == 0 && signal_number == SIGHUP && tls != nullptr) {
      std::string error;
      if (tls->reload(error)) {
        log_info("tls: SIGHUP: reloaded --tls-cert and --tls-key; new connections%s get %s; open ones keep theirs",
                 tls->settings().peer_links ? " and replication links" : "", tls->describe().c_str());
      } else {
        log_info("tls: SIGHUP: reload failed, still serving the previous certificate: %s", error.c_str());
      }
      continue;
    }
    if (ret == 0) return signal_number;
    if (ret != EINTR) {
      log_info("sigwait: %s; stopping", std::strerror(ret));
      return SIGTERM;
    }
  }
}

// The stop eventfd: every worker polls it; writing to it starts their
// shut-down. Closed when it goes, on every path out of the daemon.
class StopEvent : NonCopyable {
 public:
  StopEvent() : fd_(::eventfd(0, EFD_CLOEXEC)) {}
  ~StopEvent() {
    if (fd_ >= 0) ::close(fd_);
  }

  int fd() const { return fd_; }
  bool signal() const {
    const uint64_t one = 1;
    return ::write(fd_, &one, sizeof(one)) == sizeof(one);
  }

 private:
  int fd_;
};

// The worker threads and their event loops. Joins every thread it started
// when it goes, so that no path out leaves a thread running.
class Workers : NonCopyable {
 public:
  Workers() = default;
  ~Workers() { join(); }

  // Starts one EventLoop per worker; false (error set) if a thread could not
  // be started. Workers that never started are reported failed to `sync`,
  // so that WorkerSync::wait_ready returns.
  bool start(WorkerShared& shared, uint32_t count, std::string& error) {
    try {
      for (uint32_t i = 0; i < count; ++i) {
        loops_.push_back(std::make_unique<EventLoop>(i, shared));
        EventLoop* loop = loops_.back().get();
        threads_.emplace_back([loop] { loop->run(); });
      }
    } catch (const std::exception& e) {
      error = std::string("cannot start the worker threads: ") + e.what();
    }
    for (size_t i = threads_.size(); i < count; ++i) {
      shared.sync.report_failed(static_cast<uint32_t>(i), "not started");
    }
    return threads_.size() == count;
  }
  void join() {
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  // Destroyed after the threads are joined (the destructor joins first).
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
};

// Signals, the allocator check and the open-files limit, before any thread
// exists. Returns the signals that stop the daemon (now blocked), or false
// when the process cannot run.
bool prepare_process(const Options& options, sigset_t& stop_signals) {
  log_set_verbose(options.verbose);
  // A peer that disconnects mid-reply must cost an error code, not the process.
  ::signal(SIGPIPE, SIG_IGN);
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // SIGHUP reloads the TLS certificate (wait_for_stop_signal); without TLS
  // it keeps its default action.
  if (!options.tls_cert.empty()) sigaddset(&stop_signals, SIGHUP);
  // Before any thread exists, so every worker inherits the mask.
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (RINGCACHE_MIMALLOC && !store::allocator_is_mimalloc()) {
    log_info("fatal: built for mimalloc but allocations are not served by it "
             "(was libmimalloc dropped at link time?)");
    return false;
  }
  const OpenFilesLimit files = raise_open_files_limit();
  if (!files.error.empty()) {
    log_info("open files limit stays %llu: %s", static_cast<unsigned long long>(files.before),
             files.error.c_str());
  } else if (files.after != files.before) {
    log_info("open files limit raised from %llu to %llu", static_cast<unsigned long long>(files.before),
             static_cast<unsigned long long>(files.after));
  }
  return true;
}

std::unique_ptr<store::Store> make_store(const Options& options) {
  store::StoreConfig config;
  config.memory_limit_bytes = options.memory_bytes;
  // Replication needs versions, and its thread a store handle of its own.
  config.versioned = !options.peers.empty();
  config.threads_max = options.threads + (config.versioned ? 1 : 0);
  config.upload_bytes_max =
      upload_bytes_max_for(options.memory_bytes, options.item_bytes_max, config.segment_size_bytes);
  return std::make_unique<store::Store>(config);
}

// The second job of the daemon, once its parts exist: run the workers until
// SIGTERM or SIGINT (or a worker failure), then stop them. Everything it
// builds is gone when it returns; the caller's parts outlive it.
// `stopped` tells whether it got as far as stopping the workers it started.
int serve(const Options& options, const ListeningSockets& sockets, const StopEvent& stop,
          const sigset_t& stop_signals, store::Store& store, replication::Replicator* replicator,
          Authenticator* auth, TlsContext* tls, bool& stopped) {
  std::string binary_address;
  std::string text_address = "off";
  for (const Listener& listener : sockets.listeners()) {
    if (listener.kind == ListenerKind::binary && binary_address.empty()) binary_address = listener.address;
    if (listener.kind == ListenerKind::text) text_address = listener.address;
  }
  const bool text_on = text_address != "off";

  StatsRegistry stats(options.threads);
  TextStatsRegistry text_stats(options.threads);
  InputBudget input_budget(input_budget_bytes(options.memory_bytes));
  WorkerSync sync(options.threads);
  protocol::ParserLimits parser_limits{};
  parser_limits.item_bytes_max = options.item_bytes_max;
  parser_limits.auth = auth != nullptr;
  const ProcessShared process_shared{.store = store,
                                     .stats = stats,
                                     .input_budget = input_budget,
                                     .parser_limits = parser_limits,
                                     .item_bytes_max = options.item_bytes_max,
                                     .text_stats = text_on ? &text_stats : nullptr,
                                     .replicator = replicator,
                                     .auth = auth};
  ProcessorsFactory processors(process_shared);
  WorkerShared shared{.services = processors,
                      .input_budget = input_budget,
                      .listeners = sockets.listeners(),
                      .sync = sync,
                      .serve_text = text_on,
                      .upload_idle_ms_max = options.upload_idle_ms_max,
                      .tls = tls,
                      .tls_handshake_ms_max = options.tls_handshake_ms_max,
                      .stop_fd = stop.fd()};

  Workers workers;
  std::string error;
  bool started = workers.start(shared, options.threads, error);
  // Before the memory limit is measured: the replication thread's stack
  // and heap count like a worker's.
  if (started && replicator != nullptr && !replicator->start(error)) started = false;
  if (!sync.wait_ready(error) || !started) {
    log_info("fatal: %s", error.c_str());
    sync.abort();
    return exit_failure;
  }

  const uint32_t allocating_threads = options.threads + (replicator != nullptr ? 1 : 0);
  log_memory_limit(apply_memory_limit(options.memory_bytes, allocating_threads), options.memory_bytes);
  log_info("uploads: values still arriving may hold %llu bytes (UPLOAD_BYTES_MAX); a connection idle "
           "for %llu s in the middle of a request is closed",
           static_cast<unsigned long long>(store.config().upload_bytes_max),
           static_cast<unsigned long long>(options.upload_idle_ms_max / 1000));
  log_info("listening binary=%s text=%s threads=%u memory=%llu", binary_address.c_str(), text_address.c_str(),
           options.threads, static_cast<unsigned long long>(options.memory_bytes));
  sync.start();

  const int signal_number = wait_for_stop_signal(stop_signals, tls);
  log_info("%s: shutting down", sync.fatal() ? "worker failure" : ::strsignal(signal_number));
  if (!stop.signal()) {
    // The workers cannot be told to stop, so they cannot be joined: leave
    // without unwinding (the kernel closes every socket).
    log_info("fatal: cannot wake the workers: %s", std::strerror(errno));
    std::_Exit(exit_failure);
  }
  workers.join();
  // The replication thread stops before the workers' connections (their
  // incoming streams use its counters) and the store go.
  if (replicator != nullptr) replicator->stop();
  stopped = true;
  return sync.fatal() ? exit_failure : exit_ok;
}

// The first job: build the daemon's parts (the listening sockets, the store,
// replication, the stop event), each owned so that every return closes what
// was opened, in reverse order: the listening sockets last, so the port is
// free at once. Then serve() with them.
int build_and_serve(const Options& options, const sigset_t& stop_signals, bool& stopped) {
  // Before any port is opened: a daemon that cannot check credentials must not serve.
  std::unique_ptr<Authenticator> auth;
  if (!options.auth_file.empty()) {
    AuthTable table;
    std::string error;
    if (!AuthTable::load(options.auth_file, table, error)) {
      log_info("fatal: %s", error.c_str());
      return exit_usage;
    }
    log_info("auth: clients must authenticate on every client port (%zu users in --auth-file %s)", table.size(),
             options.auth_file.c_str());
    auth = std::make_unique<Authenticator>(std::move(table), &replication_info);
  }

  // Likewise a daemon told to speak TLS must not serve without it.
  std::unique_ptr<TlsContext> tls;
  if (!options.tls_cert.empty()) {
    std::string error;
    tls = TlsContext::create(tls_settings(options), error);
    if (!tls) {
      log_info("fatal: %s", error.c_str());
      return exit_usage;
    }
    log_info("tls: on for every client port%s; %s; client certificates %s; handshakes must finish within %llu s",
             options.peers.empty() ? "" : " and replication link (mutual, --tls-ca)", tls->describe().c_str(),
             options.tls_verify_clients ? "required (--tls-ca)"
             : options.tls_ca.empty()   ? "not asked for"
                                        : "asked for (--tls-ca), not required",
             static_cast<unsigned long long>(options.tls_handshake_ms_max / 1000));
  }

  ListenResult listen = open_listeners(options);
  if (listen.status != ListenStatus::ok) {
    log_info("fatal: %s", listen.error.c_str());
    return listen.status == ListenStatus::bad_option ? exit_usage : exit_failure;
  }
  const ListeningSockets sockets(std::move(listen.listeners));

  std::unique_ptr<store::Store> store;
  try {
    store = make_store(options);
  } catch (const std::exception& e) {
    log_info("fatal: cannot create the store: %s", e.what());
    return exit_failure;
  }

  std::unique_ptr<replication::Replicator> replicator;
  try {
    std::string binary_address;
    for (const Listener& listener : sockets.listeners()) {
      if (listener.kind == ListenerKind::binary) {
        binary_address = listener.address;
        break;
      }
    }
    std::string error;
    replicator = make_replicator(options, *store, binary_address, tls.get(), error);
    if (!error.empty()) {
      log_info("fatal: %s", error.c_str());
      return exit_usage;
    }
  } catch (const std::exception& e) {
    log_info("fatal: cannot set up replication: %s", e.what());
    return exit_failure;
  }
  if (replicator) {
    // append/prepend/incr/decr/touch rewrite items: the result must carry a
    // version newer than what it replaced, or peers would ignore it.
    store->set_version_source(
        [](void* clock) { return static_cast<replication::HybridClock*>(clock)->next(); },
        &replicator->clock());
  }

  const StopEvent stop;
  if (stop.fd() < 0) {
    log_info("fatal: eventfd: %s", std::strerror(errno));
    return exit_failure;
  }

  const int code = serve(options, sockets, stop, stop_signals, *store, replicator.get(), auth.get(), tls.get(),
                               stopped);
  // Before the store, which replication's handles point into.
  replicator.reset();
  return code;
}

int run_daemon(const Options& options) {
  sigset_t stop_signals;
  if (!prepare_process(options, stop_signals)) return exit_failure;
  bool stopped = false;
  const int code = build_and_serve(options, stop_signals, stopped);
  if (stopped) log_info("stopped");
  return code;
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
