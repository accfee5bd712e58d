// Acceptor: accepts the connections of every port (binary and text) in
// worker 0 and deals them round-robin to every worker.
//
// docs/platform.md measured that a multishot accept on one listening socket in
// several rings sends every connection to one ring. Instead, one multishot
// accept per listening socket runs in worker 0, and each accepted fd is sent
// to the next worker with IORING_OP_MSG_RING (the fd travels as the target
// completion's result, the port's ListenerKind in its user_data slot). That
// is an exact round robin and works with the single socket privsep or
// systemd hands over.
//
// Errors: a multishot accept ends on any error (no IORING_CQE_F_MORE) and is
// re-armed, except after EMFILE/ENFILE/ENOMEM/ENOBUFS, where re-arming at
// once would spin (docs/platform.md measured 170k failing completions a second):
// it waits accept_backoff_ms first.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "server/listen_sockets.h"
#include "server/io/ring.h"

namespace ringcache::server {

inline constexpr int64_t accept_backoff_ms = 100;

class Acceptor {
 public:
  using AdoptLocal = std::function<void(int fd, ListenerKind kind)>;

  struct Source {
    int fd;
    ListenerKind kind;
  };

  // sources: the listening sockets. ring_fds: every worker's ring, by worker
  // index; self is this worker's index.
  Acceptor(Ring& ring, std::vector<Source> sources, std::vector<int> ring_fds, uint32_t self,
           AdoptLocal adopt_local);

  void start();
  // No more re-arming; the caller cancels what is in flight.
  void stop() { stopping_ = true; }

  void on_accept(uint32_t listener, int32_t res, uint32_t flags);
  void on_backoff(uint32_t listener, int32_t res);
  void on_handoff_sent(int fd, ListenerKind kind, int32_t res);

 private:
  void arm_accept(uint32_t listener);
  void arm_backoff(uint32_t listener);
  void hand_off(int fd, ListenerKind kind);

  Ring& ring_;
  std::vector<Source> sources_;
  std::vector<int> ring_fds_;
  std::vector<__kernel_timespec> backoff_;  // one per listener: read when the timeout is submitted
  uint32_t self_;
  AdoptLocal adopt_local_;
  uint64_t next_target_ = 0;
  bool stopping_ = false;
  bool backing_off_ = false;  // out of fds or memory: accepts are paused
};

}  // namespace ringcache::server
