// Unit tests of the load generator's codecs (fed whole and split at every
// byte) and of the send queue over a real socket pair. The other parts
// (histogram, key choosers, options, TLS set-up, echo framing, process CPU)
// are in loadgen_support_test.cc.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "binary_codec.h"
#include "mc_binary_codec.h"
#include "options.h"
#include "send_queue.h"
#include "text_codec.h"

using namespace ringcache::loadgen;

namespace {

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return std::vector<std::byte>(data, data + text.size());
}

// Everything a send_queue would write, read back through a socket pair.
std::string drain_through_socket(send_queue& queue) {
  int pair[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  const int small_buffer = 4096;
  setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &small_buffer, sizeof small_buffer);
  std::string received;
  int error_number = 0;
  for (;;) {
    const flush_status status = queue.flush(pair[0], error_number);
    REQUIRE(status != flush_status::failed);
    char chunk[65536];
    const ssize_t got = recv(pair[1], chunk, sizeof chunk, MSG_DONTWAIT);
    if (got > 0) received.append(chunk, static_cast<std::size_t>(got));
    if (status == flush_status::done && got <= 0) break;
  }
  close(pair[0]);
  close(pair[1]);
  return received;
}

struct decoded_reply {
  reply_status status;
  std::uint64_t value_bytes;
  bool operator==(const decoded_reply&) const = default;
};

// How doctest shows the replies of a failed check.
std::ostream& operator<<(std::ostream& out, const std::vector<decoded_reply>& replies) {
  for (const decoded_reply& reply : replies) {
    out << reply_status_name(reply.status) << "(" << reply.value_bytes << ") ";
  }
  return out;
}

// Feeds `stream` to `codec` in pieces of `piece` bytes and collects the
// replies; `kinds` says which request each reply answers.
std::vector<decoded_reply> decode_all(protocol_codec& codec, std::string_view stream,
                                      const std::vector<request_kind>& kinds, std::size_t piece,
                                      bool& malformed) {
  const std::vector<std::byte> bytes = bytes_of(stream);
  std::vector<decoded_reply> replies;
  malformed = false;
  for (std::size_t start = 0; start < bytes.size(); start += piece) {
    std::span<const std::byte> input(bytes.data() + start,
                                     std::min(piece, bytes.size() - start));
    while (!input.empty() || codec.reply_ready()) {
      REQUIRE(replies.size() < kinds.size());
      const decode_step step = codec.decode(input, kinds[replies.size()]);
      REQUIRE(step.consumed <= input.size());
      input = input.subspan(step.consumed);
      if (step.state == decode_state::malformed) {
        malformed = true;
        return replies;
      }
      if (step.state == decode_state::complete) {
        replies.push_back({step.status, step.value_bytes});
      } else {
        REQUIRE(input.empty());
      }
    }
  }
  return replies;
}

// The same with a fresh codec of `kind`.
std::vector<decoded_reply> decode_all(protocol_kind kind, std::string_view stream,
                                      const std::vector<request_kind>& kinds, std::size_t piece,
                                      bool& malformed) {
  auto codec = make_codec(kind);
  return decode_all(*codec, stream, kinds, piece, malformed);
}

// One reply of a stream: its bytes, the request it answers and what it
// decodes to.
struct expected_reply {
  std::string bytes;
  request_kind kind;
  reply_status status;
  std::uint64_t value_bytes = 0;
};

// Decodes the replies, one after another, in pieces of each size in
// `pieces`: every split gives the same replies.
void check_decodes(protocol_kind kind, std::initializer_list<std::size_t> pieces,
                   const std::vector<expected_reply>& expected) {
  std::string stream;
  std::vector<request_kind> kinds;
  std::vector<decoded_reply> wanted;
  for (const expected_reply& reply : expected) {
    stream += reply.bytes;
    kinds.push_back(reply.kind);
    wanted.push_back({reply.status, reply.value_bytes});
  }
  for (const std::size_t piece : pieces) {
    CAPTURE(piece);
    bool malformed = false;
    const auto replies = decode_all(kind, stream, kinds, piece, malformed);
    CHECK_FALSE(malformed);
    CHECK(replies == wanted);
  }
}

}  // namespace

TEST_CASE("binary requests are encoded as the frames of docs/binary_protocol.md") {
  binary_codec codec;
  send_queue queue;
  codec.encode_get(queue, "ab");
  const std::vector<std::byte> value = bytes_of("xyz");
  codec.encode_put(queue, "k", value);
  const std::string expected("\x0d\0\0\0\x02" "ab" "\x0b\0\0\0\x01" "k" "\0\0\0\x03" "xyz", 20);
  CHECK(drain_through_socket(queue) == expected);
}

TEST_CASE("a large PUT value is referenced, not copied, and still sent whole") {
  binary_codec codec;
  send_queue queue;
  std::vector<std::byte> value(300000);
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<std::byte>(i * 7);
  codec.encode_put(queue, "big", value);
  codec.encode_get(queue, "big");
  const std::size_t frame_bytes = 1 + 4 + 3 + 4 + value.size() + 1 + 4 + 3;
  CHECK(queue.pending_bytes() == frame_bytes);
  const std::string sent = drain_through_socket(queue);
  REQUIRE(sent.size() == frame_bytes);
  CHECK(std::memcmp(sent.data() + 12, value.data(), value.size()) == 0);
  CHECK(sent.substr(12 + value.size()) == std::string("\x0d\0\0\0\x03" "big", 8));
  CHECK(queue.empty());
}

TEST_CASE("binary replies decode the same whole and split at every byte") {
  check_decodes(protocol_kind::binary, {1000, 5, 2, 1},
                {{std::string("\x65", 1), request_kind::put, reply_status::stored},  // OK
                 {std::string("\x65\0\0\0\x05" "hello", 10), request_kind::get, reply_status::hit, 5},
                 {std::string("\x70", 1), request_kind::get, reply_status::miss},  // ENOTFOUND
                 {std::string("\x65\0\0\0\0", 5), request_kind::get, reply_status::hit, 0},
                 {std::string("\x72", 1), request_kind::put, reply_status::ebig},
                 {std::string("\x73", 1), request_kind::put, reply_status::eunk},
                 {std::string("\x6f", 1), request_kind::get, reply_status::einval}});
}

TEST_CASE("an unknown binary reply code is reported as malformed") {
  bool malformed = false;
  decode_all(protocol_kind::binary, "\x65\x2a", {request_kind::put, request_kind::put}, 100,
             malformed);
  CHECK(malformed);
}

TEST_CASE("a 1 MiB binary value is skipped across many reads") {
  std::string stream("\x65\0\x10\0\0", 5);
  stream.append(std::size_t{1} << 20, 'v');
  bool malformed = false;
  const auto replies =
      decode_all(protocol_kind::binary, stream, {request_kind::get}, 4096, malformed);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].value_bytes == (std::uint64_t{1} << 20));
}

TEST_CASE("value bytes dropped by the caller complete the reply as if they were read") {
  for (const protocol_kind kind : {protocol_kind::binary, protocol_kind::text}) {
    CAPTURE(protocol_name(kind));
    auto codec = make_codec(kind);
    const std::string header = kind == protocol_kind::binary ? std::string("\x65\0\x01\0\0", 5)
                                                             : std::string("VALUE k 0 65536\r\n");
    const std::vector<std::byte> head = bytes_of(header + "abc");
    CHECK(codec->discardable_bytes() == 0);
    decode_step step = codec->decode(head, request_kind::get);
    CHECK(step.state == decode_state::need_more);
    CHECK(step.consumed == head.size());
    REQUIRE(codec->discardable_bytes() == 65536 - 3);
    step = codec->discard(60000);
    CHECK(step.state == decode_state::need_more);
    CHECK(codec->discardable_bytes() == 65536 - 3 - 60000);
    step = codec->discard(65536 - 3 - 60000);
    if (kind == protocol_kind::binary) {
      CHECK(step.state == decode_state::complete);
      CHECK(step.status == reply_status::hit);
      CHECK(step.value_bytes == 65536);
    } else {
      CHECK(step.state == decode_state::need_more);
      CHECK(codec->discardable_bytes() == 0);
      step = codec->decode(bytes_of("\r\nEND\r\n"), request_kind::get);
      CHECK(step.state == decode_state::complete);
      CHECK(step.status == reply_status::hit);
      CHECK(step.value_bytes == 65536);
    }
    CHECK(codec->discardable_bytes() == 0);
    // The stream goes on in sync.
    step = codec->decode(bytes_of(kind == protocol_kind::binary ? "\x70" : "END\r\n"),
                         request_kind::get);
    CHECK(step.state == decode_state::complete);
    CHECK(step.status == reply_status::miss);
  }
}

TEST_CASE("text requests follow the memcached set/get syntax") {
  text_codec codec;
  send_queue queue;
  codec.encode_get(queue, "k1");
  codec.encode_put(queue, "k2", bytes_of("hello"));
  std::vector<std::byte> large(1000, std::byte{'z'});
  codec.encode_put(queue, "k3", large);
  CHECK(drain_through_socket(queue) == "get k1\r\nset k2 0 0 5\r\nhello\r\nset k3 0 0 1000\r\n" +
                                           std::string(1000, 'z') + "\r\n");
}

TEST_CASE("text replies decode the same whole and split at every byte") {
  check_decodes(protocol_kind::text, {1000, 7, 2, 1},
                {{"STORED\r\n", request_kind::put, reply_status::stored},
                 // "he\r\no" holds a CRLF: only the length counts.
                 {"VALUE k1 0 5\r\nhe\r\no\r\nEND\r\n", request_kind::get, reply_status::hit, 5},
                 {"END\r\n", request_kind::get, reply_status::miss},
                 {"VALUE k2 7 0 99\r\n\r\nEND\r\n", request_kind::get, reply_status::hit, 0},
                 {"SERVER_ERROR out of memory storing object\r\n", request_kind::put,
                  reply_status::server_error},
                 {"NOT_STORED\r\n", request_kind::put, reply_status::not_stored},
                 {"ERROR\r\n", request_kind::get, reply_status::error}});
}

TEST_CASE("text streams that are not memcached replies are malformed") {
  bool malformed = false;
  decode_all(protocol_kind::text, "HELLO\r\n", {request_kind::get}, 100, malformed);
  CHECK(malformed);
  decode_all(protocol_kind::text, "VALUE k 0 2\r\nabXYEND\r\n", {request_kind::get}, 100,
             malformed);
  CHECK(malformed);
  decode_all(protocol_kind::text, "VALUE k 0 two\r\n", {request_kind::get}, 100, malformed);
  CHECK(malformed);
  decode_all(protocol_kind::text, std::string(text_line_bytes_max + 10, 'A'),
             {request_kind::get}, 64, malformed);
  CHECK(malformed);
}

namespace {

// A memcached binary protocol packet: header (docs/memcache_binary_protocol.md)
// and body.
std::string mc_packet(mc_binary_wire::magic magic, mc_binary_wire::opcode opcode,
                      mc_binary_wire::status status, std::string_view extras,
                      std::string_view key, std::string_view value, std::uint32_t opaque) {
  const std::size_t body = extras.size() + key.size() + value.size();
  std::string packet(mc_binary_wire::header_bytes, '\0');
  packet[0] = static_cast<char>(magic);
  packet[1] = static_cast<char>(opcode);
  packet[2] = static_cast<char>(key.size() >> 8);
  packet[3] = static_cast<char>(key.size());
  packet[4] = static_cast<char>(extras.size());
  packet[6] = static_cast<char>(static_cast<std::uint16_t>(status) >> 8);
  packet[7] = static_cast<char>(status);
  for (int i = 0; i < 4; ++i) {
    packet[8 + i] = static_cast<char>(body >> (8 * (3 - i)));
    packet[12 + i] = static_cast<char>(opaque >> (8 * (3 - i)));
  }
  return packet.append(extras).append(key).append(value);
}

std::string mc_reply(mc_binary_wire::opcode opcode, mc_binary_wire::status status,
                     std::string_view extras, std::string_view value, std::uint32_t opaque) {
  return mc_packet(mc_binary_wire::magic::response, opcode, status, extras, "", value, opaque);
}

const std::string mc_flags(4, '\0');
constexpr std::uint32_t mc_last = mc_binary_wire::noop_follows;

// Encodes one batch: GETs of the keys in `gets`, a PUT of "xyz" where the key
// starts with 'p'.
void mc_encode_batch(mc_binary_codec& codec, send_queue& queue,
                     std::initializer_list<std::string_view> keys) {
  static const std::vector<std::byte> value = bytes_of("xyz");
  for (const std::string_view key : keys) {
    if (key.starts_with('p')) {
      codec.encode_put(queue, key, value);
    } else {
      codec.encode_get(queue, key);
    }
  }
  codec.encode_batch_end(queue);
}

}  // namespace

TEST_CASE("mcbin: a lone GET is a get, a batch's GETs are getq ending in a noop") {
  using namespace mc_binary_wire;
  mc_binary_codec codec;
  send_queue queue;
  mc_encode_batch(codec, queue, {"ab"});
  mc_encode_batch(codec, queue, {"k1", "p2", "k3"});
  mc_encode_batch(codec, queue, {"p4"});
  const std::string set_extras(8, '\0');
  CHECK(drain_through_socket(queue) ==
        mc_packet(magic::request, opcode::get, status::ok, "", "ab", "", 0) +
            mc_packet(magic::request, opcode::getq, status::ok, "", "k1", "", 1) +
            mc_packet(magic::request, opcode::set, status::ok, set_extras, "p2", "xyz", 2) +
            mc_packet(magic::request, opcode::getq, status::ok, "", "k3", "", 3 | mc_last) +
            mc_packet(magic::request, opcode::noop, status::ok, "", "", "", 3 | mc_last) +
            mc_packet(magic::request, opcode::set, status::ok, set_extras, "p4", "xyz", 4));
}

TEST_CASE("mcbin: silent getqs are misses, known from the reply that came instead") {
  using namespace mc_binary_wire;
  const auto get = request_kind::get;
  const auto put = request_kind::put;
  const std::vector<request_kind> kinds = {get, get, get, put, get, get, get, put};
  // b hits, a and c miss (the set's reply and b's say so); e misses, f hits
  // and its noop follows; then a lone get misses and a set is too large.
  const std::string hits_last = mc_reply(opcode::getq, status::ok, mc_flags, "hello", 1) +
                                mc_reply(opcode::set, status::ok, "", "", 3) +
                                mc_reply(opcode::getq, status::ok, mc_flags, "", 5 | mc_last) +
                                mc_reply(opcode::noop, status::ok, "", "", 5 | mc_last) +
                                mc_reply(opcode::get, status::not_found, "", "Not found", 6) +
                                mc_reply(opcode::set, status::too_large, "", "Too large.", 7);
  const std::vector<decoded_reply> hits_last_wanted = {
      {reply_status::miss, 0}, {reply_status::hit, 5},    {reply_status::miss, 0},
      {reply_status::stored, 0}, {reply_status::miss, 0}, {reply_status::hit, 0},
      {reply_status::miss, 0}, {reply_status::ebig, 0}};
  // Nothing hits: the noop alone answers the batch's last three GETs.
  const std::string misses_last = mc_reply(opcode::getq, status::ok, mc_flags, "hello", 1) +
                                  mc_reply(opcode::set, status::ok, "", "", 3) +
                                  mc_reply(opcode::noop, status::ok, "", "", 5 | mc_last) +
                                  mc_reply(opcode::get, status::ok, mc_flags, "v", 6) +
                                  mc_reply(opcode::set, status::ok, "", "", 7);
  const std::vector<decoded_reply> misses_last_wanted = {
      {reply_status::miss, 0}, {reply_status::hit, 5},  {reply_status::miss, 0},
      {reply_status::stored, 0}, {reply_status::miss, 0}, {reply_status::miss, 0},
      {reply_status::hit, 1},  {reply_status::stored, 0}};
  for (const std::size_t piece : {1000, 7, 1}) {
    CAPTURE(piece);
    for (const auto& [stream, wanted] :
         {std::pair{hits_last, hits_last_wanted}, std::pair{misses_last, misses_last_wanted}}) {
      mc_binary_codec codec;
      send_queue queue;
      mc_encode_batch(codec, queue, {"a", "b", "c", "p", "e", "f"});
      mc_encode_batch(codec, queue, {"g"});
      mc_encode_batch(codec, queue, {"p"});
      bool malformed = false;
      CHECK(decode_all(codec, stream, kinds, piece, malformed) == wanted);
      CHECK_FALSE(malformed);
      CHECK_FALSE(codec.reply_ready());
    }
  }
}

TEST_CASE("mcbin: replies that match no request are malformed") {
  using namespace mc_binary_wire;
  const auto get = request_kind::get;
  for (const std::string& stream :
       {mc_packet(magic::request, opcode::get, status::ok, "", "", "", 0),
        mc_reply(opcode::get, status::ok, mc_flags, "v", 7),  // opaque never sent
        mc_reply(opcode::noop, status::ok, "", "", 0)}) {     // noop never sent
    mc_binary_codec codec;
    send_queue queue;
    mc_encode_batch(codec, queue, {"a"});
    bool malformed = false;
    CHECK(decode_all(codec, stream, {get}, 1000, malformed).empty());
    CHECK(malformed);
  }
  // A set's reply skipped: a set always answers.
  mc_binary_codec codec;
  send_queue queue;
  mc_encode_batch(codec, queue, {"p", "a"});
  bool malformed = false;
  decode_all(codec, mc_reply(opcode::getq, status::ok, mc_flags, "v", 1 | mc_last),
             {request_kind::put, get}, 1000, malformed);
  CHECK(malformed);
}

TEST_CASE("mcbin: value bytes dropped by the caller complete a hit, then its noop") {
  using namespace mc_binary_wire;
  mc_binary_codec codec;
  send_queue queue;
  mc_encode_batch(codec, queue, {"a", "b"});
  // The header with a 65536-byte value, then its first 3 bytes.
  std::string header =
      mc_packet(magic::response, opcode::getq, status::ok, mc_flags, "", "", 1 | mc_last);
  const std::uint32_t body = 4 + 65536;
  for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>(body >> (8 * (3 - i)));
  const std::vector<std::byte> start = bytes_of(header + "abc");
  decode_step step = codec.decode(start, request_kind::get);
  CHECK(step.state == decode_state::complete);  // "a" missed: b's reply came instead
  CHECK(step.status == reply_status::miss);
  step = codec.decode(std::span(start).subspan(step.consumed), request_kind::get);
  CHECK(step.state == decode_state::need_more);
  REQUIRE(codec.discardable_bytes() == 4 + 65536 - 7);
  step = codec.discard(codec.discardable_bytes());
  CHECK(step.state == decode_state::need_more);  // the noop is still to come
  step = codec.decode(bytes_of(mc_reply(opcode::noop, status::ok, "", "", 1 | mc_last)),
                      request_kind::get);
  CHECK(step.state == decode_state::complete);
  CHECK(step.status == reply_status::hit);
  CHECK(step.value_bytes == 65536);
  CHECK(codec.discardable_bytes() == 0);
  CHECK_FALSE(codec.reply_ready());
}

TEST_CASE("reply statuses are named as the report prints them") {
  CHECK(reply_status_name(reply_status::stored) == "STORED");
  CHECK(reply_status_name(reply_status::ebig) == "EBIG");
  CHECK(reply_status_name(reply_status::not_stored) == "NOT_STORED");
  CHECK(reply_status_name(reply_status::error) == "ERROR");
}
