#include "mc_binary_codec.h"

#include <cassert>
#include <cstring>

namespace ringcache::loadgen {

namespace {

using namespace mc_binary_wire;

std::byte* put_be(std::byte* out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) {
    out[i] = static_cast<std::byte>(value >> (8 * (bytes - 1 - i)));
  }
  return out + bytes;
}

std::uint32_t get_be(const std::byte* in, std::size_t bytes) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    value = (value << 8) | std::to_integer<std::uint32_t>(in[i]);
  }
  return value;
}

// A request header; the body (extras, key, value) follows.
std::byte* put_header(std::byte* out, opcode form, std::size_t key_bytes,
                      std::size_t extras_bytes, std::uint64_t body_bytes, std::uint32_t opaque) {
  assert(key_bytes <= UINT16_MAX && body_bytes <= UINT32_MAX &&
         "options validation keeps keys at 250 bytes and values below 4 GiB");
  std::memset(out, 0, header_bytes);
  out[0] = static_cast<std::byte>(magic::request);
  out[1] = static_cast<std::byte>(form);
  put_be(out + 2, key_bytes, 2);
  out[4] = static_cast<std::byte>(extras_bytes);
  put_be(out + 8, body_bytes, 4);
  put_be(out + 12, opaque, 4);
  return out + header_bytes;
}

reply_status error_status(status code) {
  switch (code) {
    case status::exists:
    case status::not_stored: return reply_status::not_stored;
    case status::too_large: return reply_status::ebig;
    case status::invalid: return reply_status::einval;
    case status::unknown_command: return reply_status::error;
    default: return reply_status::server_error;
  }
}

}  // namespace

void mc_binary_codec::flush_held_get(send_queue& out, opcode form, std::uint32_t flags) {
  assert(holding_get_);
  std::byte* cursor = out.append_space(header_bytes + held_key_.size());
  cursor = put_header(cursor, form, held_key_.size(), 0, held_key_.size(), next_sequence() | flags);
  std::memcpy(cursor, held_key_.data(), held_key_.size());
  holding_get_ = false;
}

void mc_binary_codec::encode_get(send_queue& out, std::string_view key) {
  if (holding_get_) flush_held_get(out, opcode::getq, 0);
  held_key_.assign(key);
  holding_get_ = true;
}

void mc_binary_codec::encode_put(send_queue& out, std::string_view key,
                                 std::span<const std::byte> value) {
  if (holding_get_) flush_held_get(out, opcode::getq, 0);
  batch_has_requests_ = true;
  const bool copy_value = value.size() <= value_copy_bytes_max;
  const std::size_t head_bytes = header_bytes + set_extras_bytes + key.size();
  std::byte* cursor = out.append_space(head_bytes + (copy_value ? value.size() : 0));
  cursor = put_header(cursor, opcode::set, key.size(), set_extras_bytes,
                      set_extras_bytes + key.size() + value.size(), next_sequence());
  std::memset(cursor, 0, set_extras_bytes);
  cursor += set_extras_bytes;
  std::memcpy(cursor, key.data(), key.size());
  cursor += key.size();
  if (copy_value) {
    if (!value.empty()) std::memcpy(cursor, value.data(), value.size());
  } else {
    out.append_reference(value);
  }
}

void mc_binary_codec::encode_batch_end(send_queue& out) {
  if (holding_get_) {
    if (!batch_has_requests_) {
      flush_held_get(out, opcode::get, 0);
    } else {
      const std::uint32_t sequence = sent_ & sequence_mask;
      flush_held_get(out, opcode::getq, noop_follows);
      put_header(out.append_space(header_bytes), opcode::noop, 0, 0, 0, sequence | noop_follows);
    }
  }
  batch_has_requests_ = false;
}

bool mc_binary_codec::gather_header(std::span<const std::byte> input, std::size_t& used) {
  const std::size_t step = std::min(header_bytes - header_seen_, input.size() - used);
  std::memcpy(header_.data() + header_seen_, input.data() + used, step);
  header_seen_ += step;
  used += step;
  return header_seen_ == header_bytes;
}

decode_step mc_binary_codec::apply_header(std::size_t used, request_kind pending) {
  const std::byte* header = header_.data();
  if (static_cast<magic>(header[0]) != magic::response) {
    return decode_step::malformed(used, "reply without the response magic 0x81");
  }
  const auto form = static_cast<opcode>(header[1]);
  const std::uint32_t key_bytes = get_be(header + 2, 2);
  const std::uint32_t extras_bytes = std::to_integer<std::uint32_t>(header[4]);
  const auto code = static_cast<status>(get_be(header + 6, 2));
  const std::uint32_t body_bytes = get_be(header + 8, 4);
  const std::uint32_t opaque = get_be(header + 12, 4);
  if (std::uint64_t{key_bytes} + extras_bytes > body_bytes) {
    return decode_step::malformed(used, "reply whose extras and key exceed its body");
  }
  const std::uint32_t in_flight = (sent_ - answered_) & sequence_mask;
  const std::uint32_t ahead = ((opaque & sequence_mask) - answered_) & sequence_mask;
  if (ahead >= in_flight) return decode_step::malformed(used, "reply to no request in flight");
  if (ahead > 0 || form == opcode::noop) {
    // The server answered a later request (or the batch's noop) first: the
    // pending getq missed. The header stays for the requests after it.
    if (pending != request_kind::get) {
      return decode_step::malformed(used, "a reply skipped a request that always answers");
    }
    if (form == opcode::noop && ahead == 0) {
      if (body_bytes != 0 || (opaque & noop_follows) == 0) {
        return decode_step::malformed(used, "unexpected noop reply");
      }
      header_seen_ = 0;
    }
    answered_ = (answered_ + 1) & sequence_mask;
    return decode_step::complete(used, reply_status::miss);
  }
  header_seen_ = 0;
  opaque_ = opaque;
  value_bytes_ = 0;
  if (code == status::ok) {
    status_ = pending == request_kind::get ? reply_status::hit : reply_status::stored;
    if (pending == request_kind::get) value_bytes_ = body_bytes - extras_bytes - key_bytes;
  } else if (code == status::not_found && pending == request_kind::get) {
    status_ = reply_status::miss;
  } else {
    status_ = error_status(code);
  }
  begin_skip(body_bytes);
  state_ = state::body;
  return skipping() ? decode_step::need_more(used) : value_skipped(used);
}

decode_step mc_binary_codec::decode(std::span<const std::byte> input, request_kind pending) {
  std::size_t used = 0;
  for (;;) {
    switch (state_) {
      case state::header:
        if (!gather_header(input, used)) return decode_step::need_more(used);
        {
          const decode_step step = apply_header(used, pending);
          if (step.state != decode_state::need_more) return step;
        }
        break;
      case state::body:
        used += skip(input.size() - used);
        if (skipping()) return decode_step::need_more(used);
        {
          const decode_step step = value_skipped(used);
          if (step.state != decode_state::need_more) return step;
        }
        break;
      case state::noop: {
        if (!gather_header(input, used)) return decode_step::need_more(used);
        header_seen_ = 0;
        const std::byte* header = header_.data();
        if (static_cast<magic>(header[0]) != magic::response ||
            static_cast<opcode>(header[1]) != opcode::noop || get_be(header + 8, 4) != 0 ||
            get_be(header + 12, 4) != opaque_) {
          return decode_step::malformed(used, "the batch's noop reply did not follow its last get");
        }
        state_ = state::header;
        answered_ = (answered_ + 1) & sequence_mask;
        return decode_step::complete(used, status_, value_bytes_);
      }
    }
  }
}

decode_step mc_binary_codec::value_skipped(std::size_t consumed) {
  if ((opaque_ & noop_follows) != 0) {
    state_ = state::noop;
    return decode_step::need_more(consumed);
  }
  state_ = state::header;
  answered_ = (answered_ + 1) & sequence_mask;
  return decode_step::complete(consumed, status_, value_bytes_);
}

}  // namespace ringcache::loadgen
