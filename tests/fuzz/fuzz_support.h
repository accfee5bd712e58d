// The scaffold of every libFuzzer target (tests/fuzz):
// the input as header bytes then the stream, piece sizes picked from a
// header byte, a stream fed in fresh heap pieces, the check that whole and
// in pieces give the same events with every promise of the parser kept
// (CheckedParser, tests/protocol/checked_parser.h), and require().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/protocol/checked_parser.h"

namespace fuzz_support {

inline void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

// The verdict of a CheckedParser: nullptr, or the promise it found broken.
inline void require_kept(const char* broken) {
  if (broken != nullptr) require(false, broken);
}

// libFuzzer's input: `header_bytes` of choices, then the stream. False when
// the input is shorter than its header.
inline bool split_input(const uint8_t* data, size_t size, size_t header_bytes, std::string_view& stream) {
  if (size < header_bytes) return false;
  stream = std::string_view(reinterpret_cast<const char*>(data) + header_bytes, size - header_bytes);
  return true;
}

// A piece size of 1..64 bytes from the low six bits of a header byte.
inline size_t chunk_bytes_from(uint8_t bits) { return 1 + bits % 64; }

// Every piece the same size.
class FixedSizes {
 public:
  explicit FixedSizes(size_t piece_bytes) : piece_bytes_(piece_bytes) {}
  size_t next() const { return piece_bytes_; }

 private:
  size_t piece_bytes_;
};

// Piece sizes from a small xorshift generator: mostly tiny pieces, which is
// where split handling lives, with an occasional large one.
class SplitSizes {
 public:
  explicit SplitSizes(uint32_t seed) : state_(seed * 2654435761u + 1) {}
  size_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    const uint32_t scale_bits = state_ % 11;
    return 1 + (state_ >> 8) % (size_t{1} << scale_bits);
  }

 private:
  uint32_t state_;
};

// Feeds `stream` to `parser` in pieces cut by `sizes`, each piece a fresh
// heap copy (so ASan sees any view that outlives its input), then an empty
// input; every call must keep the parser's promises.
template <class Limits, class Sizes>
void feed_in_pieces(ringcache::test::CheckedParser<Limits>& parser, std::string_view stream, Sizes sizes) {
  for (size_t start = 0; start < stream.size();) {
    const size_t piece_bytes = std::min(sizes.next(), stream.size() - start);
    const auto piece = std::make_unique<char[]>(piece_bytes);
    std::copy_n(stream.data() + start, piece_bytes, piece.get());
    require_kept(parser.feed(std::string_view(piece.get(), piece_bytes)));
    start += piece_bytes;
  }
  require_kept(parser.feed({}));
}

// Parses `stream` whole and in pieces cut by `sizes`: both keep every
// promise and give the same events, which are returned.
template <class Limits, class Sizes>
std::vector<typename ringcache::test::CheckedParser<Limits>::Seen> events_whole_and_in_pieces(
    const Limits& limits, std::string_view stream, Sizes sizes) {
  ringcache::test::CheckedParser<Limits> whole(limits);
  require_kept(whole.feed(stream));
  ringcache::test::CheckedParser<Limits> split(limits);
  feed_in_pieces(split, stream, sizes);
  require(whole.events() == split.events(), "same events whole and in pieces");
  return whole.events();
}

using PeekKeys = size_t (*)(std::string_view input, std::string_view* keys, size_t max);

// A prefetch look-ahead reads only inside its input, whatever it holds, and
// returns at most `max` keys.
inline void check_peeked_keys(std::string_view stream, PeekKeys peek) {
  std::string_view peeked[32];
  const size_t count = peek(stream, peeked, std::size(peeked));
  require(count <= std::size(peeked), "the look-ahead respects max");
  for (size_t i = 0; i < count; ++i) {
    require(peeked[i].data() >= stream.data() &&
                peeked[i].data() + peeked[i].size() <= stream.data() + stream.size(),
            "peeked keys lie inside the input");
  }
}

// The item and inline value limits of the binary parsers' targets, picked by
// a header byte (bits 0-2 item_bytes_max, 3-5 inline_value_bytes_max). Small
// item limits reach the too-large paths and streaming with short inputs; the
// large ones keep the production shape.
inline constexpr uint64_t item_bytes_max_choices[] = {0, 1, 7, 64, 300, 4096, uint64_t{1} << 20, uint64_t{1} << 40};
inline constexpr uint32_t inline_bytes_max_choices[] = {0, 1, 16, 64, 256, 65536, 65536, 65536};

template <class Limits>
Limits item_and_inline_limits(uint8_t selector) {
  Limits limits{item_bytes_max_choices[selector & 7]};
  limits.inline_value_bytes_max = inline_bytes_max_choices[(selector >> 3) & 7];
  return limits;
}

template <class Limits>
struct ParserRun {
  Limits limits;
  std::string_view stream;
  std::vector<typename ringcache::test::CheckedParser<Limits>::Seen> events;
};

// The protocol parser targets: byte 0 picks the limits, byte 1 seeds the
// split points, the rest is the byte stream of one connection. Parses it
// whole and in pieces and checks the prefetch look-ahead on it; returns
// what the target's own oracle needs, nothing for an input shorter than its
// header.
template <class Limits>
std::optional<ParserRun<Limits>> run_parser_target(const uint8_t* data, size_t size, Limits (*limits_from)(uint8_t),
                                                   PeekKeys peek) {
  constexpr size_t header_bytes = 2;
  std::string_view stream;
  if (!split_input(data, size, header_bytes, stream)) return std::nullopt;
  const Limits limits = limits_from(data[0]);
  auto events = events_whole_and_in_pieces(limits, stream, SplitSizes(data[1] | static_cast<uint32_t>(size) << 8));
  check_peeked_keys(stream, peek);
  return ParserRun<Limits>{limits, stream, std::move(events)};
}

}  // namespace fuzz_support
