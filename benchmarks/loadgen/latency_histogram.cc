#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace ringcache::loadgen {

static_assert(latency_histogram::bucket_count == 7424,
              "index of UINT64_MAX is 56 * 128 + 255; the table must hold it");

std::size_t latency_histogram::index_of(std::uint64_t value) {
  const unsigned width = static_cast<unsigned>(std::bit_width(value));
  if (width <= sub_bucket_bits) return static_cast<std::size_t>(value);
  const unsigned shift = width - sub_bucket_bits;
  const std::size_t mantissa = static_cast<std::size_t>(value >> shift);
  assert(mantissa >= half_sub_buckets && mantissa < 2 * half_sub_buckets);
  const std::size_t index = shift * half_sub_buckets + mantissa;
  assert(index < bucket_count);
  return index;
}

std::uint64_t latency_histogram::highest_value_in(std::size_t index) {
  assert(index < bucket_count);
  if (index < 2 * half_sub_buckets) return index;
  const std::size_t shift = index / half_sub_buckets - 1;
  const std::uint64_t mantissa = index % half_sub_buckets + half_sub_buckets;
  const std::uint64_t next_mantissa = mantissa + 1;
  // The last bucket's bound is 2^64, which only saturates to UINT64_MAX.
  if (static_cast<std::size_t>(std::bit_width(next_mantissa)) + shift > 64) return UINT64_MAX;
  return (next_mantissa << shift) - 1;
}

void latency_histogram::merge(const latency_histogram& other) {
  assert(counts_.size() == other.counts_.size());
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  if (other.total_ > 0) {
    if (other.max_ > max_) max_ = other.max_;
    if (other.min_ < min_) min_ = other.min_;
  }
}

void latency_histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  max_ = 0;
  min_ = UINT64_MAX;
}

std::uint64_t latency_histogram::value_at_quantile(double quantile) const {
  if (total_ == 0) return 0;
  assert(quantile > 0.0 && quantile <= 1.0);
  const double wanted = std::ceil(quantile * static_cast<double>(total_));
  std::uint64_t rank = wanted < 1.0 ? 1 : static_cast<std::uint64_t>(wanted);
  if (rank > total_) rank = total_;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t bound = highest_value_in(i);
      return bound < max_ ? bound : max_;
    }
  }
  assert(false && "counts add up to total_");
  return max_;
}

}  // namespace ringcache::loadgen
