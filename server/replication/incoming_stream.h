// IncomingStream: a peer's replication stream, applied to the store by the
// worker that accepted its connection (the one place where replication
// frames meet the store, as server/process.cc is for client requests).
//
// Every PUT and DEL is applied newest-wins (store::PutMode::newer): a write
// is kept only if its version is greater than what the store holds, a
// tombstone included, so every node ends with the same winner whatever order
// the frames arrive in. A DEL becomes a tombstone that lives
// tombstone_lifetime_s. A FLUSH sets the same version threshold as on the
// node that took the flush_all (client_writes.h). Every version seen moves this node's clock forward
// (HybridClock::observe), so a later local write wins over it. Nothing
// applied here is forwarded again: the replication thread only reads what
// workers hand over for client writes.
//
// Store calls never block; a streamed value goes through a Reservation as
// its bytes arrive. Nothing is ever sent back on the connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "server/replication/replicator.h"
#include "server/replication/wire_decoder.h"
#include "store/store.h"

namespace ringcache::replication {

enum class StreamStatus : uint8_t {
  ok,
  protocol_error,  // a byte that is not an opcode: close the connection
};

class IncomingStream {
 public:
  IncomingStream(const IncomingContext& context, store::StoreThread& store, std::string peer_node_id);
  ~IncomingStream();
  IncomingStream(const IncomingStream&) = delete;
  IncomingStream& operator=(const IncomingStream&) = delete;

  // Decodes and applies all of `bytes`. May throw std::bad_alloc (a split
  // key or value could not be buffered): close the connection then.
  StreamStatus feed(std::string_view bytes);

  const std::string& peer_node_id() const { return peer_node_id_; }
  bool at_frame_boundary() const { return decoder_.at_frame_boundary() && !put_active_; }
  size_t buffered_bytes() const { return decoder_.buffered_bytes(); }

 private:
  void apply(const DecodeEvent& event);
  bool holds_newer(std::string_view key, uint64_t version);
  void count(store::PutStatus status);

  IncomingContext context_;
  store::StoreThread& store_;
  const std::string peer_node_id_;
  StreamDecoder decoder_;
  store::Reservation reservation_;
  bool put_active_ = false;
  bool skip_put_ = false;  // the streamed PUT is not newer: read and drop its bytes
  bool warned_too_big_ = false;
  bool warned_mesh_ = false;
};

// A connection's first frame was a HELLO with `hello` (the field's bytes):
// the stream to apply, or nullptr with `refusal` saying why (answer EINVAL
// and close).
std::unique_ptr<IncomingStream> open_incoming_stream(Replicator& replicator, uint32_t worker,
                                                     store::StoreThread& store, std::string_view hello,
                                                     std::string& refusal);

}  // namespace ringcache::replication
