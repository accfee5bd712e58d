#include "server/io/connection.h"

#include <cassert>
#include <utility>

#include "server/io/tls/tls_channel.h"

namespace ringcache::server {

Connection::Connection(int fd, uint32_t slot, uint32_t generation, std::unique_ptr<Session> session)
    : fd_(fd), slot_(slot), generation_(generation), session_(std::move(session)) {
  assert(fd >= 0);
  assert(session_ != nullptr);
}

Connection::~Connection() = default;

bool Connection::may_resume(size_t worker_held_other) const {
  if (out.empty()) return true;
  return out.held_bytes() <= write_queue_resume_bytes && out.pins() < pins_max &&
         worker_held_other + out.held_bytes() < worker_write_queue_bytes_max;
}

size_t Connection::consume(std::string_view input, size_t worker_held_other) {
  if (close_after_reply_) return input.size();  // nothing after the refusal or quit is answered
  const ConnectionPause pause(out, worker_held_other);
  size_t used_total = 0;
  while (true) {
    const ConsumeResult result = session_->consume(input.substr(used_total), out, pause);
    assert(result.used <= input.size() - used_total);
    used_total += result.used;
    if (result.paused) paused_ = true;
    // With nothing queued only the session's own wait pauses, and only the
    // idle-upload list (mid_request) resumes a connection without a send.
    assert(!(result.paused && out.empty() && !session_->mid_request()));
    if (result.close_after_reply) {
      close_after_reply_ = true;
      return input.size();
    }
    if (!result.handed_over) return used_total;
    // From here on the bytes belong to the successor (a replication stream).
    std::unique_ptr<Session> successor = session_->take_successor();
    assert(successor != nullptr);
    session_ = std::move(successor);
  }
}

FeedStatus Connection::feed(std::string_view bytes, size_t worker_held_other) {
  if (!paused_ && stash_empty()) {
    bytes.remove_prefix(consume(bytes, worker_held_other));
    if (bytes.empty()) return FeedStatus::ok;
  }
  if (close_after_reply_) return FeedStatus::ok;
  if (stash_.size() - stash_head_ + bytes.size() > input_stash_bytes_max) {
    return FeedStatus::stash_overflow;
  }
  if (stash_head_ > 0 && stash_head_ == stash_.size()) {
    stash_.clear();
    stash_head_ = 0;
  }
  stash_.append(bytes);
  return FeedStatus::ok;
}

void Connection::resume(size_t worker_held_other) {
  paused_ = false;
  // Even with nothing stashed: a streamed PUT may still owe its put_end, a
  // text multi-get its remaining keys.
  const std::string_view pending = std::string_view(stash_).substr(stash_head_);
  stash_head_ += consume(pending, worker_held_other);
  if (stash_empty() && stash_.capacity() > 0) {
    // An idle connection should hold no memory.
    std::string().swap(stash_);
    stash_head_ = 0;
  }
}

}  // namespace ringcache::server
