// Values written in pieces: reserve(key, size), append() as the bytes
// arrive, commit() (store/store.h, Reservation). The daemon copies each
// received chunk of a large value straight into the store this way.
//
// An item that fits a shared segment is placed at reserve(); a larger one
// becomes a large segment whose blocks are claimed one at a time as its
// bytes arrive (the last one cut to what is left), so an announced size
// alone claims at most one block. Until it is published, aborted, dropped
// or fails, what a reservation holds cannot be evicted, so it is counted
// against StoreConfig::upload_bytes_max (charge_upload): per block
// claimed, never per append, in one shared atomic that is touched once
// per block.
#include "store/put.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

#include "store/bytes.h"

namespace ringcache::store {

Reservation StoreThread::reserve(std::string_view key, uint64_t value_size, const ItemMeta& meta,
                                 const PutOptions& options) {
  const ItemFields f{key.size(), value_size, meta.flags, meta.expires_at, meta.version, false};
  return reserve_fields(key, f, options);
}

Reservation StoreThread::reserve_fields(std::string_view key, const ItemFields& fields,
                                        const PutOptions& options) {
  // It may evict, which waits for readers.
  assert(!impl_.epoch.inside(state_->epoch));
  assert(fields.key_size == key.size());
  Reservation r;
  r.thread_ = this;
  // Lengths come from the network: one the item header cannot hold is
  // refused, never written.
  if (fields.key_size > key_bytes_max || fields.value_size > value_bytes_max) {
    r.status_ = PutStatus::no_memory;
    return r;
  }
  r.options_ = options;
  r.hash_ = hash_key(key);
  r.value_size_ = fields.value_size;
  r.expires_at_ = fields.expires_at;
  const uint8_t ttl_class = ttl_class_for(fields.expires_at, impl_.now_s());
  const uint64_t upper =
      item_header_bytes(fields, ExpiryCode::absolute32, impl_.config.versioned) + key.size() + fields.value_size;
  if (upper <= impl_.shared_item_bytes_max) {
    reserve_shared(key, fields, ttl_class, upper, r);
  } else {
    reserve_large(key, fields, ttl_class, r);
  }
  assert(!(r.status_ == PutStatus::stored && r.segment_ == nullptr));
  assert(!(r.status_ == PutStatus::stored && r.upload_charged_ == 0));
  return r;
}

// An item that fits a shared segment is placed whole at once; `upper_bytes`
// is its size at its widest header, what it is charged.
void StoreThread::reserve_shared(std::string_view key, ItemFields f, uint8_t ttl_class, uint64_t upper_bytes,
                                 Reservation& r) {
  assert(upper_bytes <= impl_.shared_item_bytes_max);
  assert(r.segment_ == nullptr);
  r.status_ = PutStatus::no_memory;
  // Charged at its widest header: the exact one depends on the segment.
  if (!impl_.charge_upload(upper_bytes)) {
    r.upload_full_ = true;
    return;
  }
  const Placement p = place_shared(impl_, state_, f, ttl_class);
  if (p.segment == nullptr) {
    impl_.release_upload(upper_bytes);
    return;
  }
  r.upload_charged_ = upper_bytes;
  char* item = p.segment->block() + p.offset;
  copy_bytes(item + p.header_bytes, key.data(), key.size());
  r.segment_ = p.segment;
  r.offset_ = p.offset;
  r.key_ = std::string_view(item + p.header_bytes, key.size());
  r.write_ = item + p.header_bytes + key.size();
  r.write_end_ = r.write_ + r.value_size_;
  r.item_bytes_ = p.header_bytes + key.size() + r.value_size_;
  // Charged at least what it holds: the widest header, never less.
  assert(r.item_bytes_ <= r.upload_charged_);
  assert(r.item_bytes_ <= impl_.shared_item_bytes_max);
  r.status_ = PutStatus::stored;
}

// A larger item becomes a large segment of its own; only its first block is
// claimed (and charged) here, the others as append() reaches them.
void StoreThread::reserve_large(std::string_view key, const ItemFields& f, uint8_t ttl_class, Reservation& r) {
  assert(r.segment_ == nullptr);
  assert(!(r.value_size_ != f.value_size));
  const uint64_t value_size = f.value_size;
  r.status_ = PutStatus::no_memory;
  // A large segment's bases are its one item's own fields, so the header
  // size is known before anything is allocated.
  const SegmentBases bases{f.expires_at, f.version};
  const ExpiryCode code = expiry_code_for(f, bases.expiry);
  const uint32_t header = item_header_bytes(f, code, impl_.config.versioned, bases.version);
  r.item_bytes_ = header + key.size() + value_size;
  // The first piece: a whole block, or exactly what the item needs when it
  // is smaller than a block.
  const uint64_t first_piece = std::min<uint64_t>(segment_header_bytes + r.item_bytes_, impl_.block_bytes);
  if (!impl_.charge_upload(first_piece)) {
    r.upload_full_ = true;
    return;
  }
  Segment* s = impl_.new_segment(state_, SegmentKind::large, ttl_class,
                                 first_piece < impl_.block_bytes ? first_piece : 0);
  if (s == nullptr) {
    impl_.release_upload(first_piece);
    return;
  }
  r.upload_charged_ = first_piece;
  assert(s->state.load(std::memory_order_relaxed) == SegmentState::filling);
  assert(s->blocks == 1);
  impl_.pin(s);
  s->large_hash = r.hash_;
  s->expiry_base.store(bases.expiry, std::memory_order_relaxed);
  s->version_base.store(bases.version, std::memory_order_relaxed);
  s->large_bytes = r.item_bytes_;
  raise_expires_at_max(s, f.expires_at);
  char* item = s->block() + segment_header_bytes;
  encode_item_header(item, f, code, bases, impl_.config.versioned);
  r.segment_ = s;
  r.offset_ = segment_header_bytes;
  r.block_ = s->block();
  r.write_ = item + header;
  r.write_end_ = s->block() + impl_.large_piece_bytes(s, 0);
  assert(impl_.large_piece_bytes(s, 0) == first_piece);  // charged what the piece is
  r.status_ = PutStatus::stored;
  // The key goes through the same path as the value; written_ counts value
  // bytes only, so write the key first, then reset it.
  const char* key_in_block = r.write_;
  const bool key_fits = key.size() <= static_cast<uint64_t>(r.write_end_ - r.write_);
  r.value_size_ = key.size() + value_size;
  if (!r.append(key)) return;
  r.value_size_ = value_size;
  r.written_ = 0;
  if (key_fits) {
    r.key_ = std::string_view(key_in_block, key.size());
  } else {
    r.key_copy_.assign(key);
    r.key_ = r.key_copy_;
  }
}

bool StoreImpl::charge_upload(uint64_t bytes) {
  assert(bytes > 0);
  uint64_t held = upload_bytes.load(std::memory_order_relaxed);
  do {
    if (bytes > upload_bytes_max || held > upload_bytes_max - bytes) {
      upload_refusals.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!upload_bytes.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
  assert(held + bytes <= upload_bytes_max);
  return true;
}

void StoreImpl::release_upload(uint64_t bytes) {
  [[maybe_unused]] const uint64_t held = upload_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  assert(held >= bytes && "released more upload bytes than were charged");
}

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
    upload_full_ = std::exchange(o.upload_full_, false);
  }
  // The moved-from reservation holds nothing.
  assert(o.segment_ == nullptr);
  assert(o.upload_charged_ == 0);
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
#ifndef NDEBUG
  // The charge is what the reservation claimed: every piece of a large
  // item, or the widest item of one in a shared segment.
  if (s->kind == SegmentKind::large) {
    uint64_t claimed = 0;
    for (uint32_t piece = 0; piece < s->blocks; ++piece) claimed += impl.large_piece_bytes(s, piece);
    assert(upload_charged_ == claimed);
  } else {
    assert(upload_charged_ >= item_bytes_);
  }
#endif
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
  while (!bytes.empty()) {
    if (write_ == write_end_) {
      const Claim claim = claim_piece();
      if (claim == Claim::upload_full) {
        upload_full_ = true;
        status_ = PutStatus::no_memory;
        release();
      }
      if (claim != Claim::claimed) return false;
    }
    const size_t n = std::min<size_t>(bytes.size(), static_cast<size_t>(write_end_ - write_));
    std::memcpy(write_, bytes.data(), n);
    write_ += n;
    written_ += n;
    bytes.remove_prefix(n);
  }
  assert(write_ <= write_end_);
  assert(written_ <= value_size_);
  return true;
}

Reservation::Claim Reservation::claim_piece() {
  assert(ok());
  assert(write_ == write_end_ && remaining() > 0);
  // Only large items reach the end of a block with bytes to go.
  assert(segment_->kind == SegmentKind::large);
  StoreImpl& impl = thread_->impl_;
  // Whole blocks, but the last piece is cut to what is left.
  const uint64_t piece = std::min<uint64_t>(impl.block_bytes, chain_header_bytes + remaining());
  assert(piece > chain_header_bytes);
  if (!impl.charge_upload(piece)) return Claim::upload_full;
  char* next = impl.alloc_piece(thread_->state_, piece);
  if (next == nullptr) {
    impl.release_upload(piece);
    status_ = PutStatus::no_memory;
    release();
    return Claim::failed;
  }
  upload_charged_ += piece;
  std::memset(next, 0, chain_header_bytes);
  if (block_ == segment_->block()) {
    segment_->chain_next = next;
  } else {
    std::memcpy(block_, &next, sizeof(next));
  }
  ++segment_->blocks;
  block_ = next;
  write_ = next + chain_header_bytes;
  write_end_ = next + piece;
  assert(room() > 0);
  return Claim::claimed;
}

PutStatus Reservation::commit() {
  if (thread_ == nullptr) return status_;
  if (status_ != PutStatus::stored || remaining() != 0) {
    if (status_ == PutStatus::stored) status_ = PutStatus::aborted;
    release();
    return status_;
  }
  assert(written_ == value_size_);
  // A large item is published once, from filling.
  assert(segment_->kind == SegmentKind::shared || segment_->state.load() == SegmentState::filling);
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
                               h.fields.tombstone ? 0 : h.fields.key_size + h.fields.value_size,
                               h.fields.tombstone,
                               h.fields.version,
                               options_};
  status_ = publish(impl, st, request);
  release();
  return status_;
}

}  // namespace ringcache::store
