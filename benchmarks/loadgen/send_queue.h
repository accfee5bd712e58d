// Outgoing bytes of one connection, written with as few syscalls as possible.
//
// Small pieces (opcodes, lengths, keys, small values) are copied into one
// contiguous arena so that a whole pipeline of small requests leaves in a single
// sendmsg(). Large values are only referenced: a 1 MiB PUT costs no memcpy, the
// kernel reads the caller's buffer directly. A referenced buffer must stay
// alive and unchanged until the queue is empty again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <openssl/ssl.h>

namespace ringcache::loadgen {

// Values up to this size are copied next to their header; above it the
// iovec bookkeeping is cheaper than the copy.
inline constexpr std::size_t value_copy_bytes_max = 512;
// iovecs handed to one sendmsg(); far below IOV_MAX (1024) and enough to
// cover a pipeline of large values between small headers.
inline constexpr std::size_t sendmsg_segments_max = 64;

enum class flush_status : std::uint8_t { done, would_block, failed };

class send_queue {
 public:
  // Returns room for `length` bytes at the end of the arena; valid until the
  // next append.
  std::byte* append_space(std::size_t length);
  void append_copy(std::span<const std::byte> bytes);
  void append_reference(std::span<const std::byte> bytes);

  std::size_t pending_bytes() const { return pending_bytes_; }
  bool empty() const { return pending_bytes_ == 0; }

  // Writes until everything is sent, the socket is full or an error occurs;
  // on `failed`, `error_number` holds the errno.
  flush_status flush(int fd, int& error_number);
  // The same through a TLS session on a non-blocking socket: one SSL_write
  // per segment (partial writes enabled), EPROTO for a TLS-level failure.
  flush_status flush_tls(SSL* ssl, int& error_number);

 private:
  struct segment {
    const std::byte* external;  // nullptr: bytes live in arena_ at `offset`
    std::size_t offset;
    std::size_t length;
  };

  void consume(std::size_t written_bytes);

  std::vector<std::byte> arena_;
  std::vector<segment> segments_;
  std::size_t first_segment_ = 0;
  std::size_t pending_bytes_ = 0;
};

}  // namespace ringcache::loadgen
