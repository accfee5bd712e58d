// What the libFuzzer targets of both protocol parsers share: the invariant
// check, the split points, feeding a stream in fresh heap pieces, and the
// check of a prefetch look-ahead (peek_frame_keys, peek_text_keys).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <string_view>

namespace fuzz_support {

inline void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

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

// Feeds `stream` to `parser` in pieces cut by SplitSizes(seed), each piece a
// fresh heap copy (so ASan sees any view that outlives its input), then an
// empty input.
template <class Parser>
void feed_in_pieces(Parser& parser, std::string_view stream, uint32_t seed) {
  SplitSizes sizes(seed);
  for (size_t start = 0; start < stream.size();) {
    const size_t piece_bytes = std::min(sizes.next(), stream.size() - start);
    const auto piece = std::make_unique<char[]>(piece_bytes);
    std::copy_n(stream.data() + start, piece_bytes, piece.get());
    parser.feed(std::string_view(piece.get(), piece_bytes));
    start += piece_bytes;
  }
  parser.feed({});
}

// A prefetch look-ahead reads only inside its input, whatever it holds, and
// returns at most `max` keys.
inline void check_peeked_keys(std::string_view stream,
                              size_t (*peek)(std::string_view, std::string_view*, size_t)) {
  std::string_view peeked[32];
  const size_t count = peek(stream, peeked, std::size(peeked));
  require(count <= std::size(peeked), "the look-ahead respects max");
  for (size_t i = 0; i < count; ++i) {
    require(peeked[i].data() >= stream.data() &&
                peeked[i].data() + peeked[i].size() <= stream.data() + stream.size(),
            "peeked keys lie inside the input");
  }
}

}  // namespace fuzz_support
