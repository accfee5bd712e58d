// The seam between the load generator and a wire protocol.
//
// A codec encodes GET and PUT requests into a send_queue and decodes the
// replies incrementally: it is fed whatever bytes the socket produced, keeps
// the partial reply between calls and never copies a value (it only counts its
// bytes). Better still, it tells the caller how many value bytes it would skip
// unseen, so that the caller can drop them in the kernel (recv with MSG_TRUNC)
// without copying them at all. Replies come in request order, so the caller
// tells the decoder which request the next reply answers.
//
// Three implementations exist: the ringcache binary protocol
// (docs/binary_protocol.md), the memcached text protocol (set/get) and
// memcached's binary protocol (set, get/getq/noop), so the same load can be
// aimed at ringcached and at memcached.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "send_queue.h"

namespace ringcache::loadgen {

enum class protocol_kind : std::uint8_t { binary, text, mcbin };
enum class request_kind : std::uint8_t { get, put };

// Every way a reply can end; the first three are successes.
enum class reply_status : std::uint8_t {
  stored,        // PUT acknowledged (binary OK, text STORED)
  hit,           // GET returned a value
  miss,          // GET found nothing (binary ENOTFOUND, text END)
  einval,        // binary 111
  ebinary,       // binary 113
  ebig,          // binary 114
  eunk,          // binary 115
  not_found_on_put,  // binary 112 answering a PUT: the server broke the contract
  not_stored,    // text NOT_STORED
  server_error,  // text SERVER_ERROR ...
  client_error,  // text CLIENT_ERROR ...
  error,         // text ERROR
};
inline constexpr std::size_t reply_status_count = 12;

std::string_view reply_status_name(reply_status status);
inline bool is_error(reply_status status) {
  return status != reply_status::stored && status != reply_status::hit &&
         status != reply_status::miss;
}

enum class decode_state : std::uint8_t {
  need_more,  // all input consumed, the reply is not complete yet
  complete,   // one reply ended after `consumed` bytes
  malformed,  // the stream cannot be understood; the connection must close
};

struct decode_step {
  decode_state state;
  std::size_t consumed;
  reply_status status;        // meaningful when complete
  std::uint64_t value_bytes;  // GET hit: length of the value skipped
  std::string_view problem;   // meaningful when malformed; static text

  static decode_step need_more(std::size_t consumed) {
    return {decode_state::need_more, consumed, reply_status::error, 0, {}};
  }
  static decode_step complete(std::size_t consumed, reply_status status,
                              std::uint64_t value_bytes = 0) {
    return {decode_state::complete, consumed, status, value_bytes, {}};
  }
  static decode_step malformed(std::size_t consumed, std::string_view problem) {
    return {decode_state::malformed, consumed, reply_status::error, 0, problem};
  }
};

class protocol_codec {
 public:
  virtual ~protocol_codec() = default;

  // A batch is the requests encoded between two encode_batch_end calls; they
  // leave together. A codec may hold a request back until it learns what
  // follows it (memcached's binary protocol sends a batch's GETs quiet).
  virtual void encode_get(send_queue& out, std::string_view key) = 0;
  // `value` is referenced, not copied, when larger than value_copy_bytes_max.
  virtual void encode_put(send_queue& out, std::string_view key,
                          std::span<const std::byte> value) = 0;
  virtual void encode_batch_end(send_queue&) {}

  // Consumes a prefix of `input` toward the reply to `pending`. Stops at the
  // end of one reply so that the caller can account for it.
  virtual decode_step decode(std::span<const std::byte> input, request_kind pending) = 0;
  // Whether decode() can complete the pending request's reply without further
  // input: a quiet GET that missed is only known to have missed by the reply
  // that came instead, which then answers the requests after it too.
  virtual bool reply_ready() const { return false; }

  // Value bytes the codec will skip unseen next (0 when it must look at the
  // next byte): the caller may drop them in the kernel with recv(MSG_TRUNC)
  // instead of copying them out.
  std::uint64_t discardable_bytes() const { return value_bytes_to_skip_; }
  // Accounts for `bytes` (at most discardable_bytes()) dropped by the caller;
  // completes the reply if they were its last bytes.
  decode_step discard(std::uint64_t bytes) {
    assert(bytes <= value_bytes_to_skip_);
    value_bytes_to_skip_ -= bytes;
    return value_bytes_to_skip_ > 0 ? decode_step::need_more(0) : value_skipped(0);
  }

 protected:
  // A value of `bytes` comes next, skipped unseen by decode() or discard().
  void begin_skip(std::uint64_t bytes) { value_bytes_to_skip_ = bytes; }
  // Skips what `available` input bytes hold of the value; returns how many.
  std::size_t skip(std::size_t available) {
    const auto step =
        static_cast<std::size_t>(std::min<std::uint64_t>(value_bytes_to_skip_, available));
    value_bytes_to_skip_ -= step;
    return step;
  }
  bool skipping() const { return value_bytes_to_skip_ > 0; }
  // Where the reply goes once its value's last byte is skipped, after
  // `consumed` bytes of the current input.
  virtual decode_step value_skipped(std::size_t consumed) = 0;

 private:
  std::uint64_t value_bytes_to_skip_ = 0;
};

std::unique_ptr<protocol_codec> make_codec(protocol_kind kind);
std::string_view protocol_name(protocol_kind kind);

}  // namespace ringcache::loadgen
