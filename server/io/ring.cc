#include "server/io/ring.h"

#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "server/io/log.h"

namespace ringcache::server {
namespace {

struct SetupMode {
  unsigned flags;
  const char* name;
};

constexpr SetupMode setup_modes[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "defer_taskrun"},
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN, "coop_taskrun"},
    {0, "plain"},
};

struct RequiredOpcode {
  uint8_t opcode;
  const char* name;
};

constexpr RequiredOpcode required_opcodes[] = {
    {IORING_OP_ACCEPT, "ACCEPT"},       {IORING_OP_RECV, "RECV"},
    {IORING_OP_SENDMSG, "SENDMSG"},     {IORING_OP_MSG_RING, "MSG_RING"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_TIMEOUT, "TIMEOUT"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},
};

}  // namespace

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

RingStatus Ring::init(unsigned sq_entries, std::string& error) {
  assert(!initialized_);
  int ret = -EINVAL;
  for (const SetupMode& mode : setup_modes) {
    io_uring_params params{};
    params.flags = mode.flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = sq_entries * cq_per_sq_entries;
    ret = io_uring_queue_init_params(sq_entries, &ring_, &params);
    if (ret == 0) {
      mode_ = mode.name;
      break;
    }
    if (ret != -EINVAL) break;
  }
  if (ret != 0) {
    error = std::string("io_uring_setup: ") + std::strerror(-ret);
    return RingStatus::setup_failed;
  }
  initialized_ = true;

  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) {
    error = "io_uring probe failed";
    return RingStatus::probe_failed;
  }
  for (const RequiredOpcode& required : required_opcodes) {
    if (!io_uring_opcode_supported(probe, required.opcode)) {
      io_uring_free_probe(probe);
      error = std::string("the kernel's io_uring lacks IORING_OP_") + required.name;
      return RingStatus::missing_opcode;
    }
  }
  io_uring_free_probe(probe);
  // Saves an fget/fput per io_uring_enter; failure only costs that.
  (void)io_uring_register_ring_fd(&ring_);
  return RingStatus::ok;
}

io_uring_sqe* Ring::get_sqe() {
  assert(initialized_);
  for (int attempt = 0; attempt < sqe_flush_attempts_max; ++attempt) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) {
      ++in_flight_;
      return sqe;
    }
    const int ret = io_uring_submit(&ring_);
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
      log_info("fatal: io_uring_submit: %s", std::strerror(-ret));
      std::abort();
    }
  }
  log_info("fatal: the io_uring submission queue stays full");
  std::abort();
}

void Ring::complete_one() {
  assert(in_flight_ > 0);
  --in_flight_;
}

int Ring::submit_and_wait() {
  const int ret = io_uring_submit_and_wait(&ring_, 1);
  return ret < 0 ? ret : 0;
}

}  // namespace ringcache::server
