// memcached's binary protocol (docs/memcache_binary_protocol.md), client side,
// so the same load can be aimed at memcached and at ringcached's text port,
// which speaks it when a connection's first byte is 0x80.
//
// Requests, each a 24-byte header (magic 0x80) and a body:
//   PUT = set (flags 0, expiration 0);
//   GET = getq when more requests follow it in the same batch (silent on a
//   miss), the batch's last GET a getq and a noop, as memcached's clients
//   batch them; a batch that is one GET alone is a plain get (it answers
//   a miss itself, no noop needed).
// Every request carries its sequence number in the opaque, which the reply
// copies: a reply to a later request, or the noop, proves that the getqs
// before it missed. The batch's last getq and its noop carry the same number
// with noop_follows set, so that a hit's reply and the noop after it complete
// that one GET together (nothing is left to decode once no request is in
// flight).
//
// Decoder states: header (24 bytes) --> body (extras, key, value: skipped)
// --> [noop_follows] noop (24 bytes) --> header.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "mc_binary_wire.h"
#include "protocol_codec.h"

namespace ringcache::loadgen {

class mc_binary_codec final : public protocol_codec {
 public:
  void encode_get(send_queue& out, std::string_view key) override;
  void encode_put(send_queue& out, std::string_view key,
                  std::span<const std::byte> value) override;
  void encode_batch_end(send_queue& out) override;
  decode_step decode(std::span<const std::byte> input, request_kind pending) override;
  bool reply_ready() const override {
    return state_ == state::header && header_seen_ == mc_binary_wire::header_bytes;
  }

 private:
  decode_step value_skipped(std::size_t consumed) override;

  enum class state : std::uint8_t { header, body, noop };

  // Writes the GET held back until the next request or the batch's end says
  // which form it takes.
  void flush_held_get(send_queue& out, mc_binary_wire::opcode form, std::uint32_t flags);
  std::uint32_t next_sequence() { return sent_++ & mc_binary_wire::sequence_mask; }
  // Reads header bytes into header_; true once all 24 are there.
  bool gather_header(std::span<const std::byte> input, std::size_t& used);
  // What the parsed header means for the request `pending`.
  decode_step apply_header(std::size_t used, request_kind pending);

  // Encoder: a GET waiting to learn whether a request follows it in its batch.
  std::string held_key_;
  bool holding_get_ = false;
  bool batch_has_requests_ = false;
  std::uint32_t sent_ = 0;

  // Decoder.
  state state_ = state::header;
  std::array<std::byte, mc_binary_wire::header_bytes> header_{};
  std::size_t header_seen_ = 0;
  std::uint32_t answered_ = 0;  // sequence number of the request the next reply completes
  std::uint32_t opaque_ = 0;
  reply_status status_ = reply_status::error;
  std::uint64_t value_bytes_ = 0;
};

}  // namespace ringcache::loadgen
