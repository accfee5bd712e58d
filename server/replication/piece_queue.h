// PieceQueue: bytes waiting to be written to one peer that are not in the
// shared log: the handshake, resync chunks, and values read from the store.
// A piece is either copied bytes (many small frames back to back) or a
// pinned store item whose value is written straight from store memory, so a
// value of hundreds of MiB is never copied.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "store/store.h"

namespace ringcache::replication {

class PieceQueue {
 public:
  // The bytes piece at the end, created if the last piece is a pinned value;
  // encoders append frames to it.
  std::string& tail_bytes();
  void append_pinned(store::PinnedItem pin);

  // Fills up to iov_max iovecs with the next unsent bytes; returns how many.
  size_t gather(iovec* iov, size_t iov_max) const;
  // Marks n bytes (at most what gather offered) as written.
  void consume(size_t n);

  bool empty() const { return unsent_bytes() == 0; }
  uint64_t unsent_bytes() const;
  uint32_t pins() const { return pins_; }
  void clear();

 private:
  struct Piece {
    std::string bytes;
    store::PinnedItem pin;
    uint64_t sent = 0;
    uint64_t size() const { return pin ? pin.value_size() : bytes.size(); }
  };
  std::deque<Piece> pieces_;
  uint32_t pins_ = 0;
};

}  // namespace ringcache::replication
