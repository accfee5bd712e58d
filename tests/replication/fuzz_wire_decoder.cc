// libFuzzer target for the replication stream decoder (wire_decoder.h):
// anyone who can reach a node's binary port can open a replication
// connection and send arbitrary bytes after a valid hello.
//
// The first input byte picks a chunk size; the rest is the stream, fed in
// chunks of that size and then whole, and the two runs must give the same
// events (put_data merged). The decoder's contract is checked on every call.
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "server/replication/wire_decoder.h"

namespace {

using ringcache::replication::DecodeEvent;
using ringcache::replication::DecodeKind;
using ringcache::replication::DecoderLimits;
using ringcache::replication::StreamDecoder;

constexpr uint64_t item_max_bytes = 4096;
constexpr uint32_t inline_value_max_bytes = 512;

void require(bool ok) {
  if (!ok) std::abort();
}

struct Seen {
  DecodeKind kind;
  std::string key;
  std::string data;
  uint64_t value_size;
  uint64_t version;
  uint64_t number;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> decode(std::string_view stream, size_t chunk) {
  DecoderLimits limits;
  limits.item_max_bytes = item_max_bytes;
  limits.inline_value_max_bytes = inline_value_max_bytes;
  StreamDecoder decoder(limits);
  std::vector<Seen> out;
  uint64_t streaming_left = 0;
  bool streaming = false;
  for (size_t at = 0; at < stream.size() || at == 0; at += chunk) {
    std::string_view input = stream.substr(at, chunk);
    while (true) {
      size_t used = 0;
      const DecodeEvent e = decoder.next(input, used);
      require(used <= input.size());
      require(decoder.buffered_bytes() <= item_max_bytes + inline_value_max_bytes + 64 * 1024);
      input.remove_prefix(used);
      if (e.kind == DecodeKind::need_more) {
        require(input.empty());
        break;
      }
      require(e.key.size() <= item_max_bytes);
      switch (e.kind) {
        case DecodeKind::put_begin:
          require(!streaming && e.value_size > inline_value_max_bytes && e.value_size <= item_max_bytes);
          streaming = true;
          streaming_left = e.value_size;
          break;
        case DecodeKind::put_data:
          require(streaming && !e.data.empty() && e.data.size() <= streaming_left);
          streaming_left -= e.data.size();
          if (!out.empty() && out.back().kind == DecodeKind::put_data) {
            out.back().data += e.data;
            continue;
          }
          break;
        case DecodeKind::put_end:
          require(streaming && streaming_left == 0 && used == 0);
          streaming = false;
          break;
        case DecodeKind::put:
          require(!streaming && e.data.size() <= inline_value_max_bytes);
          break;
        default:
          require(!streaming);
          break;
      }
      out.push_back(Seen{e.kind, std::string(e.key), std::string(e.data), e.value_size, e.meta.version,
                         e.number});
    }
    if (stream.empty()) break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<Seen> pieces = decode(stream, chunk);
  const std::vector<Seen> whole = decode(stream, stream.size() + 1);
  require(pieces == whole);
  return 0;
}
