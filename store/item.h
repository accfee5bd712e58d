// Item layout: a byte-packed header, then the key, then the value.
//
//   byte 0        bits 0-1 key length width    0:1  1:2  2:4 bytes  (3 unused)
//                 bits 2-3 value length width  0:1  1:2  2:3  3:4 bytes
//                 bits 4-5 flags width         0:absent(=0) 1:1 2:2 3:4 bytes
//                 bits 6-7 expiry              0:never
//                                              1:int16 seconds from the segment's expiry base
//                                              2:uint32 absolute seconds
//                                              3:tombstone, uint32 absolute expiry (replication)
//   key length    little-endian, 1/2/4 bytes
//   value length  little-endian, 1/2/3/4 bytes
//   flags         0/1/2/4 bytes
//   expiry        0/2/4 bytes
//   versioned stores only (StoreConfig::versioned):
//     byte 1      bit 0: version width  0: int32 delta from the segment's version base
//                                       1: full 64 bits   (bits 1-7 unused, zero)
//     version     4 or 8 bytes
//   key bytes, value bytes
//
// Nothing is aligned: items pack back to back in a segment. A 16-byte key
// with a 100-byte value and no optional field costs 3 header bytes; with
// every field (flags < 256, expiry, version near the segment's) 11. CAS is
// not stored: it is the version in a versioned store, and otherwise derived
// from where the item lives (segment sequence number, offset), which changes
// with every write. Per-item cost is pinned by tests/store/test_item.cc.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>

namespace ringcache::store {

inline constexpr uint32_t item_header_bytes_max = 1 + 4 + 4 + 4 + 4 + 1 + 8;
static_assert(item_header_bytes_max == 26);
// The longest key and value: the header holds their lengths in at most 4
// bytes. Longer ones (a text-protocol length with -m of 8 GiB or more) are
// refused by the store (PutStatus::no_memory), not written.
inline constexpr uint64_t key_bytes_max = (1ull << 32) - 1;
inline constexpr uint64_t value_bytes_max = (1ull << 32) - 1;

enum class ExpiryCode : uint8_t { never = 0, delta16 = 1, absolute32 = 2, tombstone = 3 };

struct ItemFields {
  uint64_t key_size = 0;    // <= key_bytes_max
  uint64_t value_size = 0;  // <= value_bytes_max
  uint32_t flags = 0;
  uint32_t expires_at = 0;  // 0 = never
  uint64_t version = 0;
  bool tombstone = false;
};

inline bool expired(const ItemFields& f, uint32_t now) { return f.expires_at != 0 && f.expires_at <= now; }

// Per-segment bases that let items store small deltas; 0 = not set yet.
struct SegmentBases {
  uint32_t expiry = 0;
  uint64_t version = 0;
};

struct DecodedHeader {
  ItemFields fields;
  uint32_t header_bytes = 0;
  uint64_t total_bytes() const { return header_bytes + fields.key_size + fields.value_size; }
};

namespace item_detail {
inline uint32_t width_for(uint64_t v, bool three_allowed) {
  if (v < (1ull << 8)) return 1;
  if (v < (1ull << 16)) return 2;
  if (three_allowed && v < (1ull << 24)) return 3;
  return 4;
}
inline void put_le(char* p, uint64_t v, uint32_t width) {
  for (uint32_t i = 0; i < width; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint64_t get_le(const char* p, uint32_t width) {
  uint64_t v = 0;
  for (uint32_t i = 0; i < width; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}
inline uint32_t key_width_code(uint32_t w) { return w == 1 ? 0 : w == 2 ? 1 : 2; }
inline uint32_t key_width_from_code(uint32_t c) { return c == 0 ? 1 : c == 1 ? 2 : 4; }
inline uint32_t flags_width(uint32_t flags) {
  if (flags == 0) return 0;
  if (flags < (1u << 8)) return 1;
  if (flags < (1u << 16)) return 2;
  return 4;
}
inline uint32_t flags_code(uint32_t w) { return w == 0 ? 0 : w == 1 ? 1 : w == 2 ? 2 : 3; }
inline uint32_t flags_width_from_code(uint32_t c) { return c == 3 ? 4 : c; }
}  // namespace item_detail

// How the expiry of an item is written, given the segment's expiry base
// (0 = the segment has none yet: the caller sets it to expires_at first).
inline ExpiryCode expiry_code_for(const ItemFields& f, uint32_t segment_expiry_base) {
  if (f.tombstone) return ExpiryCode::tombstone;
  if (f.expires_at == 0) return ExpiryCode::never;
  if (segment_expiry_base != 0) {
    int64_t delta = int64_t{f.expires_at} - int64_t{segment_expiry_base};
    if (delta >= INT16_MIN && delta <= INT16_MAX) return ExpiryCode::delta16;
  }
  return ExpiryCode::absolute32;
}

inline bool version_fits_delta32(uint64_t version, uint64_t base) {
  if (base == 0) return false;
  const auto delta = static_cast<int64_t>(version - base);
  return delta >= INT32_MIN && delta <= INT32_MAX;
}

inline uint32_t item_header_bytes(const ItemFields& f, ExpiryCode expiry, bool versioned,
                                  uint64_t version_base = 0) {
  using namespace item_detail;
  uint32_t n = 1 + width_for(f.key_size, false) + width_for(f.value_size, true) +
               flags_width(f.flags);
  n += expiry == ExpiryCode::never ? 0 : expiry == ExpiryCode::delta16 ? 2 : 4;
  if (versioned) n += 1 + (version_fits_delta32(f.version, version_base) ? 4 : 8);
  return n;
}

inline DecodedHeader decode_item_header(const char* in, const SegmentBases& bases, bool versioned);
inline bool header_decodes_to(const char* at, const ItemFields& f, const SegmentBases& bases,
                              bool versioned);

// Writes the header at `out`; returns its size.
inline uint32_t encode_item_header(char* out, const ItemFields& f, ExpiryCode expiry,
                                   const SegmentBases& bases, bool versioned) {
  const uint32_t segment_expiry_base = bases.expiry;
  using namespace item_detail;
  assert(f.key_size <= key_bytes_max);
  assert(f.value_size <= value_bytes_max);
  const uint32_t kw = width_for(f.key_size, false);
  const uint32_t vw = width_for(f.value_size, true);
  const uint32_t fw = flags_width(f.flags);
  out[0] = static_cast<char>(key_width_code(kw) | ((vw - 1) << 2) | (flags_code(fw) << 4) |
                             (static_cast<uint32_t>(expiry) << 6));
  uint32_t at = 1;
  put_le(out + at, f.key_size, kw);
  at += kw;
  put_le(out + at, f.value_size, vw);
  at += vw;
  put_le(out + at, f.flags, fw);
  at += fw;
  switch (expiry) {
    case ExpiryCode::never:
      break;
    case ExpiryCode::delta16: {
      int64_t delta = int64_t{f.expires_at} - int64_t{segment_expiry_base};
      assert(delta >= INT16_MIN && delta <= INT16_MAX);
      put_le(out + at, static_cast<uint16_t>(static_cast<int16_t>(delta)), 2);
      at += 2;
      break;
    }
    case ExpiryCode::absolute32:
    case ExpiryCode::tombstone:
      put_le(out + at, f.expires_at, 4);
      at += 4;
      break;
  }
  if (versioned) {
    if (version_fits_delta32(f.version, bases.version)) {
      out[at++] = 0;
      put_le(out + at, static_cast<uint32_t>(static_cast<int32_t>(f.version - bases.version)), 4);
      at += 4;
    } else {
      out[at++] = 1;
      put_le(out + at, f.version, 8);
      at += 8;
    }
  }
  assert(at == item_header_bytes(f, expiry, versioned, bases.version));
  assert(header_decodes_to(out, f, bases, versioned));
  return at;
}

inline DecodedHeader decode_item_header(const char* in, const SegmentBases& bases,
                                        bool versioned) {
  const uint32_t segment_expiry_base = bases.expiry;
  using namespace item_detail;
  DecodedHeader d;
  const auto b0 = static_cast<uint8_t>(in[0]);
  assert((b0 & 3) != 3);
  const uint32_t kw = key_width_from_code(b0 & 3);
  const uint32_t vw = ((b0 >> 2) & 3) + 1;
  const uint32_t fw = flags_width_from_code((b0 >> 4) & 3);
  const auto expiry = static_cast<ExpiryCode>(b0 >> 6);
  uint32_t at = 1;
  d.fields.key_size = get_le(in + at, kw);
  at += kw;
  d.fields.value_size = get_le(in + at, vw);
  at += vw;
  d.fields.flags = static_cast<uint32_t>(get_le(in + at, fw));
  at += fw;
  switch (expiry) {
    case ExpiryCode::never:
      break;
    case ExpiryCode::delta16: {
      auto delta = static_cast<int16_t>(static_cast<uint16_t>(get_le(in + at, 2)));
      d.fields.expires_at = static_cast<uint32_t>(int64_t{segment_expiry_base} + delta);
      at += 2;
      break;
    }
    case ExpiryCode::tombstone:
      d.fields.tombstone = true;
      [[fallthrough]];
    case ExpiryCode::absolute32:
      d.fields.expires_at = static_cast<uint32_t>(get_le(in + at, 4));
      at += 4;
      break;
  }
  if (versioned) {
    const auto width_bit = static_cast<uint8_t>(in[at++]);
    assert(width_bit <= 1);
    if (width_bit == 0) {
      auto delta = static_cast<int32_t>(static_cast<uint32_t>(get_le(in + at, 4)));
      d.fields.version = bases.version + static_cast<uint64_t>(static_cast<int64_t>(delta));
      at += 4;
    } else {
      d.fields.version = get_le(in + at, 8);
      at += 8;
    }
  }
  d.header_bytes = at;
  assert(d.header_bytes >= 3);
  assert(d.header_bytes <= item_header_bytes_max);
  return d;
}

// Whether the header at `at` reads back as `f` (debug checks of a header
// just written). Versions are kept only by versioned stores.
inline bool header_decodes_to(const char* at, const ItemFields& f, const SegmentBases& bases,
                              bool versioned) {
  const DecodedHeader d = decode_item_header(at, bases, versioned);
  return d.fields.key_size == f.key_size && d.fields.value_size == f.value_size &&
         d.fields.flags == f.flags && d.fields.expires_at == f.expires_at &&
         d.fields.tombstone == f.tombstone && (!versioned || d.fields.version == f.version);
}

}  // namespace ringcache::store
