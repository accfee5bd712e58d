#include "server/process/worker_processors.h"

#include <cassert>

#include "server/process/binary_session.h"
#include "server/process/text_port_session.h"

namespace ringcache::server {

WorkerProcessors::WorkerProcessors(const ProcessShared& shared, uint32_t worker)
    : shared_(shared),
      worker_(worker),
      store_thread_(shared.store),
      write_(WritePath::make(store_thread_, shared.replicator, worker)),
      binary_(store_thread_, *write_, shared.stats.thread(worker), shared.stats, shared.input_budget,
              shared.item_bytes_max, shared.replicator, worker) {
  if (shared.text_stats != nullptr) {
    text_ = std::make_unique<TextProcessor>(
        store_thread_, *write_, shared.text_stats->thread(worker),
        TextStatsContext{shared.stats, *shared.text_stats, shared.item_bytes_max, shared.replicator}, shared.item_bytes_max);
    mc_binary_ = std::make_unique<McBinaryProcessor>(*text_);
  }
}

std::unique_ptr<Session> WorkerProcessors::open_session(ListenerKind kind, int fd, const TlsChannel* tls) {
  assert((shared_.auth != nullptr) == shared_.parser_limits.auth);
  ThreadCounters& counters = shared_.stats.thread(worker_);
  if (kind == ListenerKind::text) {
    assert(text_ != nullptr && "a text listener is served only with a text port");
    return std::make_unique<TextPortSession>(*text_, *mc_binary_, ConnectionAuth(shared_.auth, counters, fd, "text"));
  }
  assert(kind == ListenerKind::binary);
  return std::make_unique<BinarySession>(binary_, shared_.parser_limits, fd, tls,
                                         ConnectionAuth(shared_.auth, counters, fd, "binary"));
}

}  // namespace ringcache::server
