// BufferRing: the provided-buffer ring a worker's multishot recvs fill.
//
// liburing 2.3 has no io_uring_setup_buf_ring(), so the ring entries and the
// buffers are mmap'ed here (one anonymous mapping, the entries first and page
// aligned as the kernel requires) and registered with
// io_uring_register_buf_ring(). The buffers are shared by every connection of
// the worker: each completion's buffer is handed back (recycle) as soon as
// its bytes were parsed or copied out, so a slow peer never holds one
// (docs/platform.md).
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/non_copyable.h"

namespace ringcache::server {

// 256 x 16 KiB = 4 MiB per worker: one recv completion carries up to 16 KiB,
// enough to amortise the per-completion cost for large values, and 256
// buffers keep ENOBUFS rare with hundreds of busy connections.
inline constexpr uint32_t recv_buffers_count = 256;
inline constexpr uint32_t recv_buffer_bytes = 16 * 1024;
inline constexpr uint16_t recv_buffer_group = 0;

class BufferRing : NonCopyable {
 public:
  BufferRing() = default;
  ~BufferRing();

  // count must be a power of two <= 32768. Returns false with error set.
  bool init(io_uring* ring, uint16_t group, uint32_t count, uint32_t buffer_bytes, std::string& error);

  std::string_view data(uint16_t buffer_id, uint32_t length) const;
  // Gives the buffer back to the kernel.
  void recycle(uint16_t buffer_id);

  size_t mapped_bytes() const { return mapped_bytes_; }

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* entries_ = nullptr;
  char* buffers_ = nullptr;
  void* mapping_ = nullptr;
  size_t mapped_bytes_ = 0;
  uint32_t count_ = 0;
  uint32_t buffer_bytes_ = 0;
  uint16_t group_ = 0;
};

}  // namespace ringcache::server
