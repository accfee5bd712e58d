#include "server/replication/handoff_ring.h"

#include <cassert>
#include <cstring>

#include "server/replication/wire.h"

namespace ringcache::replication {
namespace {

void write_header(char* at, HandoffKind kind, size_t payload_bytes) {
  std::memset(at, 0, handoff_record_header_bytes);
  put_be(at, payload_bytes, 4);
  at[4] = static_cast<char>(kind);
}

}  // namespace

HandoffRing::HandoffRing(size_t capacity_bytes)
    : buffer_(new char[capacity_bytes]), capacity_(capacity_bytes) {
  assert(capacity_bytes >= 64);
  assert(capacity_bytes % (2 * handoff_record_align_bytes) == 0);
}

size_t HandoffRing::record_bytes(size_t payload_bytes) {
  const size_t raw = handoff_record_header_bytes + payload_bytes;
  return (raw + handoff_record_align_bytes - 1) / handoff_record_align_bytes *
         handoff_record_align_bytes;
}

size_t HandoffRing::payload_bytes_max() const { return capacity_ / 2 - handoff_record_header_bytes; }

char* HandoffRing::reserve(HandoffKind kind, size_t payload_bytes) {
  assert(!pending_);
  assert(kind != HandoffKind::padding);
  if (payload_bytes > payload_bytes_max()) return nullptr;
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  assert(tail - head <= capacity_);
  const size_t free_bytes = capacity_ - (tail - head);
  const size_t need = record_bytes(payload_bytes);
  const size_t index = tail % capacity_;
  const size_t to_end = capacity_ - index;
  uint64_t at = tail;
  if (need > to_end) {
    if (free_bytes < to_end + need) return nullptr;
    // Every record is 8-aligned, so at least a header fits before the end.
    write_header(buffer_.get() + index, HandoffKind::padding, to_end - handoff_record_header_bytes);
    at += to_end;
  } else if (free_bytes < need) {
    return nullptr;
  }
  char* record = buffer_.get() + at % capacity_;
  write_header(record, kind, payload_bytes);
  pending_tail_ = at + need;
  pending_ = true;
  return record + handoff_record_header_bytes;
}

void HandoffRing::mark_lost(uint64_t version) {
  assert(version != 0);
  uint64_t old = lost_version_min_.load(std::memory_order_relaxed);
  while ((old == 0 || version < old) &&
         !lost_version_min_.compare_exchange_weak(old, version, std::memory_order_acq_rel)) {
  }
}

void HandoffRing::commit() {
  assert(pending_);
  pending_ = false;
  // seq_cst, not just release: the wake-up protocol (replicator.h) needs
  // this store ordered before the producer's next read of `sleeping_`.
  tail_.store(pending_tail_, std::memory_order_seq_cst);
}

bool HandoffRing::peek(Record& record) {
  uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  while (head != tail) {
    const char* at = buffer_.get() + head % capacity_;
    const size_t payload_bytes = static_cast<size_t>(get_be(at, 4));
    const auto kind = static_cast<HandoffKind>(at[4]);
    if (kind == HandoffKind::padding) {
      head += handoff_record_header_bytes + payload_bytes;
      head_.store(head, std::memory_order_release);
      continue;
    }
    assert(kind == HandoffKind::frame || kind == HandoffKind::lookup);
    record.kind = kind;
    record.payload = std::string_view(at + handoff_record_header_bytes, payload_bytes);
    return true;
  }
  return false;
}

void HandoffRing::pop() {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  assert(head != tail_.load(std::memory_order_acquire));
  const char* at = buffer_.get() + head % capacity_;
  const size_t payload_bytes = static_cast<size_t>(get_be(at, 4));
  assert(static_cast<HandoffKind>(at[4]) != HandoffKind::padding);
  head_.store(head + record_bytes(payload_bytes), std::memory_order_release);
}

bool HandoffRing::empty() const {
  return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_seq_cst);
}

size_t HandoffRing::used_bytes() const {
  return static_cast<size_t>(tail_.load(std::memory_order_acquire) -
                             head_.load(std::memory_order_acquire));
}

}  // namespace ringcache::replication
