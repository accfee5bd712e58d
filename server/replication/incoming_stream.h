// IncomingStream: a peer's replication stream, applied to the store by the
// worker that accepted its connection (the one place where replication
// frames meet the store, as server/process/binary_process.cc is for client requests).
//
// Trust: nothing is applied before the peer is admitted. With a peer secret
// the stream opens in the awaiting_proof phase: the challenge (handshake.h)
// is queued as the connection's reply, and only a RESPONSE carrying the
// right MAC moves it to streaming (answered AUTH_OK); anything else answers
// EINVAL and closes. Without a secret, open_incoming_stream() admits a v1
// hello only from a peer's address (peer_allowlist.h). Then, per frame:
// - a version whose wall-clock time is more than max_clock_skew_ms ahead of
//   this node's clock is refused before the clock observes it or the store
//   sees it, counted, logged (once per peer per minute, with the offset) and
//   the stream is closed: a peer that cannot converge should be seen, not
//   silently win every conflict. A version 0 (no node issues it) closes it too.
// - every PUT and DEL is applied newest-wins (store::PutMode::newer): a write
//   is kept only if its version is greater than what the store holds, a
//   tombstone included, so every node ends with the same winner whatever
//   order the frames arrive in. A DEL becomes a tombstone that lives
//   tombstone_lifetime_s. A FLUSH sets the same version threshold as on the
//   node that took the flush_all (client_writes.h). Every version applied
//   moves this node's clock forward (HybridClock::observe), so a later local
//   write wins over it. Nothing applied here is forwarded again: the
//   replication thread only reads what workers hand over for client writes.
//
// Store calls never block; a streamed value goes through a Reservation as
// its bytes arrive. The only bytes ever sent back are the handshake's.
//
// A streamed value refused at the store's upload budget alone (values still
// arriving, a client's or a peer's, hold it all: Reservation::upload_full)
// is not lost: the stream stops where it is (feed() says wait, with the
// bytes it did not use) and retries the same claim each time it is fed
// again. Its connection is not read meanwhile, so the peer's link blocks on
// TCP and its log keeps the writes (or cuts the peer and resyncs it, which
// is as correct). The connection layer feeds a waiting stream again on its
// housekeeping tick, and closes it after --upload-timeout without a byte,
// like any request stalled half-way (server/io/event_loop.h): the peer then
// reconnects and resyncs. Counted once per value (REPL_APPLY_WAITS), logged
// once per run of values that wait.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/non_copyable.h"
#include "server/replication/handshake.h"
#include "server/replication/replicator.h"
#include "server/replication/wire_decoder.h"
#include "store/store.h"

namespace ringcache::replication {

enum class StreamStatus : uint8_t {
  ok,
  wait,   // a streamed value waits for the upload budget: feed the bytes not used again later
  close,  // a protocol error, a failed authentication or a refused version: close the connection
};

class IncomingStream : NonCopyable {
 public:
  // A stream admitted without authentication (v1 hello): frames apply at once.
  static std::unique_ptr<IncomingStream> unauthenticated(const IncomingContext& context, store::StoreThread& store,
                                                         std::string peer_node_id, std::string peer_address);
  // A v2 hello with the context's secret: appends the challenge to `reply`
  // and waits for the peer's proof.
  static std::unique_ptr<IncomingStream> challenge(const IncomingContext& context, store::StoreThread& store,
                                                   const Hello& hello, std::string peer_address,
                                                   std::string& reply);
  ~IncomingStream();

  // Decodes and applies `bytes`, all of them unless it says wait; `used`
  // says how many. Bytes to send back (the handshake's) are appended to
  // `reply`. May throw std::bad_alloc (a split key or value could not be
  // buffered): close the connection then.
  StreamStatus feed(std::string_view bytes, std::string& reply, size_t& used);

  // Turns on the keepalive that closes this stream's connection once its
  // sender is gone without a word (ReplicationTuning::incoming_keepalive_*).
  // False (and logged) if the socket refused it, as a Unix socket would.
  bool watch_connection(int fd);

  const std::string& peer_node_id() const { return peer_node_id_; }
  bool authenticated() const { return phase_ == Phase::streaming; }
  // Waiting for the proof counts as mid-frame: the connection is not idle
  // between requests, and an upload-style idle limit applies to it.
  bool at_frame_boundary() const {
    return phase_ == Phase::streaming && decoder_.at_frame_boundary() && !put_active_;
  }
  size_t buffered_bytes() const {
    return decoder_.buffered_bytes() + proof_.capacity() + pending_key_.capacity();
  }

 private:
  enum class Phase : uint8_t { awaiting_proof, streaming, closed };
  enum class Wait : uint8_t {
    none,
    reserve,  // the reservation of the value pending_* announce
    piece,    // the reservation's next block
  };

  IncomingStream(const IncomingContext& context, store::StoreThread& store, std::string peer_node_id,
                 std::string peer_address);
  void start_streaming(const char* how);
  StreamStatus refuse(std::string_view why);
  StreamStatus check_proof(std::string_view& bytes, std::string& reply);
  // False when the event's version must not be applied (the stream closes).
  bool version_acceptable(const DecodeEvent& event);
  void apply(const DecodeEvent& event);
  void apply_put(const DecodeEvent& event);
  void begin_streamed_put(const DecodeEvent& event);
  // Makes room in the reservation for the next value bytes; false when it waits.
  bool claim_room();
  void start_waiting(Wait what);
  // Where a waiting stream resumes; false while it still waits.
  bool retry_wait();
  void end_streamed_put();
  void apply_flush(const DecodeEvent& event);
  void check_mesh(uint64_t peers_listed);
  void note_too_big();
  bool holds_newer(std::string_view key, uint64_t version);
  void count(store::PutStatus status);

  IncomingContext context_;
  store::StoreThread& store_;
  const std::string peer_node_id_;
  const std::string peer_address_;
  Phase phase_ = Phase::streaming;
  AuthMac expected_proof_{};
  std::string proof_;  // the RESPONSE bytes read so far (at most response_bytes)
  bool counted_ = false;  // counted in ReceiverCounters::streams
  uint64_t wall_ms_ = 0;  // the wall clock when the current chunk arrived
  StreamDecoder decoder_;
  store::Reservation reservation_;
  bool put_active_ = false;
  bool skip_put_ = false;  // the streamed PUT is not newer: read and drop its bytes
  // The streamed PUT being reserved: its key (copied: the decoder's view
  // does not outlive the call) and fields, for a retry after a wait.
  std::string pending_key_;
  store::ItemMeta pending_meta_{};
  uint64_t pending_value_size_ = 0;
  Wait wait_ = Wait::none;
  uint64_t wait_started_ms_ = 0;  // monotonic_ms() when this value began to wait
  bool value_waited_ = false;     // the current value waited (counted once)
  bool wait_streak_ = false;      // logged; until a value goes through without waiting
  bool warned_too_big_ = false;
  bool warned_mesh_ = false;
};

// Where a replication connection comes from.
struct PeerEndpoint {
  sockaddr_storage address{};
  std::string text;  // "10.0.0.2:41234" (with TLS: ", certificate /CN=..."), for log lines
  bool tls = false;           // the connection is TLS
  bool tls_verified = false;  // and the peer's certificate chained to --tls-ca
};

// A connection's first frame was a HELLO with `hello` (the field's bytes):
// the stream to feed from now on (with bytes to send in `reply`), or nullptr
// after the refusal was counted and logged (answer EINVAL and close).
std::unique_ptr<IncomingStream> open_incoming_stream(Replicator& replicator, uint32_t worker,
                                                     store::StoreThread& store, std::string_view hello,
                                                     const PeerEndpoint& from, std::string& reply);

}  // namespace ringcache::replication
