// What the put path (put.cc) shares with values written in pieces
// (reservation.cc): the TTL class of an expiry, placing an item in a
// thread's open shared segment, and publishing a written item in the
// index. Internal to store/.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string_view>

#include "store/store_impl.h"

namespace ringcache::store {

inline uint8_t ttl_class_for(uint32_t expires_at, uint32_t now) {
  if (expires_at == 0) return 0;
  const uint64_t ttl = expires_at > now ? expires_at - now : 1;
  const uint64_t c = 1 + (63 - static_cast<uint64_t>(std::countl_zero(ttl)));
  return static_cast<uint8_t>(std::min<uint64_t>(c, ttl_class_count - 1));
}

inline void raise_expires_at_max(Segment* s, uint32_t expires_at) {
  if (expires_at > s->expires_at_max.load(std::memory_order_relaxed)) {
    s->expires_at_max.store(expires_at, std::memory_order_relaxed);
  }
}

// A written item to link into the index: where it is, its key, what it
// adds to the store's counters, and the put's condition.
struct PublishRequest {
  Segment* segment;
  uint32_t offset;
  uint64_t hash;
  std::string_view key;
  uint64_t item_bytes;
  uint64_t live_bytes;  // key + value, 0 for a tombstone
  bool tombstone;
  uint64_t version;
  PutOptions options;
};

// Links a written item into the index, replacing the key's previous item
// if the put's condition holds. The segment must be pinned by the caller.
PutStatus publish(StoreImpl& impl, ThreadState* st, const PublishRequest& r);

// Where place_shared put an item, and the size of the header it wrote.
struct Placement {
  Segment* segment = nullptr;
  uint32_t offset = 0;
  uint32_t header_bytes = 0;
};

// Space for a whole item in this thread's open segment of the item's TTL
// class; writes the header. The segment comes back pinned.
Placement place_shared(StoreImpl& impl, ThreadState* st, ItemFields& f, uint8_t ttl_class);

}  // namespace ringcache::store
