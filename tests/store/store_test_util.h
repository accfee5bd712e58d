// Helpers shared by the store tests.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.h"

namespace store_test {

// A clock the tests move by hand.
inline std::atomic<uint32_t> fake_now{1'000'000};
inline uint32_t fake_clock() { return fake_now.load(std::memory_order_relaxed); }

inline std::optional<std::string> get_string(ringcache::store::StoreThread& t, std::string_view key) {
  std::optional<std::string> out;
  t.get(key, [&](const ringcache::store::ItemView& v) {
    std::string s(v.value_size(), '\0');
    CHECK(v.copy_value(0, s.data(), s.size()) == s.size());
    if (v.contiguous()) CHECK(v.value() == s);
    out = std::move(s);
  });
  return out;
}

// Deterministic value bytes for (key id, version): lets a reader check that
// a value is exactly one that was written, never a torn or foreign one.
inline std::string make_value(uint64_t id, uint64_t version, size_t size) {
  std::string v(size, '\0');
  uint64_t x = id * 0x9E3779B97F4A7C15ull + version * 0xBF58476D1CE4E5B9ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    v[i] = static_cast<char>(x >> 56);
  }
  if (size >= 16) {
    std::memcpy(v.data(), &id, 8);
    std::memcpy(v.data() + 8, &version, 8);
  }
  return v;
}

}  // namespace store_test
