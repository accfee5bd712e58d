// libFuzzer target for the authentication handshake's decoders
// (server/replication/handshake.h): whoever reaches a node's binary port
// can send any hello and any proof; whoever a node connects to can answer
// with any challenge.
//
// The first input byte picks the decoder (low 2 bits) and a chunk size
// (fuzz_support.h); the rest is fed as a connection would deliver it, growing
// a chunk at a time.
// Each decoder must answer need_more for every proper prefix of a message
// and then the same as for the whole input, never read past what it
// reports, and never ask for more than its bounded message size.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/replication/handshake.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace ringcache::replication;
using fuzz_support::require;

struct Result {
  HandshakeStatus status = HandshakeStatus::need_more;
  size_t consumed = 0;
  std::string detail;
};

Result decode(uint8_t which, std::string_view input) {
  Result r;
  switch (which) {
    case 0: {
      Challenge c;
      r.status = decode_challenge(input, c, r.consumed);
      if (r.status == HandshakeStatus::ok) {
        require(is_valid_node_id(c.acceptor_id), "a decoded challenge names a valid node");
        require(c.acceptor_id.data() >= input.data() &&
                    c.acceptor_id.data() + c.acceptor_id.size() <= input.data() + r.consumed,
                "the acceptor id lies in what the challenge consumed");
        r.detail = std::string(c.acceptor_id) + std::string(reinterpret_cast<const char*>(c.nonce.data()), 32) +
                   std::string(reinterpret_cast<const char*>(c.mac.data()), 32);
      }
      break;
    }
    case 1: {
      AuthMac mac{};
      r.status = decode_response(input, mac, r.consumed);
      if (r.status == HandshakeStatus::ok) r.detail.assign(reinterpret_cast<const char*>(mac.data()), mac.size());
      require(r.status != HandshakeStatus::refused, "a response is never refused");
      break;
    }
    default:
      r.status = decode_auth_ok(input, r.consumed);
      break;
  }
  require(r.consumed <= input.size(), "consumed <= input size");
  require((r.status == HandshakeStatus::ok) == (r.consumed > 0), "only a decoded message consumes input");
  if (r.status == HandshakeStatus::need_more) {
    require(input.size() < challenge_bytes_max, "need_more only below the largest message");
  }
  return r;
}

void check_hello(std::string_view field) {
  Hello hello;
  if (parse_hello(field, hello) != HelloStatus::ok) return;
  require(is_valid_node_id(hello.node_id), "a parsed hello names a valid node");
  // What parses re-encodes to a hello that parses the same.
  std::string out;
  if (hello.version == HelloVersion::v1) {
    append_hello_v1(out, hello.node_id);
  } else {
    append_hello_v2(out, hello.node_id, hello.nonce);
  }
  Hello again;
  require(parse_hello(std::string_view(out).substr(5), again) == HelloStatus::ok, "a re-encoded hello parses");
  require(again.version == hello.version && again.node_id == hello.node_id && again.nonce == hello.nonce,
          "a re-encoded hello parses the same");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t header_bytes = 1;  // decoder, chunk size
  std::string_view input;
  if (!fuzz_support::split_input(data, size, header_bytes, input)) return 0;
  const auto which = static_cast<uint8_t>(data[0] & 3);
  const size_t chunk = fuzz_support::chunk_bytes_from(static_cast<uint8_t>(data[0] >> 2));
  if (which == 3) {
    check_hello(input);
    return 0;
  }
  const Result whole = decode(which, input);
  for (size_t have = 0; have < input.size(); have += chunk) {
    const Result part = decode(which, input.substr(0, have));
    if (part.status == HandshakeStatus::need_more) continue;
    // A decision on a prefix is final: more bytes never change it.
    require(part.status == whole.status && part.consumed == whole.consumed && part.detail == whole.detail,
            "a decision on a prefix is final");
  }
  return 0;
}
