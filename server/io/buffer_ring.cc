#include "server/io/buffer_ring.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

namespace ringcache::server {

BufferRing::~BufferRing() {
  if (ring_ != nullptr) (void)io_uring_unregister_buf_ring(ring_, group_);
  if (mapping_ != nullptr) ::munmap(mapping_, mapped_bytes_);
}

bool BufferRing::init(io_uring* ring, uint16_t group, uint32_t count, uint32_t buffer_bytes,
                      std::string& error) {
  assert(ring_ == nullptr && mapping_ == nullptr);
  assert(count > 0 && count <= 32768 && (count & (count - 1)) == 0);
  const size_t page_bytes = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t entries_bytes =
      (count * sizeof(io_uring_buf) + page_bytes - 1) / page_bytes * page_bytes;
  const size_t total = entries_bytes + static_cast<size_t>(count) * buffer_bytes;
  void* mapping = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) {
    error = std::string("mmap of the receive buffers: ") + std::strerror(errno);
    return false;
  }
  mapping_ = mapping;
  mapped_bytes_ = total;
  entries_ = static_cast<io_uring_buf_ring*>(mapping);
  buffers_ = static_cast<char*>(mapping) + entries_bytes;
  count_ = count;
  buffer_bytes_ = buffer_bytes;
  group_ = group;

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(mapping);
  reg.ring_entries = count;
  reg.bgid = group;
  const int ret = io_uring_register_buf_ring(ring, &reg, 0);
  if (ret != 0) {
    error = std::string("io_uring_register_buf_ring: ") + std::strerror(-ret);
    return false;
  }
  ring_ = ring;

  io_uring_buf_ring_init(entries_);
  const int mask = io_uring_buf_ring_mask(count);
  for (uint32_t id = 0; id < count; ++id) {
    io_uring_buf_ring_add(entries_, buffers_ + static_cast<size_t>(id) * buffer_bytes, buffer_bytes,
                          static_cast<unsigned short>(id), mask, static_cast<int>(id));
  }
  io_uring_buf_ring_advance(entries_, static_cast<int>(count));
  return true;
}

std::string_view BufferRing::data(uint16_t buffer_id, uint32_t length) const {
  assert(buffer_id < count_);
  assert(length <= buffer_bytes_);
  return {buffers_ + static_cast<size_t>(buffer_id) * buffer_bytes_, length};
}

void BufferRing::recycle(uint16_t buffer_id) {
  assert(buffer_id < count_);
  io_uring_buf_ring_add(entries_, buffers_ + static_cast<size_t>(buffer_id) * buffer_bytes_,
                        buffer_bytes_, buffer_id, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(entries_, 1);
}

}  // namespace ringcache::server
