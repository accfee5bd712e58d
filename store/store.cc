// The facade and the read path: Store (construction, stats), StoreThread's
// handle and its read sections, get (find), prefetch, scan, and what a
// reader holds (ItemView, PinnedItem).
//
// A read never locks and writes nothing shared: it announces an epoch in
// its own cache line (ReadSection), looks the key up in the shared index
// and checks the item's own expiry and any flush. What changes the store
// lives in put.cc, reservation.cc, read_modify_write.cc, flush.cc,
// eviction.cc and compaction.cc; segment.cc and hash_index.cc hold what
// they share, and store_impl.h declares the state they all work on.
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

// ---------------------------------------------------------------- Store

Store::Store(const StoreConfig& config) : impl_(std::make_unique<StoreImpl>(config)) {}
Store::~Store() = default;
const StoreConfig& Store::config() const { return impl_->config; }
uint32_t Store::now_s() const { return impl_->now_s(); }
uint64_t Store::shared_item_bytes_max() const { return impl_->shared_item_bytes_max; }
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
  // Events only add up; the bytes still arriving never pass their bound.
  assert(hits >= 0);
  assert(misses >= 0);
  assert(out.upload_bytes <= out.upload_bytes_max);
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
  assert(!impl_.epoch.inside(state_->epoch));  // not from inside a read section
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
  // Not nested: the inner section's end would end the outer one's protection.
  assert(!t.impl_.epoch.inside(t.state_->epoch));
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
  // The value ends where its item does.
  assert(!out.contiguous_ || out.value_offset_ + out.value_size_ <= s->block_bytes);
  assert(out.contiguous_ || out.value_offset_ + out.value_size_ == s->large_bytes);
}

bool StoreThread::find(std::string_view key, ItemView& out, bool count) {
  assert(impl_.epoch.inside(state_->epoch));
  const uint64_t hash = hash_key(key);
  const uint64_t slot =
      impl_.index->find(hash, [&](uint64_t v) { return impl_.slot_matches(v, key, hash); });
  if (slot != 0) {
    Segment* s = impl_.segment_by_id(slot_segment(slot));
    // The read section keeps the segment of a slot it found from retiring.
    assert(s != nullptr);
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
  const size_t n = std::min(keys.size(), prefetch_keys_max);
  assert(n <= prefetch_keys_max);
  assert(n == keys.size() || keys.size() > prefetch_keys_max);
  uint64_t hashes[prefetch_keys_max];
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
  assert(bucket < impl_.index->bucket_count());
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

// ---------------------------------------------------------------- ItemView

std::string_view ItemView::value() const {
  assert(contiguous_);
  return {value_, value_size_};
}

uint64_t ItemView::copy_value(uint64_t offset, char* dst, uint64_t n) const {
  assert(segment_ != nullptr);
  assert(contiguous_ == (segment_->kind == SegmentKind::shared));
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
  assert(segment_ != nullptr);
  assert(offset < value_size_);
  if (segment_->kind == SegmentKind::shared) {
    return {segment_->block() + value_offset_ + offset, value_size_ - offset};
  }
  std::string_view span =
      StoreImpl::large_span(segment_, value_offset_ + offset, &cursor_block_, &cursor_base_);
  return span.substr(0, std::min<uint64_t>(span.size(), value_size_ - offset));
}

}  // namespace ringcache::store
