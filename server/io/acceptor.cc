#include "server/io/acceptor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

#include "server/io/log.h"
#include "server/io/user_data.h"

namespace ringcache::server {

Acceptor::Acceptor(Ring& ring, std::vector<Source> sources, std::vector<int> ring_fds, uint32_t self,
                   AdoptLocal adopt_local)
    : ring_(ring),
      sources_(std::move(sources)),
      ring_fds_(std::move(ring_fds)),
      backoff_(sources_.size()),
      self_(self),
      adopt_local_(std::move(adopt_local)) {
  assert(self_ < ring_fds_.size());
}

void Acceptor::start() {
  for (uint32_t i = 0; i < sources_.size(); ++i) arm_accept(i);
}

void Acceptor::arm_accept(uint32_t listener) {
  if (stopping_) return;
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_multishot_accept(sqe, sources_[listener].fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::accept, 0, listener}));
}

void Acceptor::arm_backoff(uint32_t listener) {
  if (stopping_) return;
  __kernel_timespec& ts = backoff_[listener];
  ts.tv_sec = accept_backoff_ms / 1000;
  ts.tv_nsec = (accept_backoff_ms % 1000) * 1000 * 1000;
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_timeout(sqe, &ts, 0, 0);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::accept_backoff, 0, listener}));
}

void Acceptor::on_accept(uint32_t listener, int32_t res, uint32_t flags) {
  assert(listener < sources_.size());
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (res >= 0) {
    if (stopping_) {
      ::close(res);
      return;
    }
    if (backing_off_) {
      backing_off_ = false;
      log_info("accepting connections again");
    }
    hand_off(res, sources_[listener].kind);
    if (!more) arm_accept(listener);
    return;
  }
  switch (-res) {
    case ECANCELED:
      return;  // shutdown
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
      // One line when accepting stops, not one per retry.
      if (!backing_off_) {
        log_info("accept: %s; pausing accepts, retrying every %lld ms", std::strerror(-res),
                 static_cast<long long>(accept_backoff_ms));
        backing_off_ = true;
      }
      if (!more) arm_backoff(listener);
      return;
    case EINTR:
    case EAGAIN:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      // accept(2): errors of the connection being accepted, not of the socket.
      if (!more) arm_accept(listener);
      return;
    case EBADF:
    case ENOTSOCK:
    case EINVAL:
      log_info("accept on listening socket %d: %s; no longer accepting on it", sources_[listener].fd,
               std::strerror(-res));
      return;
    default:
      log_info("accept: unexpected error %s; retrying after %lld ms", std::strerror(-res),
               static_cast<long long>(accept_backoff_ms));
      if (!more) arm_backoff(listener);
      return;
  }
}

void Acceptor::on_backoff(uint32_t listener, int32_t res) {
  assert(listener < sources_.size());
  if (res == -ECANCELED) return;
  arm_accept(listener);
}

void Acceptor::hand_off(int fd, ListenerKind kind) {
  const uint32_t target = static_cast<uint32_t>(next_target_++ % ring_fds_.size());
  if (target == self_) {
    adopt_local_(fd, kind);
    return;
  }
  // The port's kind travels in the slot field of the target's completion and
  // in the generation field of ours (see user_data.h).
  const auto kind_tag = static_cast<uint32_t>(kind);
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_msg_ring(sqe, ring_fds_[target], static_cast<unsigned>(fd),
                         pack_user_data({Op::handoff_received, 0, kind_tag}), 0);
  io_uring_sqe_set_data64(sqe, pack_user_data({Op::handoff_sent, kind_tag, static_cast<uint32_t>(fd)}));
}

void Acceptor::on_handoff_sent(int fd, ListenerKind kind, int32_t res) {
  if (res >= 0) return;
  // The target ring could not take it (its CQ is full): serve it here.
  log_info("handing connection fd %d to another worker failed: %s; serving it on worker %u", fd,
           std::strerror(-res), self_);
  adopt_local_(fd, kind);
}

}  // namespace ringcache::server
