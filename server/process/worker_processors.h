// WorkerProcessors: one worker's protocol side, as its event loop sees it
// (io/worker_services.h): the worker's store handle, its write path
// (write_path.h, replicated or not, chosen here once), the binary, text and
// memcached binary processors, and a session for each connection it accepts. Built in the
// worker's own thread by ProcessorsFactory; main.cc hands the factory to
// the event loops.
#pragma once

#include <cstdint>
#include <memory>

#include "server/io/input_budget.h"
#include "server/io/worker_services.h"
#include "server/process/auth.h"
#include "server/process/binary_process.h"
#include "server/process/binary_stats.h"
#include "server/process/mc_binary_process.h"
#include "server/process/text_process.h"
#include "server/process/text_stats.h"
#include "server/process/write_path.h"
#include "server/protocol/binary/binary_parser.h"
#include "server/replication/replicator.h"
#include "store/store.h"

namespace ringcache::server {

// What every worker's processors share; read-only once the workers run.
struct ProcessShared {
  store::Store& store;
  StatsRegistry& stats;
  const InputBudget& input_budget;
  protocol::ParserLimits parser_limits;
  uint64_t item_bytes_max;
  // The text port's counters; nullptr when no text port is served.
  TextStatsRegistry* text_stats = nullptr;
  // Replication (docs/replication.md); nullptr without --peer.
  replication::Replicator* replicator = nullptr;
  // Client authentication (auth.h); nullptr without --auth-file. With it,
  // parser_limits.auth is set.
  Authenticator* auth = nullptr;
};

class WorkerProcessors final : public WorkerServices {
 public:
  WorkerProcessors(const ProcessShared& shared, uint32_t worker);

  std::unique_ptr<Session> open_session(ListenerKind kind, int fd, const TlsChannel* tls) override;
  void tick() override { store_thread_.expire(); }

 private:
  const ProcessShared& shared_;
  uint32_t worker_;
  // Destruction runs bottom-up: the processors before the write path, all
  // before the store handle.
  store::StoreThread store_thread_;
  std::unique_ptr<WritePath> write_;
  BinaryProcessor binary_;
  std::unique_ptr<TextProcessor> text_;  // only with a text port
  std::unique_ptr<McBinaryProcessor> mc_binary_;  // the text port's binary protocol (first byte 0x80)
};

class ProcessorsFactory final : public WorkerServicesFactory {
 public:
  explicit ProcessorsFactory(const ProcessShared& shared) : shared_(shared) {}

  std::unique_ptr<WorkerServices> make(uint32_t worker) override {
    return std::make_unique<WorkerProcessors>(shared_, worker);
  }
  ConnectionCounters& counters(uint32_t worker) override { return shared_.stats.thread(worker); }

 private:
  const ProcessShared& shared_;
};

}  // namespace ringcache::server
