#include "worker.h"

#include <sys/epoll.h>

#include <cstring>
#include <string>
#include <utility>

namespace ringcache::loadgen {

namespace {

std::uint64_t prefill_keys_of(std::uint64_t first_key, std::uint64_t key_count,
                              std::uint64_t stride) {
  if (first_key >= key_count) return 0;
  return (key_count - first_key - 1) / stride + 1;
}

std::uint32_t prefill_depth_for(std::uint64_t value_bytes) {
  const std::uint64_t fitting = prefill_in_flight_bytes_max / (value_bytes > 0 ? value_bytes : 1);
  if (fitting < 1) return 1;
  return fitting < prefill_depth_max ? static_cast<std::uint32_t>(fitting) : prefill_depth_max;
}

std::uint64_t random_seed_of(std::uint64_t seed, unsigned worker_index) {
  return seed ^ (0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(worker_index) + 1));
}

}  // namespace

void worker_totals::merge(const worker_totals& other) {
  for (std::size_t i = 0; i < replies.size(); ++i) replies[i] += other.replies[i];
  gets += other.gets;
  puts += other.puts;
  value_bytes_received += other.value_bytes_received;
  latency.merge(other.latency);
  prefill_replies += other.prefill_replies;
  prefill_errors += other.prefill_errors;
}

std::uint64_t worker_totals::errors() const {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (is_error(static_cast<reply_status>(i))) sum += replies[i];
  }
  return sum;
}

worker::worker(worker_setup setup)
    : setup_(std::move(setup)),
      options_(*setup_.options),
      prefill_depth_(prefill_depth_for(setup_.options->value_size)),
      read_buffer_(read_buffer_bytes),
      key_buffer_(setup_.options->key_size),
      random_(random_seed_of(setup_.options->seed, setup_.index)),
      chooser_(setup_.options->keys, setup_.options->key_popularity) {
  assert(setup_.control != nullptr);
  assert(setup_.value.size() == options_.value_size);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
}

worker::~worker() {
  slots_.clear();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

bool worker::add_connection(int fd, ssl_handle tls, std::uint32_t global_index,
                            int& error_number) {
  if (epoll_fd_ < 0) {
    error_number = EMFILE;
    ::close(fd);
    return false;
  }
  const std::uint32_t depth =
      options_.prefill && prefill_depth_ > options_.pipeline ? prefill_depth_ : options_.pipeline;
  auto slot = std::make_unique<connection_slot>(fd, make_codec(options_.protocol), depth,
                                               global_index, std::move(tls));
  epoll_event interest{};
  interest.events = EPOLLIN;
  interest.data.ptr = slot.get();
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &interest) != 0) {
    error_number = errno;
    return false;  // the slot's destructor closes fd
  }
  if (options_.prefill) {
    prefill_pending_ += prefill_keys_of(global_index, options_.keys, options_.connections);
  }
  slots_.push_back(std::move(slot));
  return true;
}

void worker::run() {
  if (options_.prefill) run_phase(phase::prefill);
  setup_.control->start_line.arrive_and_wait();
  measure_start_ns_ = setup_.control->measure_start_ns.load(std::memory_order_relaxed);
  measure_end_ns_ = setup_.control->measure_end_ns.load(std::memory_order_relaxed);
  run_phase(phase::load);
  publish_progress();
}

void worker::fail(const connection_slot& slot, std::string_view what) {
  setup_.control->report_failure("connection " + std::to_string(slot.global_index + 1) + " to " +
                                 setup_.peer_name + ": " + std::string(what));
}

void worker::publish_progress() {
  progress_.completed.store(completed_, std::memory_order_relaxed);
  progress_.errors.store(errors_, std::memory_order_relaxed);
}

void worker::refill(connection_slot& slot, phase current) {
  client_connection& connection = slot.connection;
  const std::uint64_t now = monotonic_ns();
  if (current == phase::prefill) {
    while (connection.in_flight() < prefill_depth_ && slot.next_prefill_key < options_.keys) {
      connection.send_put(format_key(slot.next_prefill_key, key_buffer_), setup_.value, now);
      slot.next_prefill_key += options_.connections;
    }
    connection.end_batch();
    return;
  }
  while (connection.in_flight() < options_.pipeline) {
    const std::string_view key = format_key(chooser_.next_index(random_), key_buffer_);
    const bool is_get = options_.get_ratio >= 1.0 ||
                        (options_.get_ratio > 0.0 && random_.next_unit() < options_.get_ratio);
    if (is_get) {
      connection.send_get(key, now);
    } else {
      connection.send_put(key, setup_.value, now);
    }
  }
  connection.end_batch();
}

bool worker::flush(connection_slot& slot) {
  const flush_status status = slot.connection.flush();
  if (status == flush_status::failed) {
    fail(slot, std::string("send failed: ") + std::strerror(slot.connection.last_errno()));
    return false;
  }
  const bool want_write = status == flush_status::would_block;
  if (want_write == slot.want_write) return true;
  epoll_event interest{};
  interest.events = want_write ? EPOLLIN | EPOLLOUT : EPOLLIN;
  interest.data.ptr = &slot;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, slot.connection.fd(), &interest) != 0) {
    fail(slot, std::string("epoll_ctl failed: ") + std::strerror(errno));
    return false;
  }
  slot.want_write = want_write;
  return true;
}

bool worker::on_readable(connection_slot& slot, phase current) {
  receive_status status;
  if (current == phase::prefill) {
    status = slot.connection.receive(
        read_buffer_, [&](const in_flight_request&, reply_status reply, std::uint64_t,
                          std::uint64_t) {
          assert(prefill_pending_ > 0);
          --prefill_pending_;
          ++totals_.prefill_replies;
          if (is_error(reply)) ++totals_.prefill_errors;
        });
  } else {
    status = slot.connection.receive(
        read_buffer_, [&](const in_flight_request& request, reply_status reply,
                          std::uint64_t value_bytes, std::uint64_t received_ns) {
          ++completed_;
          const bool error = is_error(reply);
          if (error) ++errors_;
          if (received_ns < measure_start_ns_ || received_ns >= measure_end_ns_) return;
          ++totals_.replies[static_cast<std::size_t>(reply)];
          if (request.kind == request_kind::get) {
            ++totals_.gets;
          } else {
            ++totals_.puts;
          }
          totals_.value_bytes_received += value_bytes;
          totals_.latency.record(received_ns - request.sent_ns);
        });
  }
  switch (status) {
    case receive_status::ok: break;
    case receive_status::closed: fail(slot, "the server closed the connection"); return false;
    case receive_status::failed:
      fail(slot, std::string("receive failed: ") + std::strerror(slot.connection.last_errno()));
      return false;
    case receive_status::malformed:
      fail(slot, "protocol error: " + std::string(slot.connection.problem()));
      return false;
  }
  refill(slot, current);
  return flush(slot);
}

void worker::run_phase(phase current) {
  run_control& control = *setup_.control;
  const std::uint64_t prefill_deadline_ns =
      monotonic_ns() + static_cast<std::uint64_t>(prefill_seconds_max * 1e9);
  for (auto& slot : slots_) {
    refill(*slot, current);
    if (!flush(*slot)) return;
  }
  std::array<epoll_event, epoll_events_max> events{};
  while (!control.failed.load(std::memory_order_relaxed)) {
    const std::uint64_t now = monotonic_ns();
    std::uint64_t wait_until = now + epoll_wait_ms_max * std::uint64_t{1'000'000};
    if (current == phase::prefill) {
      if (prefill_pending_ == 0) return;
      if (interrupt_requested.load(std::memory_order_relaxed)) {
        control.report_failure("interrupted during the prefill");
        return;
      }
      if (now >= prefill_deadline_ns) {
        control.report_failure("prefill did not finish within " +
                               std::to_string(static_cast<int>(prefill_seconds_max)) + " s (" +
                               std::to_string(prefill_pending_) +
                               " keys of this thread still unanswered); use fewer --keys");
        return;
      }
    } else {
      // SIGINT or a failure elsewhere may have moved the end earlier.
      measure_end_ns_ = control.measure_end_ns.load(std::memory_order_relaxed);
      if (now >= measure_end_ns_) return;
      if (measure_end_ns_ < wait_until) wait_until = measure_end_ns_;
    }
    const int timeout_ms = static_cast<int>((wait_until - now + 999'999) / 1'000'000);
    const int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                                 timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      control.report_failure(std::string("epoll_wait failed: ") + std::strerror(errno));
      return;
    }
    for (int i = 0; i < ready; ++i) {
      auto& slot = *static_cast<connection_slot*>(events[i].data.ptr);
      const std::uint32_t ready_events = events[i].events;
      if ((ready_events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && !on_readable(slot, current)) {
        return;
      }
      if ((ready_events & EPOLLOUT) != 0 && !flush(slot)) return;
    }
    publish_progress();
  }
}

}  // namespace ringcache::loadgen
