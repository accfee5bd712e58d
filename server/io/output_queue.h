// OutputQueue: the replies of one connection waiting to be sent, in order.
//
// Two kinds of chunk:
// - copied bytes, in blocks that grow from output_block_bytes_min to
//   output_block_bytes_max while the queue is busy (so a pipelining client
//   gets few large iovecs, and an idle one holds nothing);
// - a pinned value (a large store item, PinnedValue below), sent straight
//   from the memory it pins by gather() without a copy; the pin is dropped
//   once sent. The queue does not know what holds the memory (io/ does not
//   include the store): process/pinned_value.h wraps a store pin.
//
// The queue itself does not decide when a connection is too far behind; it
// reports held_bytes() and pins() and the connection pauses its reads
// (Connection::must_pause). A std::bad_alloc from append() may leave part of
// a reply queued: the caller then closes the connection.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>

#include "common/non_copyable.h"

namespace ringcache::server {

inline constexpr size_t output_block_bytes_min = 512;
inline constexpr size_t output_block_bytes_max = 16 * 1024;

// Bytes that stay where they are until the queue is done with them; the
// destructor lets them go.
class PinnedValue {
 public:
  virtual ~PinnedValue() = default;
  virtual uint64_t size() const = 0;
  // The contiguous bytes that start at `offset` (< size()); never empty.
  virtual std::string_view chunk(uint64_t offset) const = 0;
};

class OutputQueue : NonCopyable {
 public:
  OutputQueue() = default;

  void append(std::string_view bytes);
  // Queues the whole of `value` (size() > 0) to be sent from where it is.
  void append_pinned(std::unique_ptr<PinnedValue> value);

  bool empty() const { return chunks_.empty(); }
  // Memory held by copied-byte blocks (capacity, not just unsent bytes).
  size_t held_bytes() const { return held_bytes_; }
  // Bytes not yet sent, copied and pinned.
  uint64_t pending_bytes() const { return pending_bytes_; }
  uint32_t pins() const { return pins_; }

  // Fills iov with the first unsent bytes (at most iov_max entries); returns
  // how many entries it used (0 only when empty()).
  size_t gather(struct iovec* iov, size_t iov_max) const;
  // Drops the first `sent` bytes, which gather() handed out and the kernel sent.
  void consume(uint64_t sent);
  // Drops everything (the connection is closing).
  void clear();

 private:
  struct Chunk {
    std::unique_ptr<char[]> block;  // null for a pinned chunk
    uint32_t capacity = 0;
    uint32_t begin = 0;             // first unsent byte
    uint32_t end = 0;               // one past the last queued byte
    std::unique_ptr<PinnedValue> pin;
    uint64_t pin_size = 0;          // pin->size(), read once
    uint64_t pin_offset = 0;        // first unsent value byte
  };

  std::deque<Chunk> chunks_;
  size_t held_bytes_ = 0;
  uint64_t pending_bytes_ = 0;
  uint32_t pins_ = 0;
  size_t next_block_bytes_ = output_block_bytes_min;
};

}  // namespace ringcache::server
