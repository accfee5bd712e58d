#include "key_chooser.h"

#include <cassert>
#include <cmath>

namespace ringcache::loadgen {

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t mixed = (state += 0x9e3779b97f4a7c15ULL);
  mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ULL;
  mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebULL;
  return mixed ^ (mixed >> 31);
}

std::uint64_t rotate_left(std::uint64_t value, int bits) {
  return (value << bits) | (value >> (64 - bits));
}

// log1p(x)/x and expm1(x)/x, both 1 at x = 0; the series avoids 0/0 and the
// cancellation that makes the direct forms inaccurate for s close to 1.
double log1p_over_x(double x) {
  if (std::fabs(x) > 1e-8) return std::log1p(x) / x;
  return 1.0 - x * (0.5 - x / 3.0);
}

double expm1_over_x(double x) {
  if (std::fabs(x) > 1e-8) return std::expm1(x) / x;
  return 1.0 + x * (0.5 + x / 6.0);
}

}  // namespace

random_source::random_source(std::uint64_t seed) {
  for (std::uint64_t& word : state_) word = splitmix64(seed);
}

std::uint64_t random_source::next() {
  const std::uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
  const std::uint64_t shifted = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= shifted;
  state_[3] = rotate_left(state_[3], 45);
  return result;
}

// The hat function is h(x) = x^-s, continuous over [0.5, N + 0.5]; H is its
// integral normalised so that H(1) = 0: H(x) = (x^(1-s) - 1) / (1 - s), or
// log(x) when s = 1. Both forms are the same expression through expm1_over_x.
double zipf_sampler::h(double x) const { return std::exp(-exponent_ * std::log(x)); }

double zipf_sampler::integral_h(double x) const {
  const double log_x = std::log(x);
  return expm1_over_x((1.0 - exponent_) * log_x) * log_x;
}

double zipf_sampler::inverse_integral_h(double x) const {
  double scaled = x * (1.0 - exponent_);
  // Rounding can push the argument of log1p just below -1 at the far end.
  if (scaled < -1.0) scaled = -1.0;
  return std::exp(log1p_over_x(scaled) * x);
}

zipf_sampler::zipf_sampler(std::uint64_t count, double exponent)
    : count_(count), exponent_(exponent) {
  assert(count >= 1);
  if (exponent_ <= 0) {
    // Unused (uniform popularity); keep the members defined.
    integral_at_first_ = integral_at_last_ = squeeze_ = 0;
    return;
  }
  integral_at_first_ = integral_h(1.5) - 1.0;
  integral_at_last_ = integral_h(static_cast<double>(count_) + 0.5);
  squeeze_ = 2.0 - inverse_integral_h(integral_h(2.5) - h(2.0));
}

std::uint64_t zipf_sampler::sample(random_source& random) const {
  assert(exponent_ > 0);
  for (;;) {
    const double area =
        integral_at_last_ + random.next_unit() * (integral_at_first_ - integral_at_last_);
    const double x = inverse_integral_h(area);
    double rounded = std::floor(x + 0.5);
    if (rounded < 1.0) rounded = 1.0;
    if (rounded > static_cast<double>(count_)) rounded = static_cast<double>(count_);
    // Accept at once inside the squeeze; otherwise compare with the exact
    // probability mass of the rounded rank.
    if (rounded - x <= squeeze_ || area >= integral_h(rounded + 0.5) - h(rounded)) {
      return static_cast<std::uint64_t>(rounded);
    }
  }
}

key_chooser::key_chooser(std::uint64_t key_count, popularity shape)
    : key_count_(key_count),
      shape_(shape),
      zipf_(key_count, shape.shape == popularity::kind::zipf ? shape.exponent : 0.0) {
  assert(key_count >= 1);
}

std::uint64_t key_chooser::next_index(random_source& random) const {
  switch (shape_.shape) {
    case popularity::kind::uniform: return random.below(key_count_);
    case popularity::kind::zipf: return zipf_.sample(random) - 1;
  }
  assert(false && "popularity kind out of range");
  return 0;
}

std::size_t key_digits(std::uint64_t key_count) {
  assert(key_count >= 1);
  std::uint64_t largest = key_count - 1;
  std::size_t digits = 1;
  while (largest >= 10) {
    largest /= 10;
    ++digits;
  }
  return digits;
}

std::string_view format_key(std::uint64_t index, std::span<char> out) {
  assert(out.size() >= 2);
  out[0] = 'k';
  std::size_t position = out.size();
  do {
    assert(position > 1 && "key size too small for this index");
    out[--position] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index > 0);
  while (position > 1) out[--position] = '0';
  return std::string_view(out.data(), out.size());
}

}  // namespace ringcache::loadgen

