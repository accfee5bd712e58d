// ReplicationLog: the live stream of this node's writes, encoded once and
// read by every peer link at its own pace (replication thread only).
//
// The log is a sequence of chunks addressed by a free-running offset:
// - a bytes chunk holds whole wire frames back to back (PUT, DEL, FLUSH,
//   HEARTBEAT), so every chunk end, and the log's end at any moment, falls
//   between frames;
// - a lookup chunk holds one key whose value is too large to copy: each link
//   reads the key's current item from the store when it gets there. Its
//   extent in offsets is 1.
// Each streaming peer keeps a cursor; chunks every cursor has passed are
// freed (trim). The log holds at most bytes_max bytes of chunks: an append
// that would pass it fails, and the caller cuts the slowest peer, which is
// then resynced from the store instead of being fed from memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

namespace ringcache::replication {

class ReplicationLog {
 public:
  ReplicationLog(size_t bytes_max, size_t chunk_bytes);

  uint64_t begin() const { return begin_; }
  uint64_t end() const { return end_; }
  bool empty() const { return begin_ == end_; }
  // Memory held by chunks (their allocations).
  size_t held_bytes() const { return held_bytes_; }
  size_t bytes_max() const { return bytes_max_; }

  // Each returns false, changing nothing, when the log is full.
  bool append_frame(std::string_view frame);
  bool append_lookup(std::string_view key);

  // Frees the chunks that end at or before `offset` (<= end()).
  void trim(uint64_t offset);
  // Forgets everything (no peer reads the log): begin() becomes end().
  void clear();

  // What a reader at `offset` (begin() <= offset < end()) finds: for a bytes
  // chunk the bytes from offset to the chunk's current end (a frame
  // boundary); for a lookup chunk the key.
  struct Span {
    bool lookup = false;
    std::string_view bytes;
    uint64_t end = 0;  // offset just past this span
  };
  Span at(uint64_t offset) const;

  size_t chunks() const { return chunks_.size(); }

 private:
  // Buffers are plain arrays, not strings: their capacity must be exactly
  // what the bound counts, and appends must never move them.
  struct Chunk {
    uint64_t start = 0;
    bool lookup = false;
    std::unique_ptr<char[]> data;
    size_t capacity = 0;
    size_t size = 0;
    uint64_t extent() const { return lookup ? 1 : size; }
    std::string_view bytes() const { return {data.get(), size}; }
  };
  bool reserve_chunk(size_t bytes, bool lookup);
  size_t chunk_index(uint64_t offset) const;
  void release(Chunk& chunk);

  const size_t bytes_max_;
  const size_t chunk_bytes_;
  std::deque<Chunk> chunks_;
  std::unique_ptr<char[]> spare_;  // one freed chunk_bytes_ buffer, kept to avoid allocator churn
  uint64_t begin_ = 0;
  uint64_t end_ = 0;
  size_t held_bytes_ = 0;
};

}  // namespace ringcache::replication
