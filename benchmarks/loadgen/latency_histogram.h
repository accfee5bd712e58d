// Log-linear latency histogram in the manner of HdrHistogram: constant
// relative precision over the whole 64-bit range with a fixed, small table, so
// recording is a bit_width, a shift and an increment (no allocation, no
// branch on the value's size beyond one compare).
//
// Layout (sub_bucket_bits = B = 8):
//   values below 2^B          -> index = value                 (exact)
//   otherwise, shift = bit_width(value) - B, mantissa = value >> shift
//                             -> index = shift * 2^(B-1) + mantissa
// mantissa lies in [2^(B-1), 2^B), so consecutive shifts tile the index space
// without gaps and every bucket spans at most 1/128 (0.8 %) of its value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringcache::loadgen {

class latency_histogram {
 public:
  static constexpr unsigned sub_bucket_bits = 8;
  static constexpr std::size_t half_sub_buckets = std::size_t{1} << (sub_bucket_bits - 1);
  static constexpr std::size_t bucket_count =
      (64 - sub_bucket_bits) * half_sub_buckets + 2 * half_sub_buckets;

  latency_histogram() : counts_(bucket_count, 0) {}

  void record(std::uint64_t value) {
    ++counts_[index_of(value)];
    ++total_;
    if (value > max_) max_ = value;
    if (value < min_) min_ = value;
  }

  void merge(const latency_histogram& other);
  void reset();

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return total_ == 0 ? 0 : max_; }
  std::uint64_t min() const { return total_ == 0 ? 0 : min_; }

  // Smallest recorded-bucket upper bound at or below which a fraction
  // `quantile` (0..1] of the samples lie, never above the true maximum.
  std::uint64_t value_at_quantile(double quantile) const;

  static std::size_t index_of(std::uint64_t value);
  static std::uint64_t highest_value_in(std::size_t index);

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
};

}  // namespace ringcache::loadgen
