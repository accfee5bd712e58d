// HandoffRing: how one worker hands the writes it accepted to the
// replication thread without ever blocking (one producer, one consumer,
// lock-free).
//
// Records are variable-sized and contiguous, each 8-byte aligned:
//
//   | payload_bytes:u32 | kind:u8 | 3 zero bytes | payload ... | pad to 8 |
//
// A record that does not fit before the end of the buffer is preceded by a
// padding record that fills the end, and starts again at offset 0. Positions
// are free-running u64 byte counts (head: consumer, tail: producer), so full
// and empty never look alike.
//
// When a record does not fit (the replication thread fell behind, or the
// record is larger than half the ring), reserve() fails and the producer
// records the version of the write it could not hand over: the write is
// still acknowledged to the client, and the replication thread answers by
// sending every peer whatever the store holds at least that new (a catch-up
// resync), so nothing is lost silently.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/non_copyable.h"

namespace ringcache::replication {

enum class HandoffKind : uint8_t {
  frame = 1,    // a complete wire frame (PUT, DEL or FLUSH) to append to the log as is
  lookup = 2,   // a key whose current item is read from the store when sent (large values)
  padding = 3,  // internal: fills the end of the buffer
};

inline constexpr size_t handoff_record_header_bytes = 8;
inline constexpr size_t handoff_record_align_bytes = 8;

class HandoffRing : NonCopyable {
 public:
  // capacity_bytes: a multiple of 16, at least 64.
  explicit HandoffRing(size_t capacity_bytes);

  size_t capacity_bytes() const { return capacity_; }
  // The largest payload push() accepts.
  size_t payload_bytes_max() const;

  // Producer: reserves room for a record; nullptr when it does not fit (the
  // caller then calls mark_lost()). The payload is written in place and
  // published by commit().
  char* reserve(HandoffKind kind, size_t payload_bytes);
  void commit();
  // A write of `version` (never 0) could not be handed over.
  void mark_lost(uint64_t version);

  // Consumer.
  struct Record {
    HandoffKind kind;
    std::string_view payload;
  };
  bool peek(Record& record);
  void pop();
  bool empty() const;
  // The lowest version lost since the last call; 0 when none was.
  uint64_t take_lost() { return lost_version_min_.exchange(0, std::memory_order_acq_rel); }
  size_t used_bytes() const;

 private:
  static size_t record_bytes(size_t payload_bytes);

  std::unique_ptr<char[]> buffer_;
  const size_t capacity_;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
  // Producer-only: the record being written.
  uint64_t pending_tail_ = 0;
  bool pending_ = false;
  alignas(64) std::atomic<uint64_t> lost_version_min_{0};  // 0 = nothing lost
};

}  // namespace ringcache::replication
