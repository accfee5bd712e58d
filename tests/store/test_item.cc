// Pins the item and index layouts: their sizes are the per-item overhead.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "store/allocator.h"
#include "store/hash_index.h"
#include "store/item.h"
#include "store/segment.h"

using namespace ringcache::store;

TEST_CASE("layout sizes are pinned") {
  CHECK(sizeof(Bucket) == 64);
  CHECK(alignof(Bucket) == 64);
  CHECK(sizeof(Segment) <= segment_header_bytes);
  CHECK(item_header_bytes_max == 26);
  CHECK(segment_id_max == (1u << 24) - 1);
}

TEST_CASE("header bytes: pay only for the fields used") {
  ItemFields f;
  f.key_size = 16;
  f.value_size = 100;
  // flags byte + 1-byte key length + 1-byte value length.
  CHECK(item_header_bytes(f, ExpiryCode::never, false) == 3);
  // A versioned store adds a width byte and the version: 4 bytes as a delta
  // from the segment's base when it fits, else 8.
  f.version = 1000;
  CHECK(item_header_bytes(f, ExpiryCode::never, true, 0) == 3 + 1 + 8);
  CHECK(item_header_bytes(f, ExpiryCode::never, true, 999) == 3 + 1 + 4);
  CHECK(item_header_bytes(f, ExpiryCode::never, true, 1000 + (1ull << 31)) == 3 + 1 + 4);
  CHECK(item_header_bytes(f, ExpiryCode::never, true, 1000 + (1ull << 31) + 1) == 3 + 1 + 8);
  f.flags = 7;
  CHECK(item_header_bytes(f, ExpiryCode::never, false) == 4);
  f.flags = 70000;
  CHECK(item_header_bytes(f, ExpiryCode::never, false) == 7);
  f.flags = 7;
  f.expires_at = 1000;
  CHECK(item_header_bytes(f, ExpiryCode::delta16, false) == 6);
  CHECK(item_header_bytes(f, ExpiryCode::absolute32, false) == 8);
  // Every field: flags, expiry, version.
  CHECK(item_header_bytes(f, ExpiryCode::delta16, true, 990) == 11);
  f.key_size = 300;
  f.value_size = 70000;
  CHECK(item_header_bytes(f, ExpiryCode::never, false) == 1 + 2 + 3 + 1);
  f.key_size = (1ull << 32) - 1;
  f.value_size = (1ull << 32) - 1;
  f.flags = 0xffffffffu;
  CHECK(item_header_bytes(f, ExpiryCode::absolute32, true, 0) == item_header_bytes_max);
}

TEST_CASE("headers round-trip for every width and expiry code") {
  const uint64_t sizes[] = {0, 1, 255, 256, 65535, 65536, (1u << 24) - 1, 1u << 24, 0xffffffffull};
  const uint32_t flag_values[] = {0, 1, 255, 256, 65535, 65536, 0xffffffffu};
  const uint64_t version_bases[] = {0, 0x0123456789abcdefull - 5, 0x0123456789abcdefull + (1ull << 31)};
  for (bool versioned : {false, true}) {
    for (uint64_t version_base : version_bases) {
      for (uint64_t k : sizes) {
        for (uint64_t v : sizes) {
          for (uint32_t flags : flag_values) {
            for (int code = 0; code < 4; ++code) {
              ItemFields f;
              f.key_size = k;
              f.value_size = v;
              f.flags = flags;
              f.version = versioned ? 0x0123456789abcdefull : 0;
              const SegmentBases bases{100000, version_base};
              const auto expiry = static_cast<ExpiryCode>(code);
              if (expiry == ExpiryCode::delta16) f.expires_at = bases.expiry - 32768;
              if (expiry == ExpiryCode::absolute32) f.expires_at = 0xfffffff0u;
              if (expiry == ExpiryCode::tombstone) {
                f.expires_at = 123;
                f.tombstone = true;
              }
              char buf[item_header_bytes_max + 1];
              std::memset(buf, 0x5a, sizeof(buf));
              const uint32_t n = encode_item_header(buf, f, expiry, bases, versioned);
              CHECK(n == item_header_bytes(f, expiry, versioned, version_base));
              CHECK(buf[n] == 0x5a);  // nothing written past the header
              const DecodedHeader d = decode_item_header(buf, bases, versioned);
              CHECK(d.header_bytes == n);
              CHECK(d.fields.key_size == k);
              CHECK(d.fields.value_size == v);
              CHECK(d.fields.flags == flags);
              CHECK(d.fields.expires_at == f.expires_at);
              CHECK(d.fields.tombstone == f.tombstone);
              CHECK(d.fields.version == f.version);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("delta16 expiry is chosen only within range of the segment base") {
  ItemFields f;
  f.expires_at = 50000;
  CHECK(expiry_code_for(f, 0) == ExpiryCode::absolute32);
  CHECK(expiry_code_for(f, 50000 - 32767) == ExpiryCode::delta16);
  CHECK(expiry_code_for(f, 50000 + 32768) == ExpiryCode::delta16);
  CHECK(expiry_code_for(f, 50000 - 32768) == ExpiryCode::absolute32);
  f.expires_at = 0;
  CHECK(expiry_code_for(f, 1234) == ExpiryCode::never);
}

TEST_CASE("index slots pack tag, segment id and offset") {
  const uint64_t s = make_slot(0xbeef, segment_id_max, (1u << 24) - 1);
  CHECK(slot_tag(s) == 0xbeef);
  CHECK(slot_segment(s) == segment_id_max);
  CHECK(slot_offset(s) == (1u << 24) - 1);
  CHECK(make_slot(0, 1, 0) != 0);  // a used slot is never the empty value
}

TEST_CASE("the allocator behind the store is the one the build chose") {
  // With --as-needed linking a build can silently keep glibc's malloc; the
  // daemon refuses to start then, and this pins that the check works.
  CHECK(ringcache::store::allocator_is_mimalloc() == (RINGCACHE_MIMALLOC == 1));
}
