#include "server/io/connection.h"

#include <cassert>
#include <iterator>

#include "server/listen_sockets.h"

namespace ringcache::server {

Connection::Connection(int fd, uint32_t slot, uint32_t generation, const protocol::ParserLimits& limits,
                       TextProcessor* text)
    : fd_(fd), slot_(slot), generation_(generation), parser_(limits) {
  assert(fd >= 0);
  if (text != nullptr) text_ = std::make_unique<TextSession>(*text);
}

bool Connection::must_pause(size_t worker_held_other) const {
  const size_t held = out.held_bytes();
  if (held >= write_queue_bytes_max || out.pins() >= pins_max) return true;
  // A connection with nothing queued may always add a reply, so the worker
  // budget can never stop every connection at once.
  return !out.empty() && worker_held_other + held >= worker_write_queue_bytes_max;
}

bool Connection::may_resume(size_t worker_held_other) const {
  if (out.empty()) return true;
  return out.held_bytes() <= write_queue_resume_bytes && out.pins() < pins_max &&
         worker_held_other + out.held_bytes() < worker_write_queue_bytes_max;
}

size_t Connection::consume(std::string_view input, RequestProcessor& processor,
                           size_t worker_held_other) {
  if (text_) return consume_text(input, worker_held_other);
  if (incoming_) return consume_replication(input);
  if (parser_.at_frame_boundary() && !put_.active) {
    // Pipelined requests: start loading their store memory all at once.
    std::string_view keys[store::StoreThread::prefetch_keys_max];
    const size_t n = protocol::peek_frame_keys(input, keys, std::size(keys));
    if (n > 1) processor.prefetch({keys, n});
  }
  size_t used_total = 0;
  while (used_total < input.size() || put_.active) {
    if (close_after_reply_) return input.size();  // nothing after the refusal is answered
    if (must_pause(worker_held_other)) {
      paused_ = true;
      break;
    }
    size_t used = 0;
    const protocol::Event event = parser_.next(input.substr(used_total), used);
    assert(used <= input.size() - used_total);
    used_total += used;
    if (event.kind == protocol::EventKind::need_more) break;
    if (event.kind == protocol::EventKind::repl_hello) {
      incoming_ = processor.open_replication(event.data, peer_endpoint(), out);
      if (!incoming_) {
        close_after_reply_ = true;
        continue;
      }
      (void)incoming_->watch_connection(fd_);
      // From here on the bytes are the peer's stream, not requests.
      return used_total + consume_replication(input.substr(used_total));
    }
    if (processor.process(event, put_, out) == ProcessResult::close_after_reply) {
      close_after_reply_ = true;
    }
  }
  return used_total;
}

// A replication stream is applied as it arrives and answers nothing, so it
// never pauses; a byte that is not an opcode ends it.
size_t Connection::consume_replication(std::string_view input) {
  if (close_after_reply_) return input.size();
  std::string reply;
  if (incoming_->feed(input, reply) == replication::StreamStatus::close) close_after_reply_ = true;
  if (!reply.empty()) out.append(reply);
  return input.size();
}

replication::PeerEndpoint Connection::peer_endpoint() const {
  replication::PeerEndpoint endpoint;
  socklen_t length = sizeof(endpoint.address);
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&endpoint.address), &length) != 0) {
    endpoint.address.ss_family = AF_UNSPEC;  // allowed nowhere
    endpoint.text = "?";
  } else {
    endpoint.text = describe_address(endpoint.address, length);
  }
  return endpoint;
}

// Lets the text processor stop a multi-get between keys when this
// connection must pause.
class Connection::TextPause final : public PauseCheck {
 public:
  TextPause(const Connection& connection, size_t worker_held_other)
      : connection_(connection), worker_held_other_(worker_held_other) {}
  bool must_pause() const override { return connection_.must_pause(worker_held_other_); }

 private:
  const Connection& connection_;
  size_t worker_held_other_;
};

size_t Connection::consume_text(std::string_view input, size_t worker_held_other) {
  const TextPause pause(*this, worker_held_other);
  text_->prefetch(input);
  size_t used_total = 0;
  // A paused multi-get still has keys to answer even when no input is left.
  while (used_total < input.size() || text_->has_pending()) {
    if (close_after_reply_) return input.size();  // nothing after quit is answered
    if (must_pause(worker_held_other)) {
      paused_ = true;
      break;
    }
    const TextSession::Step step = text_->step(input.substr(used_total), out, pause);
    used_total += step.used;
    if (step.close) close_after_reply_ = true;
    if (step.need_more) break;
  }
  return used_total;
}

FeedStatus Connection::feed(std::string_view bytes, RequestProcessor& processor,
                            size_t worker_held_other) {
  if (!paused_ && stash_empty()) {
    bytes.remove_prefix(consume(bytes, processor, worker_held_other));
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

void Connection::resume(RequestProcessor& processor, size_t worker_held_other) {
  paused_ = false;
  // Even with nothing stashed: a streamed PUT may still owe its put_end, a
  // text multi-get its remaining keys.
  const std::string_view pending = std::string_view(stash_).substr(stash_head_);
  stash_head_ += consume(pending, processor, worker_held_other);
  if (stash_empty() && stash_.capacity() > 0) {
    // An idle connection should hold no memory.
    std::string().swap(stash_);
    stash_head_ = 0;
  }
}

}  // namespace ringcache::server
