// PeerLink: this node's outgoing connection to one peer, owned by the
// replication thread. It carries one direction only: our writes to the peer.
//
//   waiting --(due)--> [resolving] --> connecting --> [securing] --> [authenticating] --> streaming
//      ^                    |               |               |                |                |
//      +-- failure, backoff +---------------+- TLS failed --+-- bad proof ---+-- error, cut --+
//
// A peer given by name is looked up again at every attempt, on its own
// thread (peer_resolver.h): the link waits in `resolving` while the
// replication thread serves the others, for at most connect_timeout_ms (a
// later attempt takes the answer of a resolution still going on). A
// numeric address is read at once.
//
// With TLS (--tls-cert and --tls-ca, docs/replication.md "TLS"), the
// connection is first secured: a client-side TlsChannel on memory BIOs
// (server/io/tls/tls_channel.h) does the handshake, driven by the socket's
// epoll events like the rest, presenting this node's certificate and
// verifying the peer's against --tls-ca; bounded by --tls-handshake-timeout
// and tls_handshake_bytes_max. From then on every byte of the steps below
// goes through the channel: what the link writes is encrypted in rounds of
// at most tls_encrypt_bytes_max taken from the queue or the log, and a
// round starts only once the previous one's ciphertext is in the kernel,
// so the ciphertext held per link stays under tls_pending_output_bytes_max.
// What the peer sends once the handshake is done, records without data
// included (session tickets, key updates), is bounded over the connection's
// life by link_tls_input_bytes_max (peer_link_tls.cc): past it the link is
// dropped, so that no peer keeps the replication thread reading.
// A TLS failure is counted (REPL_TLS_FAILURES) and retried with backoff.
//
// With a peer secret, the connection first authenticates (handshake.h,
// peer_link_auth.cc): the v2 hello goes out, the peer's challenge is
// checked (its MAC proves the peer holds the secret), our proof goes back,
// and only the peer's AUTH_OK makes the link stream; a peer that fails to
// prove the secret is counted and retried with backoff like an unreachable
// one. Without a secret the v1 hello is the stream's first frame. Every
// resolution of the peer's name also updates the node's PeerAllowlist.
//
// On streaming it sends MESH (after the v1 hello), takes its cursor at the end of the
// live log (from then on every write is kept for it), then begins a full
// copy of the store: FLUSH with the store's flush threshold (if a flush_all
// ever set one), RESYNC_BEGIN, the items, RESYNC_END. Resync chunks and
// live log spans alternate, switching only between frames, so a long resync
// neither blocks the live stream nor lets the log overflow behind it; since
// every frame carries its version, their order does not matter. A write made
// before the cursor was taken is in the store when the scan starts, so the
// copy has it; a write made after is in the log. Hence no gap.
//
// Sockets are non-blocking, edge-triggered in the replication thread's
// epoll. The peer never sends anything on this connection except the
// handshake's messages and, when it refuses us, one EINVAL byte before
// closing; with TLS, also records without data (session tickets, key
// updates).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/non_copyable.h"
#include "server/io/tls/tls_channel.h"
#include "server/replication/handshake.h"
#include "server/replication/peer_address.h"
#include "server/replication/peer_allowlist.h"
#include "server/replication/peer_resolver.h"
#include "server/replication/piece_queue.h"
#include "server/replication/replication_config.h"
#include "server/replication/replication_log.h"
#include "server/replication/replication_stats.h"
#include "store/store.h"

namespace ringcache::replication {

// Buckets one resync step may visit even if they hold nothing (an idle step
// must still end quickly).
inline constexpr uint64_t resync_step_buckets_max = 4096;
// iovecs per writev.
inline constexpr size_t link_iov_max = 64;
inline constexpr int64_t no_deadline_ms = std::numeric_limits<int64_t>::max();

// What every link uses; owned by the replication thread.
struct LinkShared {
  ReplicationLog& log;
  store::StoreThread& store;
  const ReplicationConfig& config;
  SenderCounters& counters;
  PeerAllowlist& allowlist;
  int epoll_fd;
};

enum class LinkState : uint8_t { waiting, resolving, connecting, securing, authenticating, streaming };

class PeerLink : NonCopyable {
 public:
  // index: the peer's place in --peer; epoll_tag: the epoll data this
  // link's socket is registered with; resolver: resolves the peer's name,
  // nullptr for a numeric address (it must outlive the link).
  PeerLink(PeerAddress address, size_t index, uint64_t epoll_tag, LinkShared& shared, PeerResolver* resolver);
  ~PeerLink();

  const PeerAddress& address() const { return address_; }
  LinkState state() const { return state_; }
  bool streaming() const { return state_ == LinkState::streaming; }
  bool resyncing() const { return scanning_; }
  // Log offset of the next live byte for this peer (streaming only).
  uint64_t cursor() const { return cursor_; }
  // When tick() next has something to do.
  int64_t deadline_ms() const;

  // Starts a due connection attempt; abandons a connect that took too long.
  void tick(int64_t now_ms);
  void on_socket_event(uint32_t events, int64_t now_ms);
  // Writes up to budget_bytes. True when it stopped with work left and the
  // socket still writable (the caller comes back after serving the others).
  bool pump(size_t budget_bytes, int64_t now_ms);
  // Starts a copy of the store on the same connection, of the items whose
  // version is at least min_version (0: all). A handoff ring that lost
  // writes asks for the ones at least as new as the first lost.
  void restart_resync(int64_t now_ms, uint64_t min_version);
  // The log must drop what this peer has not read yet: close, then
  // reconnect at once and resync.
  void cut(const char* reason, int64_t now_ms);
  // Bytes waiting for this peer (log and own queue).
  uint64_t queued_bytes() const;
  // Streaming, and everything this node holds for the peer is in the
  // kernel's socket buffer: the live log up to its end, the own queue, with
  // TLS the ciphertext, and no resync left to scan. What the stop's drain
  // waits for (replicator.h).
  bool sent_everything() const {
    return streaming() && !scanning_ && queued_bytes() == 0 && !(tls_ && tls_->has_output());
  }
  // Cut (cut()) and reconnecting at once since, to resync: a healthy peer
  // owed every write, like a streaming one. False once it streams again or
  // an attempt fails (then it backs off).
  bool rejoining() const { return rejoining_; }

 private:
  // How the log names a failure to authenticate (peer_link_auth.cc).
  static constexpr const char* not_authenticated = "not authenticated";
  enum class Io : uint8_t { progress, blocked, failed };
  // What one non-blocking read gave: bytes (n > 0), the peer's orderly
  // close, nothing more for now, a socket error (in errno), or a TLS
  // failure (tls_->error()).
  enum class Received : uint8_t { bytes, closed, drained, failed, tls_failed };

  void start_attempt(int64_t now_ms);
  // Takes the resolver's answer once it is in.
  void check_resolver(int64_t now_ms);
  // The peer's addresses are known: try them in order.
  void on_resolved(int64_t now_ms);
  void try_next_address(int64_t now_ms);
  void on_connected(int64_t now_ms);
  // The connection is ready for the replication handshake (TLS done, or none).
  void on_secured(int64_t now_ms);
  void start_tls(int64_t now_ms);
  void read_tls_handshake(int64_t now_ms);
  // By value: the reason is often the channel's error, which failing frees.
  void fail_tls(std::string reason, int64_t now_ms);
  // Hands the channel's ciphertext to the kernel until it is all there or
  // the socket is full; false after failing the attempt.
  bool flush_tls(int64_t now_ms);
  // One send() of the channel's ciphertext, EINTR retried; what the kernel
  // took is marked sent. Not positive: errno says why (flush_tls() and
  // pump(), through after_write(), each handle it their way).
  ssize_t send_ciphertext();
  // Ciphertext received, into the channel; once the handshake is done,
  // fails it past link_tls_input_bytes_max instead.
  void push_ciphertext(std::string_view ciphertext);
  // One non-blocking recv(), EINTR retried.
  static Received receive(int fd, char* buffer, size_t size, ssize_t& n);
  // recv(), through the channel with TLS: plaintext only (peer_link_tls.cc,
  // with the rest of the link's TLS).
  Received receive_plain(char* buffer, size_t size, ssize_t& n);
  void start_streaming(int64_t now_ms);
  void read_handshake(int64_t now_ms);
  // Applies what the handshake has read so far; false when it failed.
  bool advance_handshake(int64_t now_ms);
  bool send_handshake_bytes(const std::string& bytes, int64_t now_ms);
  // what: how the log line names the failure.
  void fail_attempt(const std::string& reason, int64_t now_ms, const char* what = "unreachable");
  void drop(const std::string& reason, int64_t now_ms, bool retry_now);
  void close_socket();
  void read_input(int64_t now_ms);

  bool plan_next(int64_t now_ms);
  void scan_step(int64_t now_ms);
  void queue_item(std::string_view key, const store::ItemView& item, bool tombstone);
  void queue_lookup(std::string_view key);
  Io write_pending(size_t& sent, int64_t now_ms);
  Io write_live(size_t& sent, int64_t now_ms);
  // After a round of encryption (ok false: it failed the channel).
  Io after_encrypt(bool ok, int64_t now_ms);
  Io after_write(ssize_t n, size_t& sent, int64_t now_ms);

  const PeerAddress address_;
  const size_t index_;
  const uint64_t epoll_tag_;
  LinkShared& shared_;
  PeerResolver* const resolver_;

  LinkState state_ = LinkState::waiting;
  int fd_ = -1;
  bool writable_ = false;
  int64_t next_attempt_ms_ = 0;
  int64_t backoff_ms_;
  int64_t resolve_started_ms_ = 0;
  int64_t connect_started_ms_ = 0;
  std::vector<ResolvedAddress> addresses_;
  size_t address_index_ = 0;
  std::string last_failure_;  // logged once per streak of identical failures
  bool rejoining_ = false;

  // Securing (TLS), and with TLS every state after.
  std::unique_ptr<server::TlsChannel> tls_;
  int64_t tls_started_ms_ = 0;
  uint64_t tls_input_bytes_ = 0;  // received since the handshake was done

  // Authenticating.
  int64_t handshake_started_ms_ = 0;
  AuthNonce nonce_{};
  bool proof_sent_ = false;    // our RESPONSE is out; AUTH_OK is next
  std::string handshake_in_;   // bytes read, at most challenge_bytes_max

  // Streaming.
  int64_t streaming_started_ms_ = 0;
  uint64_t cursor_ = 0;
  uint64_t live_target_ = 0;  // end of the live span being written (a frame boundary)
  PieceQueue pending_;
  bool resync_turn_ = false;
  bool scanning_ = false;
  uint64_t scan_cursor_ = 0;
  uint64_t scan_min_version_ = 0;
  uint64_t scan_items_ = 0;
  int64_t scan_started_ms_ = 0;
  uint64_t stream_bytes_ = 0;
  iovec iov_[link_iov_max] = {};
};

}  // namespace ringcache::replication
