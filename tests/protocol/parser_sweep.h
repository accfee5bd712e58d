// The fragment sweep every parser unit test uses (Seastar's): each input fed
// whole, cut once at every offset, and in 100000/1000/100/10/5/2/1-byte
// chunks, each way giving the same events. Generic over the parser: the
// limits value picks it (ParserAdapter, checked_parser.h), so
// `check_every_split(limits, bytes, expected)` reads the same for the binary
// and text protocols and the replication stream.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tests/protocol/checked_parser.h"

namespace ringcache::test {

// A CheckedParser whose broken promises fail the test case.
template <class Limits>
class Feeder : public CheckedParser<Limits> {
 public:
  explicit Feeder(const Limits& limits) : CheckedParser<Limits>(limits) {}

  void feed(std::string_view input) {
    const char* broken = CheckedParser<Limits>::feed(input);
    if (broken != nullptr) FAIL("broken promise: " << std::string(broken));
  }

  // Feeds a piece from its own short-lived copy, scribbled over before it is
  // freed, so a view kept into an older input shows up as wrong bytes.
  void feed_copy(std::string_view piece) {
    std::string copy(piece);
    feed(copy);
    std::fill(copy.begin(), copy.end(), '\xAA');
  }

  // The input cut at the given ascending offsets, each piece from its own copy.
  void feed_cut(std::string_view bytes, const std::vector<size_t>& cuts) {
    size_t start = 0;
    for (const size_t cut : cuts) {
      REQUIRE(cut >= start);
      feed_copy(bytes.substr(start, cut - start));
      start = cut;
    }
    feed_copy(bytes.substr(start));
  }

  // After a complete input the parser holds nothing partial.
  void require_at_rest() { REQUIRE(ParserAdapter<Limits>::at_rest(this->parser())); }
};

template <class Limits>
using SeenOf = typename CheckedParser<Limits>::Seen;

// Whole input in one call.
template <class Limits>
std::vector<SeenOf<Limits>> parse_whole(const Limits& limits, std::string_view bytes) {
  Feeder<Limits> feeder(limits);
  feeder.feed(bytes);
  feeder.require_at_rest();
  return feeder.events();
}

// The input cut at the given ascending offsets.
template <class Limits>
std::vector<SeenOf<Limits>> parse_cut(const Limits& limits, std::string_view bytes, const std::vector<size_t>& cuts) {
  Feeder<Limits> feeder(limits);
  feeder.feed_cut(bytes, cuts);
  feeder.require_at_rest();
  return feeder.events();
}

// The cuts that make fixed-size chunks of an input of `size` bytes.
inline std::vector<size_t> chunk_cuts(size_t size, size_t chunk_bytes) {
  std::vector<size_t> cuts;
  for (size_t cut = chunk_bytes; cut < size; cut += chunk_bytes) cuts.push_back(cut);
  return cuts;
}

// Fixed-size chunks.
template <class Limits>
std::vector<SeenOf<Limits>> parse_chunks(const Limits& limits, std::string_view bytes, size_t chunk_bytes) {
  return parse_cut(limits, bytes, chunk_cuts(bytes.size(), chunk_bytes));
}

inline constexpr size_t sweep_chunk_sizes[] = {100000, 1000, 100, 10, 5, 2, 1};

// Feeds `bytes` whole and in every sweep chunk size; each must give
// `expected`. For inputs too long to cut at every offset.
template <class Limits>
void check_sweep(const Limits& limits, std::string_view bytes, const std::vector<SeenOf<Limits>>& expected) {
  CHECK(parse_whole(limits, bytes) == expected);
  for (const size_t chunk_bytes : sweep_chunk_sizes) {
    CAPTURE(chunk_bytes);
    CHECK(parse_chunks(limits, bytes, chunk_bytes) == expected);
  }
}

// Feeds `bytes` whole, split once at every offset, and in every sweep chunk
// size; each must give `expected`.
template <class Limits>
void check_every_split(const Limits& limits, std::string_view bytes, const std::vector<SeenOf<Limits>>& expected) {
  check_sweep(limits, bytes, expected);
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    CAPTURE(cut);
    REQUIRE(parse_cut(limits, bytes, {cut}) == expected);
  }
}

// Feeds `bytes` in pieces of `chunk_bytes` straight from `bytes`, as a
// receive buffer hands them over, checking after each piece that the parser
// holds at most `buffered_bytes_max`. Returns how many pieces it fed.
template <class Limits>
size_t feed_receive_buffers(Feeder<Limits>& feeder, std::string_view bytes, size_t chunk_bytes,
                            size_t buffered_bytes_max) {
  size_t pieces = 0;
  for (size_t start = 0; start < bytes.size(); start += chunk_bytes) {
    feeder.feed(bytes.substr(start, chunk_bytes));
    ++pieces;
    CHECK(feeder.parser().buffered_bytes() <= buffered_bytes_max);
  }
  return pieces;
}

// Feeds `length` bytes of `fill` from one reusable buffer: skipping a refused
// field is counting, so even 4 GiB passes quickly and must never be buffered.
template <class Limits>
void feed_filler(Feeder<Limits>& feeder, uint64_t length, char fill) {
  constexpr size_t filler_chunk_bytes = 1 << 20;
  const std::string filler(filler_chunk_bytes, fill);
  while (length > 0) {
    const auto take = static_cast<size_t>(std::min<uint64_t>(length, filler.size()));
    feeder.feed(std::string_view(filler).substr(0, take));
    CHECK(feeder.parser().buffered_bytes() == 0);
    length -= take;
  }
}

template <class Seen>
std::vector<Seen> concat(std::vector<Seen> head, const std::vector<Seen>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// Deterministic bytes of every value, different for each salt.
inline std::string pattern_bytes(size_t size, uint8_t salt) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 131 + salt) & 0xFF);
  return out;
}

// A long pipeline with its expected events, built by a simple model of the
// protocol (fixed seed, so a failure reproduces).
template <class Seen>
struct Mix {
  std::string bytes;
  std::vector<Seen> expected;

  void add(std::string_view more_bytes, const std::vector<Seen>& more_expected) {
    bytes += more_bytes;
    expected.insert(expected.end(), more_expected.begin(), more_expected.end());
  }
};

}  // namespace ringcache::test
