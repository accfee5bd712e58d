// Which key the next request uses, and how that key is spelled.
//
// Keys are "k" followed by the key's index in decimal, zero-padded to
// --key-size bytes ("k000000000000042"), so every key has the same length, is
// valid in the memcached text protocol and can be checked by eye in a server.
//
// Popularity is uniform or Zipf(s) over ranks 1..N, where rank r has weight
// r^-s. Zipf sampling uses rejection-inversion (W. Hörmann, G. Derflinger,
// "Rejection-inversion to generate variates from monotone discrete
// distributions", ACM TOMACS 6(3), 1996): O(1) per sample, no table, valid for
// every s > 0 including s = 1 and any N.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace ringcache::loadgen {

// g++ and clang both provide 128-bit integers; __extension__ keeps -Wpedantic quiet.
__extension__ using uint128 = unsigned __int128;

// xoshiro256** (Blackman and Vigna), seeded through splitmix64: a few
// nanoseconds per draw and statistically sound for load generation.
class random_source {
 public:
  explicit random_source(std::uint64_t seed);
  std::uint64_t next();
  // Uniform in [0, 1) with 53 random bits.
  double next_unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, bound) by multiply-shift; the bias is below bound / 2^64.
  std::uint64_t below(std::uint64_t bound) {
    return static_cast<std::uint64_t>((static_cast<uint128>(next()) * bound) >> 64);
  }

 private:
  std::uint64_t state_[4];
};

class zipf_sampler {
 public:
  zipf_sampler(std::uint64_t count, double exponent);
  // A rank in [1, count]; rank 1 is the most popular.
  std::uint64_t sample(random_source& random) const;

 private:
  double h(double x) const;
  double integral_h(double x) const;
  double inverse_integral_h(double x) const;

  std::uint64_t count_;
  double exponent_;
  double integral_at_first_;
  double integral_at_last_;
  double squeeze_;
};

struct popularity {
  enum class kind : std::uint8_t { uniform, zipf };
  kind shape = kind::uniform;
  double exponent = 0;  // zipf only
};

class key_chooser {
 public:
  key_chooser(std::uint64_t key_count, popularity shape);
  std::uint64_t next_index(random_source& random) const;

 private:
  std::uint64_t key_count_;
  popularity shape_;
  zipf_sampler zipf_;
};

// Decimal digits needed for the largest index of `key_count` keys.
std::size_t key_digits(std::uint64_t key_count);
// Spells key `index` into all of `out`; out.size() > key_digits of the index.
std::string_view format_key(std::uint64_t index, std::span<char> out);

}  // namespace ringcache::loadgen
