// The put path: where an item is placed, how it is published in the index,
// put and del.
//
// A put of an item up to half a segment appends it to this thread's open
// segment of its TTL class (place_shared), so writers never share a cache
// line, then publishes it: under the key's bucket lock, its put mode is
// checked against the item it replaces and the slot is switched (publish).
// A larger item is written as a Reservation (reservation.cc). A deleted or
// replaced large item's segment is retired at once (eviction.cc).
#include "store/put.h"

#include <cassert>

#include "store/bytes.h"

namespace ringcache::store {

namespace {

// The item a put would replace, decoded once under the bucket lock.
struct OldItem {
  Segment* segment = nullptr;  // nullptr: the key is absent
  uint32_t offset = 0;
  DecodedHeader header;
};

// Whether the put may replace what the index holds for the key, under the
// put's mode.
PutStatus check_condition(StoreImpl& impl, const PublishRequest& r, const OldItem& old) {
  assert(r.segment != nullptr);
  assert(old.segment != r.segment || old.offset != r.offset);  // never the item being published
  bool present = false;
  uint64_t old_version = 0;
  uint64_t old_cas = 0;
  if (old.segment != nullptr) {
    const DecodedHeader& h = old.header;
    present = !h.fields.tombstone && !impl.flushed(old.segment, h) && !expired(h.fields, impl.now_s());
    old_version = h.fields.version;
    old_cas = StoreImpl::cas_of(old.segment, old.offset, h, impl.config.versioned);
  }
  switch (r.options.mode) {
    case PutMode::set:
      return PutStatus::stored;
    case PutMode::add:
      return present ? PutStatus::not_stored : PutStatus::stored;
    case PutMode::replace:
      return present ? PutStatus::stored : PutStatus::not_stored;
    case PutMode::cas:
      if (!present) return PutStatus::not_found;
      return old_cas == r.options.cas ? PutStatus::stored : PutStatus::exists;
    case PutMode::newer:
      // A write older than a flush it should have been flushed by.
      if (r.version < impl.flush_version.load(std::memory_order_relaxed)) return PutStatus::older;
      // Tombstones and expired items still hold their version: a late,
      // older write must not resurrect a deleted key.
      return old.segment != nullptr && old_version >= r.version ? PutStatus::older
                                                                 : PutStatus::stored;
  }
  assert(false);
  return PutStatus::aborted;
}

// Points `slot` at the new item in place of `old` (if any) and moves the
// thread's key and byte counts by the difference. Runs under the bucket's
// lock. Returns the old item's large segment, pinned, for the caller to
// reclaim once outside the epoch (nullptr when there is none).
Segment* link_item(StoreImpl& impl, ThreadState* st, const PublishRequest& r, std::atomic<uint64_t>& slot,
                   uint64_t slot_value, const OldItem& old) {
  assert(slot.load(std::memory_order_relaxed) == 0 || old.segment != nullptr);
  assert(!(old.segment == r.segment && old.offset == r.offset));
  int64_t keys = r.tombstone ? 0 : 1;
  int64_t item_bytes = static_cast<int64_t>(r.item_bytes);
  int64_t live_bytes = static_cast<int64_t>(r.live_bytes);
  Segment* dead_large = nullptr;
  if (old.segment != nullptr) {
    const DecodedHeader& h = old.header;
    item_bytes -= static_cast<int64_t>(h.total_bytes());
    if (!h.fields.tombstone) {
      keys -= 1;
      live_bytes -= static_cast<int64_t>(h.fields.key_size + h.fields.value_size);
    }
  }
  slot.store(slot_value, std::memory_order_release);
  r.segment->live_item_bytes.fetch_add(static_cast<int64_t>(r.item_bytes), std::memory_order_relaxed);
  if (old.segment != nullptr) {
    [[maybe_unused]] const int64_t live = old.segment->live_item_bytes.fetch_sub(
        static_cast<int64_t>(old.header.total_bytes()), std::memory_order_relaxed);
    assert(live >= static_cast<int64_t>(old.header.total_bytes()));  // never below zero
    if (old.segment->kind == SegmentKind::large) {
      impl.pin(old.segment);
      dead_large = old.segment;
    }
  }
  st->keys.add(keys);
  st->item_bytes.add(item_bytes);
  st->live_bytes.add(live_bytes);
  return dead_large;
}

}  // namespace

PutStatus publish(StoreImpl& impl, ThreadState* st, const PublishRequest& r) {
  assert(!impl.epoch.inside(st->epoch));
  assert((r.segment->refs.load(std::memory_order_relaxed) & ~segment_evicted_bit) != 0);  // pinned
  const uint64_t slot_value = make_slot(hash_tag(r.hash), r.segment->id, r.offset);
  Bucket* spare = nullptr;
  for (;;) {
    PutStatus status = PutStatus::stored;
    bool need_bucket = false;
    Segment* dead_large = nullptr;
    impl.epoch.enter(st->epoch);
    {
      HashIndex::Locked locked(*impl.index, r.hash);
      std::atomic<uint64_t>* slot =
          locked.find([&](uint64_t v) { return impl.slot_matches(v, r.key, r.hash); });
      OldItem old;
      if (slot != nullptr) {
        const uint64_t v = slot->load(std::memory_order_relaxed);
        old.segment = impl.segment_by_id(slot_segment(v));
        old.offset = slot_offset(v);
        old.header = impl.header_at(old.segment, old.offset);
      }
      if (r.segment->state.load(std::memory_order_seq_cst) == SegmentState::evicting) {
        status = PutStatus::evicted;
      } else {
        status = check_condition(impl, r, old);
      }
      if (status == PutStatus::stored && slot == nullptr) {
        slot = locked.find_empty();
        if (slot == nullptr && spare != nullptr) {
          locked.add_overflow(spare);
          spare = nullptr;
          slot = locked.find_empty();
        }
        if (slot == nullptr) need_bucket = true;
      }
      if (status == PutStatus::stored && !need_bucket) dead_large = link_item(impl, st, r, *slot, slot_value, old);
    }
    impl.epoch.exit(st->epoch);
    if (dead_large != nullptr) impl.reclaim_dead_large(st, dead_large);
    // A spare left over (another writer extended the chain first) stays in
    // the index block: it is 64 bytes, and rare.
    if (!need_bucket) return status;
    spare = impl.alloc_overflow_bucket(st);
    if (spare == nullptr) return PutStatus::no_memory;
  }
}

Placement place_shared(StoreImpl& impl, ThreadState* st, ItemFields& f, uint8_t ttl_class) {
  Segment*& open = st->open[ttl_class];
  for (;;) {
    // After a flush_all, items must land in segments created after it.
    if (open != nullptr && impl.flushed(open)) {
      impl.seal(open);
      open = nullptr;
    }
    if (open != nullptr) {
      // The first item that uses a base sets it; it never changes after.
      if (f.expires_at != 0 && open->expiry_base.load(std::memory_order_relaxed) == 0) {
        open->expiry_base.store(f.expires_at, std::memory_order_relaxed);
      }
      if (impl.config.versioned && open->version_base.load(std::memory_order_relaxed) == 0) {
        open->version_base.store(f.version, std::memory_order_relaxed);
      }
      const SegmentBases bases = open->bases();
      const ExpiryCode code = expiry_code_for(f, bases.expiry);
      const uint32_t header = item_header_bytes(f, code, impl.config.versioned, bases.version);
      const uint64_t need = header + f.key_size + f.value_size;
      if (open->write_offset + need <= impl.block_bytes) {
        // Only into this thread's open segment, after its header.
        assert(open->state.load(std::memory_order_relaxed) == SegmentState::open);
        assert(open->write_offset >= segment_header_bytes);
        Placement p{open, open->write_offset, header};
        encode_item_header(open->block() + p.offset, f, code, bases, impl.config.versioned);
        open->write_offset += static_cast<uint32_t>(need);
        raise_expires_at_max(open, f.expires_at);
        impl.pin(open);
        return p;
      }
      impl.seal(open);
      open = nullptr;
    }
    assert(open == nullptr);
    open = impl.new_segment(st, SegmentKind::shared, ttl_class);
    if (open == nullptr) return {};
  }
}

PutStatus StoreThread::put(std::string_view key, std::string_view value, const ItemMeta& meta,
                           const PutOptions& options) {
  const ItemFields f{key.size(), value.size(), meta.flags, meta.expires_at, meta.version, false};
  return put_fields(key, value, f, options);
}

PutStatus StoreThread::put_fields(std::string_view key, std::string_view value,
                                  const ItemFields& fields, const PutOptions& options) {
  // It may evict, which waits for readers.
  assert(!impl_.epoch.inside(state_->epoch));
  assert(fields.key_size == key.size());
  assert(fields.value_size == value.size());
  const uint32_t now = impl_.now_s();
  impl_.flush_seq_now(now);
  ItemFields f = fields;
  if (!f.tombstone && expired(f, now)) {
    // memcached semantics: storing an already-expired item removes the key,
    // when the put's condition holds.
    if (options.mode == PutMode::set) {
      del(key);
      return PutStatus::stored;
    }
    f.expires_at = now;  // stored, and invisible at once
  }
  const uint64_t upper =
      item_header_bytes(f, ExpiryCode::absolute32, impl_.config.versioned) + key.size() + value.size();
  if (upper > impl_.shared_item_bytes_max) {
    // A tombstone gets here only by its key (replication's delete of a key
    // longer than a shared item); it stays a tombstone.
    Reservation r = reserve_fields(key, f, options);
    if (r.ok()) r.append(value);
    return r.commit();
  }
  const Placement p = place_shared(impl_, state_, f, ttl_class_for(f.expires_at, now));
  if (p.segment == nullptr) return PutStatus::no_memory;
  char* item = p.segment->block() + p.offset;
  copy_bytes(item + p.header_bytes, key.data(), key.size());
  copy_bytes(item + p.header_bytes + key.size(), value.data(), value.size());
  const PublishRequest request{p.segment,
                               p.offset,
                               hash_key(key),
                               key,
                               p.header_bytes + key.size() + value.size(),
                               f.tombstone ? 0 : key.size() + value.size(),
                               f.tombstone,
                               f.version,
                               options};
  const PutStatus status = publish(impl_, state_, request);
  impl_.unpin(p.segment);
  return status;
}

DelStatus StoreThread::del(std::string_view key) {
  assert(!impl_.epoch.inside(state_->epoch));
  const uint64_t hash = hash_key(key);
  Segment* dead_large = nullptr;
  bool was_live = false;
  {
    ReadSection section(*this);
    HashIndex::Locked locked(*impl_.index, hash);
    std::atomic<uint64_t>* slot =
        locked.find([&](uint64_t v) { return impl_.slot_matches(v, key, hash); });
    if (slot == nullptr) return DelStatus::not_found;
    const uint64_t old = slot->load(std::memory_order_relaxed);
    Segment* s = impl_.segment_by_id(slot_segment(old));
    assert(s != nullptr);  // slot_matches found it
    const DecodedHeader h = impl_.header_at(s, slot_offset(old));
    slot->store(0, std::memory_order_release);
    [[maybe_unused]] const int64_t live =
        s->live_item_bytes.fetch_sub(static_cast<int64_t>(h.total_bytes()), std::memory_order_relaxed);
    assert(live >= static_cast<int64_t>(h.total_bytes()));  // never below zero
    state_->item_bytes.add(-static_cast<int64_t>(h.total_bytes()));
    if (!h.fields.tombstone) {
      state_->keys.add(-1);
      state_->live_bytes.add(-static_cast<int64_t>(h.fields.key_size + h.fields.value_size));
    }
    was_live = !h.fields.tombstone && !impl_.flushed(s, h) && !expired(h.fields, impl_.now_s());
    if (s->kind == SegmentKind::large) {
      impl_.pin(s);
      dead_large = s;
    }
  }
  if (dead_large != nullptr) impl_.reclaim_dead_large(state_, dead_large);
  return was_live ? DelStatus::deleted : DelStatus::not_found;
}

PutStatus StoreThread::del_versioned(std::string_view key, uint64_t version, uint32_t expires_at) {
  ItemFields f{key.size(), 0, 0, expires_at, version, true};
  return put_fields(key, {}, f, PutOptions{PutMode::newer, 0});
}

}  // namespace ringcache::store
