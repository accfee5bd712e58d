// EventLoop: one worker thread with its own io_uring ring (ring.h).
//
// It knows connections, buffers and completions, not what a request means:
// received bytes go to Connection::feed (which asks the connection's
// session), and whatever replies are queued get sent. Sessions and the
// store come from WorkerServices (worker_services.h), built in the worker's
// thread at set-up. Every completion is decoded once
// (user_data.h) and dispatched by one switch.
//
// Per connection at most one multishot recv (into the worker's provided
// buffer ring) and one sendmsg are in flight. The recv is re-armed whenever a
// completion arrives without IORING_CQE_F_MORE unless the connection is
// paused (connection.h) or closing; ENOBUFS is routine backpressure. Sends
// loop on short completions. A connection is closed only once neither is in
// flight, so no completion ever refers to freed state.
//
// Idle uploads (server/resource_limits.h): every connection records the housekeeping
// tick (once a second) of its last byte received or sent. One found in the
// middle of a request after feeding it (a partial key, a streamed value, a
// text data block, a replication frame) joins a list; each tick walks only
// that list, drops the connections that reached a frame boundary, and closes
// those idle for upload_idle_ms_max, which drops their reservation. A paused
// connection whose client reads nothing is idle too. A listed connection
// that is paused but may resume is resumed on the tick: that is how a
// session that paused to wait for something of its own (a replication
// stream's value waiting for the store's upload budget, session.h) is
// retried once a second, and upload_idle_ms_max bounds the wait, since a
// paused connection receives nothing.
//
// TLS (tls/tls_channel.h), when WorkerShared::tls is set: every client
// connection gets a TlsChannel. Received bytes go through it before feed(),
// and try_send() sends its ciphertext instead of the OutputQueue's iovecs
// (encrypting a bounded round of the queue whenever the previous round is
// in the kernel). A connection whose handshake has not finished joins a
// list in accept order; each tick closes those at its head that have been
// handshaking for tls_handshake_ms_max, so stalled handshakes cost a tick
// nothing but their own removal. Without TLS, the hot path pays one
// null-pointer test per recv and per send.
//
// Shutdown (the stop eventfd becomes readable): stop accepting, cancel every
// request of the ring (IORING_ASYNC_CANCEL_ANY), drain until nothing is in
// flight, close the connections, meet the other workers (worker_sync.h),
// then exit the ring. main() closes the listening sockets last, so the port
// is free at once (docs/platform.md).
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/non_copyable.h"
#include "server/io/acceptor.h"
#include "server/io/buffer_ring.h"
#include "server/io/connection_table.h"
#include "server/io/input_budget.h"
#include "server/io/ring.h"
#include "server/io/tls/tls_context.h"
#include "server/io/user_data.h"
#include "server/io/worker_services.h"
#include "server/io/worker_sync.h"
#include "server/listen_sockets.h"

namespace ringcache::server {

inline constexpr int64_t expire_interval_ms = 1000;

// What every worker shares; read-only once the workers run.
struct WorkerShared {
  WorkerServicesFactory& services;
  InputBudget& input_budget;
  const std::vector<Listener>& listeners;
  WorkerSync& sync;
  // Whether text listeners are served (--text-port is not 0).
  bool serve_text;
  // A connection stalled this long in the middle of a request is closed
  // (server/resource_limits.h, --upload-timeout).
  uint64_t upload_idle_ms_max;
  // TLS on every client port (null: plaintext), and how long a handshake
  // may take (--tls-handshake-timeout).
  const TlsContext* tls;
  uint64_t tls_handshake_ms_max;
  int stop_fd;
};

class EventLoop : NonCopyable {
 public:
  EventLoop(uint32_t index, WorkerShared& shared);
  ~EventLoop();

  // The worker thread's body. Never throws.
  void run();

 private:
  bool setup(std::string& error);
  void serve();
  void dispatch(uint64_t user_data, int32_t res, uint32_t flags);

  // Connections.
  void adopt(int fd, ListenerKind kind);
  Connection* lookup(const UserData& data);
  void arm_recv(Connection& c);
  void on_recv(const UserData& data, int32_t res, uint32_t flags);
  void on_send(const UserData& data, int32_t res);
  void try_send(Connection& c);
  void feed(Connection& c, std::string_view bytes);
  void feed_tls(Connection& c, std::string_view ciphertext);
  void try_send_tls(Connection& c);
  void tls_failed(Connection& c);
  void on_handshake_done(Connection& c);
  // Paused, not closing after a flush, and its output small enough again.
  bool may_resume(const Connection& c) const;
  void resume(Connection& c);
  void after_input(Connection& c, bool was_paused);
  bool charge_input(Connection& c);
  void cancel_request(Connection& c, Op op);
  void progress(Connection& c);
  void begin_close(Connection& c, const char* reason);
  void drop(Connection& c, const char* reason);
  void finalize(Connection& c);

  // Housekeeping.
  void arm_stop_poll();
  void arm_expire_timer();
  void on_expire_timer(int32_t res);
  void note_mid_request(Connection& c);
  void unlist_mid_request(Connection& c);
  void abort_idle_uploads();
  void list_handshake(Connection& c);
  void unlist_handshake(Connection& c);
  void abort_stalled_handshakes();
  void begin_shutdown();
  void reap_late_handoffs();

  const uint32_t index_;
  WorkerShared& shared_;
  ConnectionCounters& counters_;
  // Destruction runs bottom-up: connections (holding pins and reservations)
  // before the store handle, everything before the ring.
  Ring ring_;
  BufferRing buffers_;
  // The protocol side: sessions, processors, this worker's store handle.
  std::unique_ptr<WorkerServices> services_;
  std::unique_ptr<Acceptor> acceptor_;
  ConnectionTable connections_;
  // Reply bytes held by all connections of this worker (Connection::out).
  size_t held_bytes_ = 0;
  bool stopping_ = false;
  __kernel_timespec expire_interval_{};
  // Housekeeping ticks so far (expire_interval_ms each), and how many ticks
  // without a byte make an upload idle.
  uint64_t tick_ = 0;
  uint64_t upload_idle_ticks_ = 0;
  // Connections seen in the middle of a request (Connection::mid_request_*).
  Connection* mid_request_head_ = nullptr;
  // TLS: handshakes not finished, oldest first (Connection::handshake_*),
  // the ticks one may take, and where one TLS record is decrypted.
  Connection* handshake_head_ = nullptr;
  Connection* handshake_tail_ = nullptr;
  uint64_t handshake_ticks_ = 0;
  std::unique_ptr<char[]> tls_plaintext_;
};

}  // namespace ringcache::server
