#include "client_connection.h"

#include <utility>

namespace ringcache::loadgen {

client_connection::client_connection(int fd, std::unique_ptr<protocol_codec> codec,
                                     std::uint32_t depth_max, ssl_handle tls)
    : fd_(fd), tls_(std::move(tls)), codec_(std::move(codec)), ring_(depth_max) {
  assert(fd_ >= 0);
  assert(codec_ != nullptr);
  assert(depth_max > 0);
}

client_connection::~client_connection() {
  tls_.reset();  // before the socket it refers to
  ::close(fd_);
}

receive_status client_connection::end_of_tls_reads(int result) {
  switch (SSL_get_error(tls_.get(), result)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return receive_status::ok;
    case SSL_ERROR_ZERO_RETURN: return receive_status::closed;
    case SSL_ERROR_SYSCALL:
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return receive_status::ok;
      if (errno == 0) return receive_status::closed;
      last_errno_ = errno;
      return receive_status::failed;
    default:
      problem_ = "TLS error on a data read";
      last_errno_ = EPROTO;
      return receive_status::failed;
  }
}

void client_connection::push(request_kind kind, std::uint64_t now_ns) {
  assert(in_flight_count_ < ring_.size() && "callers keep at most depth_max requests in flight");
  std::uint32_t slot = ring_head_ + in_flight_count_;
  if (slot >= ring_.size()) slot -= static_cast<std::uint32_t>(ring_.size());
  ring_[slot] = in_flight_request{kind, now_ns};
  ++in_flight_count_;
}

void client_connection::send_get(std::string_view key, std::uint64_t now_ns) {
  codec_->encode_get(queue_, key);
  push(request_kind::get, now_ns);
}

void client_connection::send_put(std::string_view key, std::span<const std::byte> value,
                                 std::uint64_t now_ns) {
  codec_->encode_put(queue_, key, value);
  push(request_kind::put, now_ns);
}

}  // namespace ringcache::loadgen
