// Responses of memcached's binary protocol (docs/memcache_binary_protocol.md),
// as the processor (mc_binary_process.cc) writes them: a header, extras,
// key and value in memcached's layout, built on the stack and appended to
// the connection's OutputQueue; a large value goes after it, sent from the
// store without a copy. Apart from the processor so that the processor
// holds what a command does, this file how its answer is laid out.
#pragma once

#include <array>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "server/io/output_queue.h"
#include "server/process/pinned_value.h"
#include "server/protocol/memcache_binary/mc_binary_parser.h"
#include "store/store.h"

namespace ringcache::server::mc_binary {

namespace wire = protocol::memcache_binary;

// Responses built on the stack: the header, 4 bytes of flags, a key and a
// small value or message. Larger values are appended after it.
constexpr size_t response_inline_bytes_max = 1024;

// count bytes of value, most significant first, at `at`.
inline void store_be(char* at, uint64_t value, size_t count) {
  for (size_t i = 0; i < count; ++i) at[i] = static_cast<char>(value >> (8 * (count - 1 - i)));
}

// The message memcached sends as the value of an error response.
std::string_view message_of(wire::Status status);

// One response: header, extras, key and value, in memcached's layout.
class Response {
 public:
  Response(const wire::Header& request, wire::Status status, uint64_t cas)
      : request_(request), status_(status), cas_(cas) {}

  // Appends the response whose body is extras, key and the given value.
  void send(OutputQueue& out, std::string_view extras, std::string_view key, std::string_view value) {
    head(extras, key, value.size());
    if (value.size() <= bytes_.size() - size_) {
      add(value);
      out.append(view());
      return;
    }
    out.append(view());
    out.append(value);
  }

  // Appends the response whose value is the item's (sent from the store when large).
  void send_item(OutputQueue& out, std::string_view extras, std::string_view key, const store::ItemView& item) {
    head(extras, key, item.value_size());
    if (item.contiguous() && item.value_size() <= bytes_.size() - size_) {
      add(item.value());
      out.append(view());
      return;
    }
    out.append(view());
    append_value(out, item);
  }

 private:
  void head(std::string_view extras, std::string_view key, uint64_t value_size) {
    assert(extras.size() + key.size() + wire::header_bytes <= bytes_.size());
    char* at = bytes_.data();
    at[0] = static_cast<char>(wire::response_magic);
    at[1] = static_cast<char>(request_.opcode);
    store_be(at + 2, key.size(), 2);
    at[4] = static_cast<char>(extras.size());
    at[5] = 0;  // data type: raw bytes
    store_be(at + 6, static_cast<uint16_t>(status_), 2);
    store_be(at + 8, extras.size() + key.size() + value_size, 4);
    store_be(at + 12, request_.opaque, 4);
    store_be(at + 16, cas_, 8);
    size_ = wire::header_bytes;
    add(extras);
    add(key);
  }
  void add(std::string_view bytes) {
    assert(size_ + bytes.size() <= bytes_.size());
    if (!bytes.empty()) std::memcpy(bytes_.data() + size_, bytes.data(), bytes.size());
    size_ += bytes.size();
  }
  std::string_view view() const { return {bytes_.data(), size_}; }

  const wire::Header& request_;
  wire::Status status_;
  uint64_t cas_;
  std::array<char, response_inline_bytes_max> bytes_;
  size_t size_ = 0;
};

void respond_ok(OutputQueue& out, const wire::Header& request, uint64_t cas = 0, std::string_view value = {});
// status is not success; the value is its message.
void respond_error(OutputQueue& out, const wire::Header& request, wire::Status status);

}  // namespace ringcache::server::mc_binary
