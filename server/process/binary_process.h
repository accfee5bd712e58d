// BinaryProcessor: the one place where a parsed binary request meets the
// store (protocol -> process -> store). Each parser Event becomes a store
// read, or a write through the worker's write path (write_path.h), and a
// reply appended to the connection's OutputQueue; nothing here knows about
// sockets or io_uring, and the event loop knows nothing of what a PUT means.
//
// Replies (docs/binary_protocol.md): one status byte; GET hits and STATS add a field
// (32-bit big-endian length, then the bytes). Small contiguous values are
// copied into the reply queue inside the store's read section; larger ones
// are pinned and sent from the store's memory (OutputQueue::append_pinned).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "server/io/input_budget.h"
#include "server/io/output_queue.h"
#include "server/protocol/binary/binary_parser.h"
#include "server/process/binary_stats.h"
#include "server/process/write_path.h"
#include "server/replication/incoming_stream.h"
#include "server/replication/replicator.h"
#include "store/store.h"

namespace ringcache::server {

// The state of a PUT whose value streams in over several events.
struct PutStream {
  StreamedWrite write;
  bool active = false;
};

enum class ProcessResult : uint8_t {
  proceed,
  close_after_reply,  // flush the queued replies, then close (replication hello)
};

class BinaryProcessor {
 public:
  // Writes go through `write` (write_path.h), replicated or not. With
  // `replicator` (--peer), replication hellos are admitted and STATS shows
  // the REPL_ fields.
  BinaryProcessor(store::StoreThread& store, WritePath& write, ThreadCounters& counters,
                  const StatsRegistry& registry, const InputBudget& input_budget, uint64_t item_bytes_max,
                  replication::Replicator* replicator = nullptr, uint32_t worker = 0);

  // event.kind is never need_more, nor repl_hello (open_replication), nor
  // auth / auth_too_big (the session's ConnectionAuth answers those).
  ProcessResult process(const protocol::Event& event, PutStream& stream, OutputQueue& out);

  // The answer to AUTH (auth.h): OK, or EINVAL.
  void answer_auth(bool accepted, OutputQueue& out);
  // EINVAL for a request of a connection not authenticated yet.
  void refuse(OutputQueue& out);

  // The keys of requests about to be processed (StoreThread::prefetch).
  void prefetch(std::span<const std::string_view> keys) { store_.prefetch(keys); }

  // The connection's first frame was a replication hello from `from`: the
  // stream to feed from now on (its handshake reply queued), or nullptr
  // after queueing EINVAL (then close).
  std::unique_ptr<replication::IncomingStream> open_replication(std::string_view hello,
                                                                const replication::PeerEndpoint& from,
                                                                OutputQueue& out);

 private:
  void get(std::string_view key, OutputQueue& out);
  void put(const protocol::Event& event, OutputQueue& out);
  void put_end(PutStream& stream, OutputQueue& out);
  void del(std::string_view key, OutputQueue& out);
  void stats(OutputQueue& out);
  void refuse_replication(const char* why, OutputQueue& out);

  store::StoreThread& store_;
  WritePath& write_;
  ThreadCounters& counters_;
  const StatsRegistry& registry_;
  const InputBudget& input_budget_;
  uint64_t item_bytes_max_;
  replication::Replicator* replicator_;
  uint32_t worker_;
};

}  // namespace ringcache::server
