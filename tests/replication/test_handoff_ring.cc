// HandoffRing: order, wrap-around, bounds, and a producer/consumer stress.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <thread>

#include "server/replication/handoff_ring.h"

using namespace ringcache::replication;

namespace {

bool push(HandoffRing& ring, HandoffKind kind, std::string_view payload) {
  char* at = ring.reserve(kind, payload.size());
  if (at == nullptr) {
    ring.mark_lost(1000 + payload.size());
    return false;
  }
  if (!payload.empty()) std::memcpy(at, payload.data(), payload.size());
  ring.commit();
  return true;
}

std::string pop(HandoffRing& ring, HandoffKind* kind = nullptr) {
  HandoffRing::Record record{};
  REQUIRE(ring.peek(record));
  std::string out(record.payload);
  if (kind != nullptr) *kind = record.kind;
  ring.pop();
  return out;
}

}  // namespace

TEST_CASE("records come out in order with their kind and bytes") {
  HandoffRing ring(1024);
  CHECK(ring.empty());
  CHECK(push(ring, HandoffKind::frame, "first"));
  CHECK(push(ring, HandoffKind::lookup, ""));
  CHECK(push(ring, HandoffKind::frame, std::string("a\0b", 3)));
  HandoffKind kind{};
  CHECK(pop(ring, &kind) == "first");
  CHECK(kind == HandoffKind::frame);
  CHECK(pop(ring, &kind).empty());
  CHECK(kind == HandoffKind::lookup);
  CHECK(pop(ring) == std::string("a\0b", 3));
  CHECK(ring.empty());
  HandoffRing::Record record{};
  CHECK(!ring.peek(record));
}

TEST_CASE("a full ring refuses; the lowest version lost is reported once") {
  HandoffRing ring(256);
  int pushed = 0;
  while (push(ring, HandoffKind::frame, std::string(24, 'x'))) ++pushed;
  CHECK(pushed == 256 / 32);  // 8-byte header + 24 bytes each
  CHECK(ring.used_bytes() == 256);
  CHECK(!push(ring, HandoffKind::frame, std::string(20, 'y')));  // lost version 1020
  CHECK(!push(ring, HandoffKind::frame, std::string(30, 'y')));  // lost version 1030
  CHECK(ring.take_lost() == 1020);
  CHECK(ring.take_lost() == 0);
  (void)pop(ring);
  CHECK(push(ring, HandoffKind::frame, std::string(24, 'y')));
  CHECK(ring.take_lost() == 0);
}

TEST_CASE("a record over half the ring is refused even when the ring is empty") {
  HandoffRing ring(256);
  CHECK(ring.payload_bytes_max() == 120);
  CHECK(push(ring, HandoffKind::frame, std::string(120, 'a')));
  (void)pop(ring);
  CHECK(!push(ring, HandoffKind::frame, std::string(121, 'a')));
  CHECK(ring.take_lost() == 1121);
}

TEST_CASE("records that do not fit before the end wrap, behind a padding record") {
  HandoffRing ring(128);
  REQUIRE(ring.payload_bytes_max() == 56);
  for (int round = 0; round < 300; ++round) {
    // Any record up to payload_bytes_max() fits an empty ring, wherever its
    // head is: either before the end or, after padding, from offset 0.
    const std::string a(static_cast<size_t>((round * 13) % 57), static_cast<char>('a' + round % 26));
    REQUIRE(push(ring, HandoffKind::frame, a));
    REQUIRE(pop(ring) == a);
    REQUIRE(ring.empty());
  }
  // Several records in flight across the wrap.
  for (int round = 0; round < 100; ++round) {
    const std::string a(static_cast<size_t>(round % 20), 'x');
    const std::string b(static_cast<size_t>(round % 17), 'y');
    const std::string c(static_cast<size_t>(round % 5), 'z');
    REQUIRE(push(ring, HandoffKind::frame, a));
    REQUIRE(push(ring, HandoffKind::lookup, b));
    REQUIRE(push(ring, HandoffKind::frame, c));
    REQUIRE(pop(ring) == a);
    REQUIRE(pop(ring) == b);
    REQUIRE(pop(ring) == c);
  }
}

TEST_CASE("one producer and one consumer thread: nothing lost, reordered or torn") {
  HandoffRing ring(4096);
  constexpr uint64_t records = 200'000;
  std::thread producer([&] {
    for (uint64_t i = 0; i < records;) {
      const size_t size = 8 + i % 57;
      char* at = ring.reserve(HandoffKind::frame, size);
      if (at == nullptr) {
        std::this_thread::yield();
        continue;
      }
      std::memcpy(at, &i, 8);
      std::memset(at + 8, static_cast<int>(i & 0xff), size - 8);
      ring.commit();
      ++i;
    }
  });
  uint64_t expected = 0;
  while (expected < records) {
    HandoffRing::Record record{};
    if (!ring.peek(record)) {
      std::this_thread::yield();
      continue;
    }
    REQUIRE(record.payload.size() == 8 + expected % 57);
    uint64_t got = 0;
    std::memcpy(&got, record.payload.data(), 8);
    REQUIRE(got == expected);
    for (size_t j = 8; j < record.payload.size(); ++j) {
      REQUIRE(static_cast<unsigned char>(record.payload[j]) == (expected & 0xff));
    }
    ring.pop();
    ++expected;
  }
  producer.join();
  CHECK(ring.empty());
}
