#include "server/process/mc_binary_session.h"

#include <cassert>
#include <iterator>

namespace ringcache::server {

ConsumeResult McBinarySession::consume(std::string_view input, OutputQueue& out, const PauseCheck& pause) {
  ConsumeResult result;
  if (at_frame_boundary() && auth_.authenticated()) {
    // Pipelined requests (a multi-get is a run of getkq): start loading their store memory all at once.
    std::string_view keys[store::StoreThread::prefetch_keys_max];
    const size_t n = protocol::memcache_binary::peek_keys(input, keys, std::size(keys));
    if (n > 1) processor_.prefetch({keys, n});
  }
  // A streamed value owes its value_end even when no input is left.
  while (result.used < input.size() || stream_.active) {
    if (pause.must_pause()) {
      result.paused = true;
      return result;
    }
    size_t used = 0;
    const protocol::memcache_binary::Event event = parser_.next(input.substr(result.used), used);
    assert(used <= input.size() - result.used);
    result.used += used;
    if (event.kind == protocol::memcache_binary::EventKind::need_more) return result;
    if (processor_.process(event, stream_, auth_, out) == McBinaryResult::close) {
      result.close_after_reply = true;
      return result;
    }
  }
  return result;
}

}  // namespace ringcache::server
