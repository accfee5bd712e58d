#include "server/process/binary_session.h"

#include <sys/socket.h>

#include <cassert>
#include <iterator>
#include <utility>

#include "server/io/tls/tls_channel.h"
#include "server/listen_sockets.h"
#include "server/process/replication_session.h"

namespace ringcache::server {

ConsumeResult BinarySession::consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) {
  ConsumeResult result;
  if (at_frame_boundary() && auth_.authenticated()) {
    // Pipelined requests: start loading their store memory all at once.
    std::string_view keys[store::StoreThread::prefetch_keys_max];
    const size_t n = protocol::peek_frame_keys(input, keys, std::size(keys));
    if (n > 1) processor_.prefetch({keys, n});
  }
  // A streamed PUT may owe its put_end even when no input is left.
  while (result.used < input.size() || put_.active || draining_) {
    if (pause.must_pause()) {
      result.paused = true;
      return result;
    }
    size_t used = 0;
    const protocol::Event event = parser_.next(input.substr(result.used), used);
    assert(used <= input.size() - result.used);
    result.used += used;
    if (event.kind == protocol::EventKind::need_more) return result;
    if (event.kind == protocol::EventKind::repl_hello) {
      // From here on the bytes are the peer's stream, not requests.
      if (open_replication(event.data, out)) {
        result.handed_over = true;
      } else {
        result.close_after_reply = true;
      }
      return result;
    }
    if (event.kind == protocol::EventKind::auth || event.kind == protocol::EventKind::auth_too_big) {
      if (!answer_auth(event, out)) {
        close_reason_ = "too many failed AUTH";
        result.close_after_reply = true;
        return result;
      }
      continue;
    }
    if (!auth_.authenticated() && event.kind != protocol::EventKind::repl_invalid) {
      refuse_unauthenticated(event, out);
      continue;
    }
    if (processor_.process(event, put_, out) == ProcessResult::close_after_reply) {
      result.close_after_reply = true;
      return result;
    }
  }
  return result;
}

bool BinarySession::answer_auth(const protocol::Event& event, OutputQueue& out) {
  const AuthAttempt attempt =
      event.kind == protocol::EventKind::auth ? auth_.attempt(event.key, event.data) : auth_.refuse();
  processor_.answer_auth(attempt == AuthAttempt::accepted, out);
  return attempt != AuthAttempt::refused_close;
}

void BinarySession::refuse_unauthenticated(const protocol::Event& event, OutputQueue& out) {
  switch (event.kind) {
    case protocol::EventKind::put_begin:
      assert(!draining_);
      draining_ = true;
      return;
    case protocol::EventKind::put_data:
      assert(draining_);
      return;
    case protocol::EventKind::put_end:
      assert(draining_);
      draining_ = false;
      break;
    default:
      assert(!draining_);
      break;
  }
  processor_.refuse(out);
}

bool BinarySession::open_replication(std::string_view hello, OutputQueue& out) {
  assert(!put_.active);
  replication::PeerEndpoint from;
  socklen_t length = sizeof(from.address);
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&from.address), &length) != 0) {
    from.address.ss_family = AF_UNSPEC;  // allowed nowhere
    from.text = "?";
  } else {
    from.text = describe_address(from.address, length);
  }
  from.tls = tls_ != nullptr;
  from.tls_verified = tls_ != nullptr && tls_->peer_verified();
  // Log lines about the stream then say which certificate opened it.
  if (from.tls_verified) from.text += ", certificate " + tls_->peer_subject();
  std::unique_ptr<replication::IncomingStream> stream = processor_.open_replication(hello, from, out);
  if (!stream) return false;
  (void)stream->watch_connection(fd_);
  successor_ = std::make_unique<ReplicationSession>(std::move(stream));
  return true;
}

}  // namespace ringcache::server
