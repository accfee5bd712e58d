#include "send_queue.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <openssl/err.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <climits>
#include <cstring>

namespace ringcache::loadgen {

std::byte* send_queue::append_space(std::size_t length) {
  const std::size_t offset = arena_.size();
  arena_.resize(offset + length);
  if (!segments_.empty() && segments_.back().external == nullptr &&
      segments_.back().offset + segments_.back().length == offset) {
    segments_.back().length += length;
  } else {
    segments_.push_back(segment{nullptr, offset, length});
  }
  pending_bytes_ += length;
  return arena_.data() + offset;
}

void send_queue::append_copy(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  std::memcpy(append_space(bytes.size()), bytes.data(), bytes.size());
}

void send_queue::append_reference(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  segments_.push_back(segment{bytes.data(), 0, bytes.size()});
  pending_bytes_ += bytes.size();
}

void send_queue::consume(std::size_t written_bytes) {
  assert(written_bytes <= pending_bytes_);
  pending_bytes_ -= written_bytes;
  while (written_bytes > 0) {
    assert(first_segment_ < segments_.size());
    segment& head = segments_[first_segment_];
    const std::size_t step = written_bytes < head.length ? written_bytes : head.length;
    head.offset += step;
    head.length -= step;
    written_bytes -= step;
    if (head.length == 0) ++first_segment_;
  }
  if (pending_bytes_ == 0) {
    // Everything left the process: the arena can be reused from its start.
    arena_.clear();
    segments_.clear();
    first_segment_ = 0;
  }
}

flush_status send_queue::flush(int fd, int& error_number) {
  while (pending_bytes_ > 0) {
    std::array<iovec, sendmsg_segments_max> vectors{};
    std::size_t count = 0;
    for (std::size_t i = first_segment_; i < segments_.size() && count < vectors.size(); ++i) {
      const segment& piece = segments_[i];
      if (piece.length == 0) continue;
      const std::byte* base = piece.external != nullptr ? piece.external + piece.offset
                                                         : arena_.data() + piece.offset;
      vectors[count].iov_base = const_cast<std::byte*>(base);
      vectors[count].iov_len = piece.length;
      ++count;
    }
    assert(count > 0);
    msghdr message{};
    message.msg_iov = vectors.data();
    message.msg_iovlen = count;
    const ssize_t written = sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return flush_status::would_block;
      error_number = errno;
      return flush_status::failed;
    }
    consume(static_cast<std::size_t>(written));
  }
  return flush_status::done;
}

flush_status send_queue::flush_tls(SSL* ssl, int& error_number) {
  while (pending_bytes_ > 0) {
    std::size_t index = first_segment_;
    while (index < segments_.size() && segments_[index].length == 0) ++index;
    assert(index < segments_.size() && "pending bytes live in some segment");
    const segment& piece = segments_[index];
    const std::byte* base = piece.external != nullptr ? piece.external + piece.offset
                                                       : arena_.data() + piece.offset;
    const int length = piece.length < INT_MAX ? static_cast<int>(piece.length) : INT_MAX;
    ERR_clear_error();
    const int written = SSL_write(ssl, base, length);
    if (written <= 0) {
      switch (SSL_get_error(ssl, written)) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ: return flush_status::would_block;
        case SSL_ERROR_SYSCALL:
          if (errno == EINTR) continue;
          error_number = errno != 0 ? errno : EPIPE;
          return flush_status::failed;
        default: error_number = EPROTO; return flush_status::failed;
      }
    }
    // consume() starts at first_segment_: empty segments before `index` cost nothing.
    consume(static_cast<std::size_t>(written));
  }
  return flush_status::done;
}

}  // namespace ringcache::loadgen
