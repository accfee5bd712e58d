// One TCP connection of the load generator: its send queue, its codec and the
// ring of requests in flight (what each one asked and when it left), so that
// every reply, which arrives in request order, is matched with its send time.
//
// The connection knows bytes and replies, not the workload: the worker decides
// what to send and what to do with each reply.
#pragma once

#include <cassert>
#include <climits>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/non_copyable.h"
#include "monotonic_clock.h"
#include "protocol_codec.h"
#include "send_queue.h"
#include "tls_client.h"

namespace ringcache::loadgen {

// Reads handled per readiness event before moving on to other connections:
// enough to drain a 1 MiB reply through the worker's read buffer, few enough
// that one busy connection cannot starve the rest (epoll is level-triggered
// and reports it again).
inline constexpr int reads_per_event_max = 8;
// Value bytes worth dropping in the kernel (recv with MSG_TRUNC, which TCP
// implements without copying) rather than reading them into the scratch
// buffer: below this the extra syscall costs more than the copy it saves.
inline constexpr std::uint64_t discard_bytes_min = 16 * 1024;
// Bytes dropped by one recv(MSG_TRUNC).
inline constexpr std::size_t discard_bytes_max = 16 * 1024 * 1024;
// After a large value, read only this much to find the next reply's header,
// so that its value is dropped in the kernel rather than copied out: with
// 1 MiB values a full-buffer read copied a quarter of every value and made
// the copy half of the client's CPU time.
inline constexpr std::size_t reply_head_read_bytes = 4096;

struct in_flight_request {
  request_kind kind;
  std::uint64_t sent_ns;
};

enum class receive_status : std::uint8_t { ok, closed, failed, malformed };

class client_connection : NonCopyable {
 public:
  // `tls` (may be null: plaintext) is a finished handshake on `fd`.
  client_connection(int fd, std::unique_ptr<protocol_codec> codec, std::uint32_t depth_max,
                    ssl_handle tls = nullptr);
  ~client_connection();

  int fd() const { return fd_; }
  std::uint32_t in_flight() const { return in_flight_count_; }
  std::uint32_t depth_max() const { return static_cast<std::uint32_t>(ring_.size()); }

  void send_get(std::string_view key, std::uint64_t now_ns);
  void send_put(std::string_view key, std::span<const std::byte> value, std::uint64_t now_ns);
  // After the last request of a refill, before flush().
  void end_batch() { codec_->encode_batch_end(queue_); }

  flush_status flush() {
    return tls_ ? queue_.flush_tls(tls_.get(), last_errno_) : queue_.flush(fd_, last_errno_);
  }
  bool write_pending() const { return !queue_.empty(); }

  // Reads what the socket holds (into the worker's shared scratch buffer; the
  // codec keeps partial replies, so nothing has to survive between reads) and
  // calls on_reply(request, status, value_bytes, received_ns) for every reply.
  template <class reply_handler>
  receive_status receive(std::span<std::byte> scratch, reply_handler&& on_reply);

  // errno of the last failed read or write.
  int last_errno() const { return last_errno_; }
  std::string_view problem() const { return problem_; }

 private:
  void push(request_kind kind, std::uint64_t now_ns);
  in_flight_request pop_head() {
    assert(in_flight_count_ > 0);
    const in_flight_request head = ring_[ring_head_];
    ring_head_ = ring_head_ + 1 == ring_.size() ? 0 : ring_head_ + 1;
    --in_flight_count_;
    return head;
  }
  template <class reply_handler>
  receive_status receive_tls(std::span<std::byte> scratch, reply_handler& on_reply);
  // Feeds `input` to the codec, calling on_reply for each complete reply;
  // false (problem_ set) when the bytes are not a reply.
  template <class reply_handler>
  bool decode_all(std::span<const std::byte> input, std::uint64_t received_ns,
                  reply_handler& on_reply);
  // What an SSL_read that returned `result` <= 0 means, like end_of_reads().
  receive_status end_of_tls_reads(int result);

  // What a read or recv that returned `result` <= 0 (and not EINTR) means:
  // the peer closed, the socket is drained, or it failed (errno kept).
  receive_status end_of_reads(ssize_t result) {
    if (result == 0) return receive_status::closed;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return receive_status::ok;
    last_errno_ = errno;
    return receive_status::failed;
  }

  int fd_;
  ssl_handle tls_;
  std::unique_ptr<protocol_codec> codec_;
  send_queue queue_;
  std::vector<in_flight_request> ring_;
  std::uint32_t ring_head_ = 0;
  std::uint32_t in_flight_count_ = 0;
  int last_errno_ = 0;
  std::string_view problem_;
  // The last value was large enough to be discarded: expect more of them.
  bool large_values_seen_ = false;
};

template <class reply_handler>
receive_status client_connection::receive(std::span<std::byte> scratch, reply_handler&& on_reply) {
  if (tls_) return receive_tls(scratch, on_reply);
  for (int reads = 0; reads < reads_per_event_max; ++reads) {
    const std::uint64_t discardable = in_flight_count_ > 0 ? codec_->discardable_bytes() : 0;
    if (discardable >= discard_bytes_min) {
      const std::size_t wanted =
          discardable < discard_bytes_max ? static_cast<std::size_t>(discardable) : discard_bytes_max;
      const ssize_t dropped = ::recv(fd_, nullptr, wanted, MSG_TRUNC | MSG_DONTWAIT);
      if (dropped <= 0) {
        if (dropped < 0 && errno == EINTR) continue;
        return end_of_reads(dropped);
      }
      const decode_step step = codec_->discard(static_cast<std::uint64_t>(dropped));
      large_values_seen_ = true;
      if (step.state == decode_state::complete) {
        on_reply(pop_head(), step.status, step.value_bytes, monotonic_ns());
      }
      if (static_cast<std::size_t>(dropped) < wanted || in_flight_count_ == 0) {
        return receive_status::ok;
      }
      continue;
    }
    const std::size_t read_bytes =
        large_values_seen_ && scratch.size() > reply_head_read_bytes ? reply_head_read_bytes
                                                                     : scratch.size();
    const ssize_t got = ::read(fd_, scratch.data(), read_bytes);
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      return end_of_reads(got);
    }
    if (!decode_all(std::span<const std::byte>(scratch.data(), static_cast<std::size_t>(got)),
                    monotonic_ns(), on_reply)) {
      return receive_status::malformed;
    }
    if (static_cast<std::size_t>(got) < read_bytes || in_flight_count_ == 0) {
      return receive_status::ok;
    }
  }
  return receive_status::ok;
}

template <class reply_handler>
bool client_connection::decode_all(std::span<const std::byte> input, std::uint64_t received_ns,
                                   reply_handler& on_reply) {
  while (!input.empty() || codec_->reply_ready()) {
    if (in_flight_count_ == 0) {
      problem_ = "reply bytes arrived with no request in flight";
      return false;
    }
    const in_flight_request request = ring_[ring_head_];
    const decode_step step = codec_->decode(input, request.kind);
    assert(step.consumed <= input.size());
    input = input.subspan(step.consumed);
    if (step.state == decode_state::malformed) {
      problem_ = step.problem;
      return false;
    }
    if (step.state == decode_state::need_more) {
      assert(input.empty() && !codec_->reply_ready());
      break;
    }
    pop_head();
    if (step.status == reply_status::hit) large_values_seen_ = step.value_bytes >= discard_bytes_min;
    on_reply(request, step.status, step.value_bytes, received_ns);
  }
  return true;
}

// Large values cannot be dropped in the kernel (they are encrypted), so they
// are decrypted into the scratch buffer and handed to the codec's discard().
// OpenSSL may hold decrypted bytes that epoll cannot see (SSL_pending), so the
// read cap is exceeded until that buffer is empty: otherwise a reply could sit
// there with no readiness event to fetch it.
template <class reply_handler>
receive_status client_connection::receive_tls(std::span<std::byte> scratch,
                                              reply_handler& on_reply) {
  assert(tls_ != nullptr);
  const int scratch_bytes = scratch.size() < INT_MAX ? static_cast<int>(scratch.size()) : INT_MAX;
  for (int reads = 0; reads < reads_per_event_max || SSL_pending(tls_.get()) > 0; ++reads) {
    const std::uint64_t discardable = in_flight_count_ > 0 ? codec_->discardable_bytes() : 0;
    ERR_clear_error();
    if (discardable >= discard_bytes_min) {
      const int wanted = discardable < static_cast<std::uint64_t>(scratch_bytes)
                             ? static_cast<int>(discardable)
                             : scratch_bytes;
      const int dropped = SSL_read(tls_.get(), scratch.data(), wanted);
      if (dropped <= 0) return end_of_tls_reads(dropped);
      const decode_step step = codec_->discard(static_cast<std::uint64_t>(dropped));
      if (step.state == decode_state::complete) {
        on_reply(pop_head(), step.status, step.value_bytes, monotonic_ns());
      }
      continue;
    }
    const int got = SSL_read(tls_.get(), scratch.data(), scratch_bytes);
    if (got <= 0) return end_of_tls_reads(got);
    if (!decode_all(std::span<const std::byte>(scratch.data(), static_cast<std::size_t>(got)),
                    monotonic_ns(), on_reply)) {
      return receive_status::malformed;
    }
  }
  return receive_status::ok;
}

}  // namespace ringcache::loadgen
