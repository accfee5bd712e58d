#include "server/io/output_queue.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "server/io/iovec_runs.h"

namespace ringcache::server {

void OutputQueue::append(std::string_view bytes) {
  while (!bytes.empty()) {
    if (chunks_.empty() || !chunks_.back().block || chunks_.back().end == chunks_.back().capacity) {
      const size_t capacity = std::max(next_block_bytes_, std::min(bytes.size(), output_block_bytes_max));
      Chunk chunk;
      chunk.block = std::make_unique<char[]>(capacity);
      chunk.capacity = static_cast<uint32_t>(capacity);
      chunks_.push_back(std::move(chunk));  // may throw: the new block is then freed, nothing changed
      held_bytes_ += capacity;
      next_block_bytes_ = std::min(capacity * 2, output_block_bytes_max);
    }
    Chunk& tail = chunks_.back();
    const size_t take = std::min<size_t>(bytes.size(), tail.capacity - tail.end);
    std::memcpy(tail.block.get() + tail.end, bytes.data(), take);
    tail.end += static_cast<uint32_t>(take);
    pending_bytes_ += take;
    bytes.remove_prefix(take);
  }
}

void OutputQueue::append_pinned(std::unique_ptr<PinnedValue> value) {
  assert(value);
  assert(value->size() > 0);
  const uint64_t size = value->size();
  Chunk chunk;
  chunk.pin = std::move(value);
  chunk.pin_size = size;
  chunks_.push_back(std::move(chunk));
  pending_bytes_ += size;
  ++pins_;
}

size_t OutputQueue::gather(struct iovec* iov, size_t iov_max) const {
  size_t used = 0;
  for (const Chunk& chunk : chunks_) {
    if (used == iov_max) break;
    if (chunk.block) {
      assert(chunk.begin < chunk.end);
      used = add_iovec(iov, used, std::string_view(chunk.block.get() + chunk.begin, chunk.end - chunk.begin));
      continue;
    }
    used = add_value_runs(iov, used, iov_max, chunk.pin_offset, chunk.pin_size,
                          [&](uint64_t offset) { return chunk.pin->chunk(offset); });
  }
  return used;
}

void OutputQueue::consume(uint64_t sent) {
  assert(sent <= pending_bytes_);
  pending_bytes_ -= sent;
  while (sent > 0) {
    assert(!chunks_.empty());
    Chunk& head = chunks_.front();
    if (head.block) {
      const uint64_t take = std::min<uint64_t>(sent, head.end - head.begin);
      head.begin += static_cast<uint32_t>(take);
      sent -= take;
      if (head.begin < head.end) break;
      held_bytes_ -= head.capacity;
    } else {
      const uint64_t take = std::min(sent, head.pin_size - head.pin_offset);
      head.pin_offset += take;
      sent -= take;
      if (head.pin_offset < head.pin_size) break;
      --pins_;
    }
    chunks_.pop_front();
  }
  if (chunks_.empty()) {
    assert(held_bytes_ == 0 && pins_ == 0 && pending_bytes_ == 0);
    next_block_bytes_ = output_block_bytes_min;
  }
}

void OutputQueue::clear() {
  chunks_.clear();
  held_bytes_ = 0;
  pending_bytes_ = 0;
  pins_ = 0;
  next_block_bytes_ = output_block_bytes_min;
}

}  // namespace ringcache::server
