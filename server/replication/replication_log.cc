#include "server/replication/replication_log.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace ringcache::replication {

ReplicationLog::ReplicationLog(size_t bytes_max, size_t chunk_bytes)
    : bytes_max_(bytes_max), chunk_bytes_(chunk_bytes) {
  assert(chunk_bytes > 0);
  assert(bytes_max >= chunk_bytes);
}

// Opens a new chunk at the end with room for `bytes`; false when that would
// pass bytes_max.
bool ReplicationLog::reserve_chunk(size_t bytes, bool lookup) {
  assert(held_bytes_ <= bytes_max_);
  const size_t capacity = lookup ? bytes : std::max(bytes, chunk_bytes_);
  if (held_bytes_ + capacity > bytes_max_) return false;
  Chunk chunk;
  chunk.start = end_;
  chunk.lookup = lookup;
  chunk.capacity = capacity;
  if (capacity == chunk_bytes_ && spare_) {
    chunk.data = std::move(spare_);
  } else {
    chunk.data = std::make_unique_for_overwrite<char[]>(std::max<size_t>(capacity, 1));
  }
  held_bytes_ += capacity;
  assert(!(held_bytes_ > bytes_max_));
  chunks_.push_back(std::move(chunk));
  return true;
}

bool ReplicationLog::append_frame(std::string_view frame) {
  assert(!frame.empty());
  const bool fits_tail = !chunks_.empty() && !chunks_.back().lookup &&
                         chunks_.back().capacity - chunks_.back().size >= frame.size();
  if (!fits_tail && !reserve_chunk(frame.size(), false)) return false;
  Chunk& tail = chunks_.back();
  assert(tail.capacity - tail.size >= frame.size());
  std::memcpy(tail.data.get() + tail.size, frame.data(), frame.size());
  tail.size += frame.size();
  end_ += frame.size();
  return true;
}

bool ReplicationLog::append_lookup(std::string_view key) {
  if (!reserve_chunk(key.size(), true)) return false;
  Chunk& chunk = chunks_.back();
  if (!key.empty()) std::memcpy(chunk.data.get(), key.data(), key.size());
  chunk.size = key.size();
  end_ += 1;
  return true;
}

void ReplicationLog::release(Chunk& chunk) {
  assert(held_bytes_ >= chunk.capacity);
  held_bytes_ -= chunk.capacity;
  if (chunk.capacity == chunk_bytes_ && !spare_) spare_ = std::move(chunk.data);
}

void ReplicationLog::trim(uint64_t offset) {
  assert(offset >= begin_);
  assert(offset <= end_);
  while (!chunks_.empty()) {
    Chunk& front = chunks_.front();
    if (front.start + front.extent() > offset) break;
    release(front);
    chunks_.pop_front();
  }
  begin_ = offset;
  assert(chunks_.empty() ? begin_ == end_ : begin_ >= chunks_.front().start);
}

void ReplicationLog::clear() {
  for (Chunk& chunk : chunks_) release(chunk);
  chunks_.clear();
  begin_ = end_;
  assert(held_bytes_ == 0);
}

size_t ReplicationLog::chunk_index(uint64_t offset) const {
  // Chunks are ordered by start: the last one starting at or before offset.
  const auto it = std::upper_bound(chunks_.begin(), chunks_.end(), offset,
                                   [](uint64_t value, const Chunk& c) { return value < c.start; });
  assert(it != chunks_.begin());
  return static_cast<size_t>(it - chunks_.begin()) - 1;
}

ReplicationLog::Span ReplicationLog::at(uint64_t offset) const {
  assert(offset >= begin_);
  assert(offset < end_);
  const Chunk& chunk = chunks_[chunk_index(offset)];
  assert(offset < chunk.start + chunk.extent());
  Span span;
  span.lookup = chunk.lookup;
  if (chunk.lookup) {
    assert(offset == chunk.start);
    span.bytes = chunk.bytes();
  } else {
    span.bytes = chunk.bytes().substr(offset - chunk.start);
  }
  span.end = chunk.start + chunk.extent();
  return span;
}

}  // namespace ringcache::replication
