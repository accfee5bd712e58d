#include "binary_codec.h"

#include <cassert>
#include <cstdint>
#include <cstring>
#include <optional>

namespace ringcache::loadgen {

namespace {

std::byte* put_u32_be(std::byte* out, std::uint32_t value) {
  out[0] = static_cast<std::byte>(value >> 24);
  out[1] = static_cast<std::byte>(value >> 16);
  out[2] = static_cast<std::byte>(value >> 8);
  out[3] = static_cast<std::byte>(value);
  return out + binary_wire::length_bytes;
}

std::uint32_t checked_length(std::size_t length) {
  assert(length <= UINT32_MAX && "options validation keeps keys and values below 4 GiB");
  return static_cast<std::uint32_t>(length);
}

std::optional<reply_status> status_of_code(std::uint8_t code, request_kind pending) {
  switch (code) {
    case binary_wire::reply_ok:
      return pending == request_kind::put ? reply_status::stored : reply_status::hit;
    case binary_wire::reply_enotfound:
      return pending == request_kind::get ? reply_status::miss : reply_status::not_found_on_put;
    case binary_wire::reply_einval: return reply_status::einval;
    case binary_wire::reply_ebinary: return reply_status::ebinary;
    case binary_wire::reply_ebig: return reply_status::ebig;
    case binary_wire::reply_eunk: return reply_status::eunk;
    default: return std::nullopt;
  }
}

}  // namespace

void binary_codec::encode_get(send_queue& out, std::string_view key) {
  std::byte* cursor = out.append_space(1 + binary_wire::length_bytes + key.size());
  *cursor++ = std::byte{binary_wire::op_get};
  cursor = put_u32_be(cursor, checked_length(key.size()));
  std::memcpy(cursor, key.data(), key.size());
}

void binary_codec::encode_put(send_queue& out, std::string_view key,
                              std::span<const std::byte> value) {
  const bool copy_value = value.size() <= value_copy_bytes_max;
  const std::size_t header_bytes = 1 + 2 * binary_wire::length_bytes + key.size();
  std::byte* cursor = out.append_space(header_bytes + (copy_value ? value.size() : 0));
  *cursor++ = std::byte{binary_wire::op_put};
  cursor = put_u32_be(cursor, checked_length(key.size()));
  std::memcpy(cursor, key.data(), key.size());
  cursor += key.size();
  cursor = put_u32_be(cursor, checked_length(value.size()));
  if (copy_value) {
    if (!value.empty()) std::memcpy(cursor, value.data(), value.size());
  } else {
    out.append_reference(value);
  }
}

decode_step binary_codec::decode(std::span<const std::byte> input, request_kind pending) {
  std::size_t used = 0;
  while (used < input.size()) {
    switch (state_) {
      case state::code: {
        const auto code = std::to_integer<std::uint8_t>(input[used++]);
        const std::optional<reply_status> status = status_of_code(code, pending);
        if (!status) {
          return decode_step::malformed(used, "unknown reply code");
        }
        if (*status == reply_status::hit) {
          state_ = state::length;
          length_ = 0;
          length_bytes_seen_ = 0;
          break;
        }
        return decode_step::complete(used, *status);
      }
      case state::length: {
        length_ = (length_ << 8) | std::to_integer<std::uint32_t>(input[used++]);
        if (++length_bytes_seen_ < binary_wire::length_bytes) break;
        begin_skip(length_);
        state_ = state::body;
        if (!skipping()) return value_skipped(used);
        break;
      }
      case state::body: {
        used += skip(input.size() - used);
        if (!skipping()) return value_skipped(used);
        break;
      }
    }
  }
  return decode_step::need_more(used);
}

decode_step binary_codec::value_skipped(std::size_t consumed) {
  state_ = state::code;
  return decode_step::complete(consumed, reply_status::hit, length_);
}

}  // namespace ringcache::loadgen
