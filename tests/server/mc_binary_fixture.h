// The fixture of the memcached-binary processor's unit tests
// (test_mc_binary_process.cc, test_mc_binary_sasl.cc): one connection of a
// text port to a real store, requests encoded with the parser tests'
// encoders and parsed by a real McBinaryParser as McBinarySession does,
// responses decoded from the connection's OutputQueue.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/io/output_queue.h"
#include "server/process/binary_stats.h"
#include "server/process/auth.h"
#include "server/process/mc_binary_process.h"
#include "server/process/mc_binary_session.h"
#include "server/process/text_port_session.h"
#include "server/process/text_process.h"
#include "server/process/text_stats.h"
#include "server/process/write_path.h"
#include "store/store.h"
#include "tests/protocol/mc_binary_parser_harness.h"
#include "tests/server/server_test_util.h"

namespace ringcache::server::test::mc_binary_test {

using namespace ringcache::protocol::memcache_binary;
using namespace ringcache::protocol::memcache_binary::test;

inline std::atomic<uint32_t> mc_clock_now_s{1'700'000'000};
inline uint32_t mc_test_clock_s() { return mc_clock_now_s.load(); }

// One response, decoded.
struct Response {
  uint8_t magic = 0, opcode = 0;
  uint16_t status = 0;
  uint32_t opaque = 0;
  uint64_t cas = 0;
  std::string extras, key, value;
};

inline uint64_t load(std::string_view bytes, size_t at, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; ++i) value = value << 8 | static_cast<uint8_t>(bytes[at + i]);
  return value;
}

// The responses in `bytes`, which must hold whole responses only.
inline std::vector<Response> decode(std::string_view bytes) {
  std::vector<Response> responses;
  while (!bytes.empty()) {
    REQUIRE(bytes.size() >= header_bytes);
    Response r;
    r.magic = static_cast<uint8_t>(bytes[0]);
    r.opcode = static_cast<uint8_t>(bytes[1]);
    const auto key_length = static_cast<size_t>(load(bytes, 2, 2));
    const auto extras_length = static_cast<size_t>(load(bytes, 4, 1));
    REQUIRE(bytes[5] == 0);
    r.status = static_cast<uint16_t>(load(bytes, 6, 2));
    const auto body = static_cast<size_t>(load(bytes, 8, 4));
    r.opaque = static_cast<uint32_t>(load(bytes, 12, 4));
    r.cas = load(bytes, 16, 8);
    REQUIRE(bytes.size() >= header_bytes + body);
    REQUIRE(extras_length + key_length <= body);
    const std::string_view b = bytes.substr(header_bytes, body);
    r.extras = b.substr(0, extras_length);
    r.key = b.substr(extras_length, key_length);
    r.value = b.substr(extras_length + key_length);
    responses.push_back(r);
    bytes.remove_prefix(header_bytes + body);
  }
  return responses;
}

inline uint16_t code(Status status) { return static_cast<uint16_t>(status); }

// One connection: `authenticator` is the daemon's (nullptr without --auth-file).
struct Fixture : ringcache::server::test::TextPortStore {
  explicit Fixture(uint64_t item_bytes_max = 1 << 20, Authenticator* authenticator = nullptr)
      : TextPortStore(&mc_test_clock_s, item_bytes_max),
        text(thread, *write, text_stats.thread(0), stats_context, item_bytes_max),
        processor(text),
        parser(processor.parser_limits()),
        daemon_auth(authenticator) {
    reconnect();
  }

  // A new connection to the same daemon: not authenticated, no failures, not closed.
  void reconnect() {
    auth.emplace(daemon_auth, binary_stats.thread(0), -1, "text");
    parser = McBinaryParser(processor.parser_limits());
    stream = McBinaryStream();
    closed = false;
  }

  // Parses `requests` as the next input and processes every event
  // (parse_each); returns the raw response bytes.
  std::string send_raw(std::string_view requests) {
    ringcache::server::test::parse_each(parser, requests, [&](const Event& event) {
      REQUIRE(!closed);
      if (processor.process(event, stream, *auth, out) == McBinaryResult::close) closed = true;
    });
    return take_output(out);
  }
  std::vector<Response> send(std::string_view requests) { return decode(send_raw(requests)); }
  Response one(std::string_view request_bytes) {
    const std::vector<Response> responses = send(request_bytes);
    REQUIRE(responses.size() == 1);
    return responses[0];
  }

  Response set(std::string_view key, std::string_view value, uint32_t flags = 0, uint32_t exptime = 0,
               uint64_t cas = 0, Opcode opcode = Opcode::set) {
    return one(request(opcode, store_extras(flags, exptime), key, value, 1, cas));
  }
  Response get(std::string_view key) { return one(request(Opcode::get, "", key, "", 2)); }

  // The cas the text protocol's gets hands out for the key.
  uint64_t text_cas(std::string_view key) {
    uint64_t cas = 0;
    (void)thread.get(key, [&](const store::ItemView& item) { cas = item.cas(); });
    return cas;
  }

  TextProcessor text;
  McBinaryProcessor processor;
  McBinaryParser parser;
  McBinaryStream stream;
  OutputQueue out;
  bool closed = false;
  Authenticator* daemon_auth;
  std::optional<ConnectionAuth> auth;
};

inline std::string be32(uint32_t value) {
  std::string out;
  put_be(out, value, 4);
  return out;
}

inline std::string be64(uint64_t value) {
  std::string out;
  put_be(out, value, 8);
  return out;
}

// A text-port connection whose first input is the text `line`: it must be
// handed over to a text session, whose reply to the line is returned.
inline std::string text_session_reply(Fixture& f, const ConnectionAuth& auth, std::string_view line) {
  const NeverPause pause;
  TextPortSession session(f.text, f.processor, auth);
  OutputQueue out;
  CHECK(session.consume(line, out, pause).handed_over);
  const std::unique_ptr<Session> next = session.take_successor();
  REQUIRE(next != nullptr);
  CHECK(next->consume(line, out, pause).used == line.size());
  return take_output(out);
}

}  // namespace ringcache::server::test::mc_binary_test
