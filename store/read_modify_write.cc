// Read-modify-write operations of the memcached text protocol: append and
// prepend (concat), incr and decr (add_delta), touch.
//
// Each copies the item out (read_for_update), builds the new one and stores
// it with PutMode::cas, so it lands only if nothing wrote the key meanwhile;
// otherwise it reads again, a bounded number of times. No lock is held
// while the value is copied and rebuilt; the price is that copy: a value
// being appended to must fit in memory twice. In a versioned store the new
// item takes its version from Store::set_version_source (replication's
// clock), so that it is newer than the item it read.
#include "store/store_impl.h"

#include <cassert>
#include <cstdint>
#include <string>

namespace ringcache::store {

bool StoreThread::read_for_update(std::string_view key, std::string& value, ItemMeta& meta,
                                  uint64_t& cas) {
  ReadSection section(*this);
  ItemView view;
  if (!find(key, view, false)) return false;
  value.resize(view.value_size());
  [[maybe_unused]] const uint64_t copied = view.copy_value(0, value.data(), value.size());
  assert(copied == value.size());
  meta = ItemMeta{view.flags(), view.expires_at(), view.version()};
  cas = view.cas();
  return true;
}

namespace {
// Read-modify-write attempts before giving up on a key under heavy
// concurrent writes (each failed attempt means another write succeeded).
constexpr int update_attempts_max = 16;
}  // namespace

PutStatus StoreThread::concat(std::string_view key, std::string_view data, bool prepend) {
  std::string value;
  for (int attempt = 0; attempt < update_attempts_max; ++attempt) {
    ItemMeta meta;
    uint64_t cas = 0;
    if (!read_for_update(key, value, meta, cas)) return PutStatus::not_stored;
    if (prepend) {
      value.insert(0, data);
    } else {
      value.append(data);
    }
    meta.version = impl_.rewrite_version(meta.version);
    const PutStatus st = put(key, value, meta, PutOptions{PutMode::cas, cas});
    // A cas put answers neither of these.
    assert(st != PutStatus::not_stored);
    assert(st != PutStatus::older);
    if (st == PutStatus::not_found) return PutStatus::not_stored;
    if (st != PutStatus::exists) return st;
  }
  return PutStatus::exists;
}

ArithStatus StoreThread::add_delta(std::string_view key, uint64_t delta, bool decrement,
                                   uint64_t* new_value) {
  constexpr size_t value_digits_max = 20;
  std::string value;
  for (int attempt = 0; attempt < update_attempts_max; ++attempt) {
    ItemMeta meta;
    uint64_t cas = 0;
    if (!read_for_update(key, value, meta, cas)) return ArithStatus::not_found;
    // memcached accepts trailing spaces (its own in-place decr padding).
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r' || value.back() == '\n')) {
      value.pop_back();
    }
    if (value.empty() || value.size() > value_digits_max) return ArithStatus::not_number;
    uint64_t current = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return ArithStatus::not_number;
      const uint64_t digit = static_cast<uint64_t>(c - '0');
      if (current > (UINT64_MAX - digit) / 10) return ArithStatus::not_number;
      current = current * 10 + digit;
    }
    const uint64_t next = decrement ? (delta > current ? 0 : current - delta) : current + delta;
    const std::string digits = std::to_string(next);
    assert(!digits.empty());
    assert(digits.size() <= value_digits_max);
    meta.version = impl_.rewrite_version(meta.version);
    const PutStatus st = put(key, digits, meta, PutOptions{PutMode::cas, cas});
    if (st == PutStatus::stored) {
      *new_value = next;
      return ArithStatus::ok;
    }
    if (st == PutStatus::not_found) return ArithStatus::not_found;
    if (st != PutStatus::exists) return ArithStatus::no_memory;
  }
  return ArithStatus::no_memory;
}

PutStatus StoreThread::touch(std::string_view key, uint32_t expires_at) {
  std::string value;
  for (int attempt = 0; attempt < update_attempts_max; ++attempt) {
    ItemMeta meta;
    uint64_t cas = 0;
    if (!read_for_update(key, value, meta, cas)) return PutStatus::not_found;
    meta.expires_at = expires_at;
    meta.version = impl_.rewrite_version(meta.version);
    const PutStatus st = put(key, value, meta, PutOptions{PutMode::cas, cas});
    assert(st != PutStatus::not_stored);
    assert(st != PutStatus::older);
    if (st != PutStatus::exists) return st;
  }
  return PutStatus::exists;
}

}  // namespace ringcache::store
