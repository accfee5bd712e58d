#include "server/replication/piece_queue.h"

#include <cassert>

#include "server/io/iovec_runs.h"

namespace ringcache::replication {

std::string& PieceQueue::tail_bytes() {
  if (pieces_.empty() || pieces_.back().pin) pieces_.emplace_back();
  return pieces_.back().bytes;
}

void PieceQueue::append_pinned(store::PinnedItem pin) {
  assert(pin);
  if (pin.value_size() == 0) return;
  Piece piece;
  piece.pin = std::move(pin);
  pieces_.push_back(std::move(piece));
  ++pins_;
}

size_t PieceQueue::gather(iovec* iov, size_t iov_max) const {
  assert(iov != nullptr || iov_max == 0);
  size_t count = 0;
  for (const Piece& piece : pieces_) {
    if (count == iov_max) break;
    if (!piece.pin) {
      if (piece.bytes.size() == piece.sent) continue;
      count = server::add_iovec(iov, count, std::string_view(piece.bytes).substr(piece.sent));
      continue;
    }
    count = server::add_value_runs(iov, count, iov_max, piece.sent, piece.pin.value_size(),
                                   [&](uint64_t offset) { return piece.pin.value_chunk(offset); });
  }
  assert(count <= iov_max);
  assert(!(count == 0 && iov_max > 0 && !pieces_.empty() && pieces_.front().pin));
  return count;
}

void PieceQueue::consume(size_t n) {
  while (n > 0) {
    assert(!pieces_.empty());
    Piece& front = pieces_.front();
    const uint64_t left = front.size() - front.sent;
    if (n < left) {
      front.sent += n;
      return;
    }
    n -= left;
    if (front.pin) --pins_;
    pieces_.pop_front();
  }
  // Empty bytes pieces left behind by tail_bytes() carry nothing to send.
  while (!pieces_.empty() && !pieces_.front().pin && pieces_.front().bytes.size() == pieces_.front().sent) {
    pieces_.pop_front();
  }
  assert(!(pins_ > pieces_.size()));
}

uint64_t PieceQueue::unsent_bytes() const {
  uint64_t total = 0;
  for (const Piece& piece : pieces_) total += piece.size() - piece.sent;
  return total;
}

void PieceQueue::clear() {
  pieces_.clear();
  pins_ = 0;
}

}  // namespace ringcache::replication
