// The store facade: put / get / del / reservations, per-thread handles, stats.
#include "store/store.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "store/bytes.h"
#include "store/store_impl.h"

namespace ringcache::store {

namespace {

uint8_t ttl_class_for(uint32_t expires_at, uint32_t now) {
  if (expires_at == 0) return 0;
  const uint64_t ttl = expires_at > now ? expires_at - now : 1;
  const uint64_t c = 1 + (63 - static_cast<uint64_t>(std::countl_zero(ttl)));
  return static_cast<uint8_t>(std::min<uint64_t>(c, kTtlClasses - 1));
}

void raise_max_expiry(Segment* s, uint32_t expires_at) {
  if (expires_at > s->max_expires_at.load(std::memory_order_relaxed)) {
    s->max_expires_at.store(expires_at, std::memory_order_relaxed);
  }
}

}  // namespace

// ---------------------------------------------------------------- Store

Store::Store(const StoreConfig& config) : impl_(std::make_unique<StoreImpl>(config)) {}
Store::~Store() = default;
const StoreConfig& Store::config() const { return impl_->config; }
uint32_t Store::now_s() const { return impl_->now_s(); }
uint64_t Store::shared_item_max_bytes() const { return impl_->shared_item_max; }
void Store::set_version_source(VersionSource source, void* context) {
  impl_->version_source = source;
  impl_->version_context = context;
}

StoreStats Store::stats() const {
  StoreImpl& s = *impl_;
  StoreStats out;
  int64_t keys = s.shared.keys.load(std::memory_order_relaxed);
  int64_t item_bytes = s.shared.item_bytes.load(std::memory_order_relaxed);
  int64_t live_bytes = s.shared.live_bytes.load(std::memory_order_relaxed);
  int64_t hits = s.shared.hits.load(std::memory_order_relaxed);
  int64_t misses = s.shared.misses.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(s.threads_mutex);
    for (const ThreadState* t : s.threads) {
      keys += t->keys.get();
      item_bytes += t->item_bytes.get();
      live_bytes += t->live_bytes.get();
      hits += t->hits.get();
      misses += t->misses.get();
    }
  }
  // Per-thread deltas are read without a common snapshot: clamp transient
  // negatives instead of reporting 2^64.
  out.keys = static_cast<uint64_t>(std::max<int64_t>(0, keys));
  out.item_bytes = static_cast<uint64_t>(std::max<int64_t>(0, item_bytes));
  out.live_bytes = static_cast<uint64_t>(std::max<int64_t>(0, live_bytes));
  out.hits = static_cast<uint64_t>(hits);
  out.misses = static_cast<uint64_t>(misses);
  out.evictions = s.shared.evictions.load(std::memory_order_relaxed);
  out.evicted_segments = s.shared.evicted_segments.load(std::memory_order_relaxed);
  out.merged_segments = s.shared.merged_segments.load(std::memory_order_relaxed);
  out.merged_items = s.shared.merged_items.load(std::memory_order_relaxed);
  out.expirations = s.shared.expirations.load(std::memory_order_relaxed);
  out.segments = static_cast<uint64_t>(std::max<int64_t>(0, s.shared.segments.load()));
  out.blocks_bytes = s.pool->bytes_held();
  out.index_bytes = s.primary_bytes + s.index_blocks.load(std::memory_order_relaxed) * s.block_bytes;
  out.memory_limit_bytes = s.config.memory_limit_bytes;
  out.alloc_failures = s.pool->alloc_failures();
  out.upload_bytes = s.upload_bytes.load(std::memory_order_relaxed);
  out.upload_bytes_max = s.upload_bytes_max;
  out.upload_refusals = s.upload_refusals.load(std::memory_order_relaxed);
  return out;
}

// ---------------------------------------------------------------- StoreThread

StoreThread::StoreThread(Store& store) : store_(store), impl_(*store.impl_), state_(new ThreadState()) {
  state_->epoch = impl_.epoch.join();
  if (state_->epoch == nullptr) {
    delete state_;
    throw std::runtime_error("store: more StoreThread handles than StoreConfig::threads_max");
  }
  std::lock_guard<std::mutex> lock(impl_.threads_mutex);
  impl_.threads.push_back(state_);
}

StoreThread::~StoreThread() {
  seal_open_segments();
  {
    std::lock_guard<std::mutex> lock(impl_.threads_mutex);
    std::erase(impl_.threads, state_);
    impl_.shared.keys.fetch_add(state_->keys.get());
    impl_.shared.item_bytes.fetch_add(state_->item_bytes.get());
    impl_.shared.live_bytes.fetch_add(state_->live_bytes.get());
    impl_.shared.hits.fetch_add(state_->hits.get());
    impl_.shared.misses.fetch_add(state_->misses.get());
  }
  impl_.epoch.leave(state_->epoch);
  delete state_;
}

StoreThread::ReadSection::ReadSection(StoreThread& t) : thread_(t) {
  t.impl_.epoch.enter(t.state_->epoch);
}
StoreThread::ReadSection::~ReadSection() { thread_.impl_.epoch.exit(thread_.state_->epoch); }

void StoreImpl::fill_view(Segment* s, uint32_t offset, const DecodedHeader& h, ItemView& out) const {
  out.segment_ = s;
  out.key_size_ = h.fields.key_size;
  out.value_size_ = h.fields.value_size;
  out.flags_ = h.fields.flags;
  out.expires_at_ = h.fields.expires_at;
  out.version_ = h.fields.version;
  out.cas_ = cas_of(s, offset, h, config.versioned);
  out.contiguous_ = s->kind == SegmentKind::shared;
  if (out.contiguous_) {
    out.value_offset_ = offset + h.header_bytes + h.fields.key_size;
    out.value_ = s->block() + out.value_offset_;
  } else {
    out.value_offset_ = h.header_bytes + h.fields.key_size;
    out.value_ = nullptr;
  }
}

bool StoreThread::find(std::string_view key, ItemView& out, bool count) {
  const uint64_t hash = hash_key(key);
  const uint64_t slot =
      impl_.index->find(hash, [&](uint64_t v) { return impl_.slot_matches(v, key, hash); });
  if (slot != 0) {
    Segment* s = impl_.segment_by_id(slot_segment(slot));
    const uint32_t offset = slot_offset(slot);
    const DecodedHeader h = impl_.header_at(s, offset);
    if (!h.fields.tombstone && !impl_.flushed(s, h) &&
        (h.fields.expires_at == 0 || !expired(h.fields, impl_.now_s()))) {
      impl_.fill_view(s, offset, h, out);
      if (count) state_->hits.add(1);
      return true;
    }
  }
  if (count) state_->misses.add(1);
  return false;
}

void StoreThread::prefetch(std::span<const std::string_view> keys) {
  const size_t n = std::min(keys.size(), kPrefetchKeysMax);
  uint64_t hashes[kPrefetchKeysMax];
  for (size_t i = 0; i < n; ++i) {
    hashes[i] = hash_key(keys[i]);
    __builtin_prefetch(&impl_.index->primary(hashes[i]));
  }
  // By now the first buckets have arrived. An overflow bucket is only
  // loaded, not looked into: that would be one more round trip to wait for.
  for (size_t i = 0; i < n; ++i) {
    const Bucket& b = impl_.index->primary(hashes[i]);
    if (const Bucket* overflow = HashIndex::next(b)) __builtin_prefetch(overflow);
    const uint16_t tag = hash_tag(hashes[i]);
    for (const auto& slot_ref : b.slots) {
      const uint64_t slot = slot_ref.load(std::memory_order_relaxed);
      if (slot == 0 || slot_tag(slot) != tag) continue;
      // Outside a read section the segment may be evicted at any moment,
      // so its address is only computed, never dereferenced (a prefetch
      // of memory that is gone does not fault).
      const uintptr_t item = reinterpret_cast<uintptr_t>(impl_.segment_by_id(slot_segment(slot)));
      if (item == 0) continue;
      const auto* at = reinterpret_cast<const char*>(item + slot_offset(slot));
      __builtin_prefetch(at);       // header and key
      __builtin_prefetch(at + 64);  // and most of a small value
    }
  }
}

uint64_t StoreThread::index_buckets() const { return impl_.index->bucket_count(); }

void StoreThread::scan_bucket(uint64_t bucket, void (*fn)(void*, const ScanEntry&), void* context) {
  assert(impl_.epoch.inside(state_->epoch));
  const uint32_t now = impl_.now_s();
  for (const Bucket* b = &impl_.primary[bucket]; b != nullptr; b = HashIndex::next(*b)) {
    for (const auto& slot_ref : b->slots) {
      const uint64_t slot = slot_ref.load(std::memory_order_acquire);
      if (slot == 0) continue;
      Segment* s = impl_.segment_by_id(slot_segment(slot));
      if (s == nullptr) continue;
      const uint32_t offset = slot_offset(slot);
      const DecodedHeader h = impl_.header_at(s, offset);
      if (impl_.flushed(s, h)) continue;
      // Expired items are skipped; expired tombstones have done their job.
      if (h.fields.expires_at != 0 && expired(h.fields, now)) continue;
      ScanEntry e;
      impl_.fill_view(s, offset, h, e.view);
      e.tombstone = h.fields.tombstone;
      if (s->kind == SegmentKind::shared) {
        e.key = std::string_view(s->block() + offset + h.header_bytes, h.fields.key_size);
      } else {
        scan_key_.resize(h.fields.key_size);
        const char* cursor = nullptr;
        uint64_t base = 0;
        for (uint64_t done = 0; done < h.fields.key_size;) {
          std::string_view span = StoreImpl::large_span(s, h.header_bytes + done, &cursor, &base);
          const uint64_t n = std::min<uint64_t>(span.size(), h.fields.key_size - done);
          std::memcpy(scan_key_.data() + done, span.data(), n);
          done += n;
        }
        e.key = scan_key_;
      }
      fn(context, e);
    }
  }
}

DelStatus StoreThread::del(std::string_view key) {
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
    const DecodedHeader h = impl_.header_at(s, slot_offset(old));
    slot->store(0, std::memory_order_release);
    s->live_item_bytes.fetch_sub(static_cast<int64_t>(h.total_bytes()), std::memory_order_relaxed);
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

namespace {

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

// The item a put would replace, decoded once under the bucket lock.
struct OldItem {
  Segment* segment = nullptr;  // nullptr: the key is absent
  uint32_t offset = 0;
  DecodedHeader header;
};

// Whether the put may replace what the index holds for the key, under the
// put's mode.
PutStatus check_condition(StoreImpl& impl, const PublishRequest& r, const OldItem& old) {
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

// Links a written item into the index, replacing the key's previous item
// if the put's condition holds. The segment must be pinned by the caller.
PutStatus publish(StoreImpl& impl, ThreadState* st, const PublishRequest& r) {
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
      if (status == PutStatus::stored && !need_bucket) {
        int64_t keys = r.tombstone ? 0 : 1;
        int64_t item_bytes = static_cast<int64_t>(r.item_bytes);
        int64_t live_bytes = static_cast<int64_t>(r.live_bytes);
        if (old.segment != nullptr) {
          const DecodedHeader& h = old.header;
          item_bytes -= static_cast<int64_t>(h.total_bytes());
          if (!h.fields.tombstone) {
            keys -= 1;
            live_bytes -= static_cast<int64_t>(h.fields.key_size + h.fields.value_size);
          }
        }
        slot->store(slot_value, std::memory_order_release);
        r.segment->live_item_bytes.fetch_add(static_cast<int64_t>(r.item_bytes),
                                             std::memory_order_relaxed);
        if (old.segment != nullptr) {
          old.segment->live_item_bytes.fetch_sub(static_cast<int64_t>(old.header.total_bytes()),
                                                 std::memory_order_relaxed);
          if (old.segment->kind == SegmentKind::large) {
            impl.pin(old.segment);
            dead_large = old.segment;
          }
        }
        st->keys.add(keys);
        st->item_bytes.add(item_bytes);
        st->live_bytes.add(live_bytes);
      }
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

struct Placement {
  Segment* segment = nullptr;
  uint32_t offset = 0;
  uint32_t header_bytes = 0;
};

// Space for a whole item in this thread's open segment of the item's TTL
// class; writes the header. The segment comes back pinned.
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
        Placement p{open, open->write_offset, header};
        encode_item_header(open->block() + p.offset, f, code, bases, impl.config.versioned);
        open->write_offset += static_cast<uint32_t>(need);
        raise_max_expiry(open, f.expires_at);
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

}  // namespace

PutStatus StoreThread::put(std::string_view key, std::string_view value, const ItemMeta& meta,
                           const PutOptions& options) {
  const ItemFields f{key.size(), value.size(), meta.flags, meta.expires_at, meta.version, false};
  return put_fields(key, value, f, options);
}

PutStatus StoreThread::put_fields(std::string_view key, std::string_view value,
                                  const ItemFields& fields, const PutOptions& options) {
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
  if (upper > impl_.shared_item_max) {
    assert(!f.tombstone);
    ItemMeta meta{f.flags, f.expires_at, f.version};
    Reservation r = reserve(key, value.size(), meta, options);
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

PutStatus StoreThread::del_versioned(std::string_view key, uint64_t version, uint32_t expires_at) {
  ItemFields f{key.size(), 0, 0, expires_at, version, true};
  return put_fields(key, {}, f, PutOptions{PutMode::newer, 0});
}

Reservation StoreThread::reserve(std::string_view key, uint64_t value_size, const ItemMeta& meta,
                                 const PutOptions& options) {
  Reservation r;
  r.thread_ = this;
  r.options_ = options;
  r.hash_ = hash_key(key);
  r.value_size_ = value_size;
  r.expires_at_ = meta.expires_at;
  const uint32_t now = impl_.now_s();
  ItemFields f{key.size(), value_size, meta.flags, meta.expires_at, meta.version, false};
  const uint8_t ttl_class = ttl_class_for(f.expires_at, now);
  const uint64_t upper =
      item_header_bytes(f, ExpiryCode::absolute32, impl_.config.versioned) + key.size() + value_size;
  if (upper <= impl_.shared_item_max) {
    // Charged at its widest header: the exact one depends on the segment.
    if (!impl_.charge_upload(upper)) {
      r.status_ = PutStatus::no_memory;
      return r;
    }
    const Placement p = place_shared(impl_, state_, f, ttl_class);
    if (p.segment == nullptr) {
      impl_.release_upload(upper);
      r.status_ = PutStatus::no_memory;
      return r;
    }
    r.upload_charged_ = upper;
    char* item = p.segment->block() + p.offset;
    copy_bytes(item + p.header_bytes, key.data(), key.size());
    r.segment_ = p.segment;
    r.offset_ = p.offset;
    r.key_ = std::string_view(item + p.header_bytes, key.size());
    r.write_ = item + p.header_bytes + key.size();
    r.write_end_ = r.write_ + value_size;
    r.item_bytes_ = p.header_bytes + key.size() + value_size;
    r.status_ = PutStatus::stored;
    return r;
  }
  // A large segment's bases are its one item's own fields, so the header
  // size is known before anything is allocated.
  const SegmentBases bases{f.expires_at, f.version};
  const ExpiryCode code = expiry_code_for(f, bases.expiry);
  const uint32_t header = item_header_bytes(f, code, impl_.config.versioned, bases.version);
  r.item_bytes_ = header + key.size() + value_size;
  // The first piece: a whole block, or exactly what the item needs when it
  // is smaller than a block.
  const uint64_t first_piece = std::min<uint64_t>(kSegmentHeaderBytes + r.item_bytes_, impl_.block_bytes);
  if (!impl_.charge_upload(first_piece)) {
    r.status_ = PutStatus::no_memory;
    return r;
  }
  Segment* s = impl_.new_segment(state_, SegmentKind::large, ttl_class,
                                 first_piece < impl_.block_bytes ? first_piece : 0);
  if (s == nullptr) {
    impl_.release_upload(first_piece);
    r.status_ = PutStatus::no_memory;
    return r;
  }
  r.upload_charged_ = first_piece;
  impl_.pin(s);
  s->large_hash = r.hash_;
  s->expiry_base.store(bases.expiry, std::memory_order_relaxed);
  s->version_base.store(bases.version, std::memory_order_relaxed);
  s->large_bytes = r.item_bytes_;
  raise_max_expiry(s, f.expires_at);
  char* item = s->block() + kSegmentHeaderBytes;
  encode_item_header(item, f, code, bases, impl_.config.versioned);
  r.segment_ = s;
  r.offset_ = kSegmentHeaderBytes;
  r.block_ = s->block();
  r.write_ = item + header;
  r.write_end_ = s->block() + impl_.large_piece_bytes(s, 0);
  r.status_ = PutStatus::stored;
  // The key goes through the same path as the value; written_ counts value
  // bytes only, so write the key first, then reset it.
  const char* key_in_block = r.write_;
  const bool key_fits = key.size() <= static_cast<uint64_t>(r.write_end_ - r.write_);
  r.value_size_ = key.size() + value_size;
  if (!r.append(key)) return r;
  r.value_size_ = value_size;
  r.written_ = 0;
  if (key_fits) {
    r.key_ = std::string_view(key_in_block, key.size());
  } else {
    r.key_copy_.assign(key);
    r.key_ = r.key_copy_;
  }
  return r;
}

// ---------------------------------------------------------------- Reservation

Reservation::Reservation(Reservation&& o) noexcept { *this = std::move(o); }

Reservation& Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    release();
    thread_ = std::exchange(o.thread_, nullptr);
    segment_ = std::exchange(o.segment_, nullptr);
    block_ = o.block_;
    write_ = o.write_;
    write_end_ = o.write_end_;
    key_copy_ = std::move(o.key_copy_);
    key_ = key_copy_.empty() ? o.key_ : std::string_view(key_copy_);
    hash_ = o.hash_;
    value_size_ = o.value_size_;
    written_ = o.written_;
    item_bytes_ = o.item_bytes_;
    upload_charged_ = std::exchange(o.upload_charged_, 0);
    offset_ = o.offset_;
    expires_at_ = o.expires_at_;
    options_ = o.options_;
    status_ = std::exchange(o.status_, PutStatus::aborted);
  }
  return *this;
}

Reservation::~Reservation() { release(); }

void Reservation::abort() {
  if (status_ == PutStatus::stored) status_ = PutStatus::aborted;
  release();
}

void Reservation::release() {
  if (segment_ == nullptr) {
    assert(upload_charged_ == 0 && "a charge without a segment to hold it");
    return;
  }
  StoreImpl& impl = thread_->impl_;
  Segment* s = std::exchange(segment_, nullptr);
  if (s->kind == SegmentKind::large && s->state.load() == SegmentState::filling) {
    // Never published: nobody else can see it.
    s->refs.fetch_sub(1, std::memory_order_relaxed);
    impl.discard_unpublished(s);
  } else {
    impl.unpin(s);
  }
  // After the memory went back (or was published): the count never says
  // less than unpublished reservations hold.
  assert(upload_charged_ > 0);
  impl.release_upload(std::exchange(upload_charged_, 0));
}

bool Reservation::append(std::string_view bytes) {
  if (!ok()) return false;
  assert(bytes.size() <= remaining());
  StoreImpl& impl = thread_->impl_;
  while (!bytes.empty()) {
    if (write_ == write_end_) {
      // Only large items reach the end of a block with bytes to go.
      assert(segment_->kind == SegmentKind::large);
      // Whole blocks, but the last piece is cut to what is left.
      const uint64_t piece = std::min<uint64_t>(impl.block_bytes, kChainHeaderBytes + remaining());
      if (!impl.charge_upload(piece)) {
        status_ = PutStatus::no_memory;
        release();
        return false;
      }
      upload_charged_ += piece;
      char* next = impl.alloc_piece(thread_->state_, piece);
      if (next == nullptr) {
        status_ = PutStatus::no_memory;
        release();
        return false;
      }
      std::memset(next, 0, kChainHeaderBytes);
      if (block_ == segment_->block()) {
        segment_->chain_next = next;
      } else {
        std::memcpy(block_, &next, sizeof(next));
      }
      ++segment_->blocks;
      block_ = next;
      write_ = next + kChainHeaderBytes;
      write_end_ = next + piece;
    }
    const size_t n = std::min<size_t>(bytes.size(), static_cast<size_t>(write_end_ - write_));
    std::memcpy(write_, bytes.data(), n);
    write_ += n;
    written_ += n;
    bytes.remove_prefix(n);
  }
  return true;
}

PutStatus Reservation::commit() {
  if (thread_ == nullptr) return status_;
  if (status_ != PutStatus::stored || remaining() != 0) {
    if (status_ == PutStatus::stored) status_ = PutStatus::aborted;
    release();
    return status_;
  }
  StoreImpl& impl = thread_->impl_;
  ThreadState* st = thread_->state_;
  if (expires_at_ != 0 && expires_at_ <= impl.now_s() && options_.mode == PutMode::set) {
    thread_->del(key_);  // key_ may live in the segment: delete before unpinning
    release();
    return status_;
  }
  if (segment_->kind == SegmentKind::large) impl.seal(segment_);
  const DecodedHeader h = impl.header_at(segment_, offset_);
  const PublishRequest request{segment_,
                               offset_,
                               hash_,
                               key_,
                               item_bytes_,
                               h.fields.key_size + h.fields.value_size,
                               false,
                               h.fields.version,
                               options_};
  status_ = publish(impl, st, request);
  release();
  return status_;
}

// ---------------------------------------------------------------- ItemView

std::string_view ItemView::value() const {
  assert(contiguous_);
  return {value_, value_size_};
}

uint64_t ItemView::copy_value(uint64_t offset, char* dst, uint64_t n) const {
  if (offset >= value_size_) return 0;
  n = std::min(n, value_size_ - offset);
  if (contiguous_) {
    copy_bytes(dst, value_ + offset, n);
    return n;
  }
  const char* cursor = nullptr;
  uint64_t base = 0;
  for (uint64_t done = 0; done < n;) {
    std::string_view span = StoreImpl::large_span(segment_, value_offset_ + offset + done, &cursor, &base);
    const uint64_t k = std::min<uint64_t>(span.size(), n - done);
    std::memcpy(dst + done, span.data(), k);
    done += k;
  }
  return n;
}

PinnedItem ItemView::pin() const {
  PinnedItem p;
  segment_->owner->pin(segment_);
  p.segment_ = segment_;
  p.value_offset_ = value_offset_;
  p.value_size_ = value_size_;
  return p;
}

// ---------------------------------------------------------------- PinnedItem

PinnedItem::PinnedItem(PinnedItem&& o) noexcept { *this = std::move(o); }

PinnedItem& PinnedItem::operator=(PinnedItem&& o) noexcept {
  if (this != &o) {
    reset();
    segment_ = std::exchange(o.segment_, nullptr);
    value_offset_ = o.value_offset_;
    value_size_ = o.value_size_;
    cursor_block_ = o.cursor_block_;
    cursor_base_ = o.cursor_base_;
  }
  return *this;
}

PinnedItem::~PinnedItem() { reset(); }

void PinnedItem::reset() {
  if (segment_ != nullptr) {
    Segment* s = std::exchange(segment_, nullptr);
    s->owner->unpin(s);
  }
}

std::string_view PinnedItem::value_chunk(uint64_t offset) const {
  assert(segment_ != nullptr && offset < value_size_);
  if (segment_->kind == SegmentKind::shared) {
    return {segment_->block() + value_offset_ + offset, value_size_ - offset};
  }
  std::string_view span =
      StoreImpl::large_span(segment_, value_offset_ + offset, &cursor_block_, &cursor_base_);
  return span.substr(0, std::min<uint64_t>(span.size(), value_size_ - offset));
}

}  // namespace ringcache::store
