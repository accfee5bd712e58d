// What values still arriving (uploads) may cost the daemon (issue 11).
//
// A streamed value (a binary PUT above 64 KiB, a text data block, a peer's
// replication frame) is written straight into a store Reservation as its
// bytes arrive, and what an unpublished reservation holds cannot be
// evicted. Two bounds keep clients that stall in the middle of one from
// starving everyone else:
//
// - memory: the store refuses a claim that would take the bytes held by
//   all unpublished reservations past StoreConfig::upload_bytes_max
//   (store/store.h); the daemon sets it to upload_bytes_max_for() below.
//   The refused value is still read and dropped, and answered EUNK /
//   SERVER_ERROR out of memory storing object.
// - time: a connection in the middle of a request that has neither
//   received nor sent a byte for upload_idle_ms_max (--upload-timeout,
//   default upload_idle_ms_default) is closed and its reservation dropped
//   (EventLoop, event_loop.h).
#pragma once

#include <cstdint>

namespace ringcache::server {

inline constexpr uint64_t upload_idle_ms_default = 30 * 1000;
// --upload-timeout accepts whole seconds up to a day.
inline constexpr uint64_t upload_idle_s_max = 24 * 60 * 60;

// The share of -m that values still arriving may hold:
// - a quarter of it: many concurrent large PUTs proceed, while three
//   quarters stay evictable for everything else;
// - but at least one item of the largest accepted size (--max-item) plus
//   two segments (its chain and segment headers and its key), so a client
//   that sends the largest value the daemon accepts is not refused while
//   nothing else is in flight;
// - and never more than three quarters of it, so small writes always have
//   a quarter of the memory to evict into, whatever --max-item says.
uint64_t upload_bytes_max_for(uint64_t memory_bytes, uint64_t max_item_bytes, uint64_t segment_bytes);

}  // namespace ringcache::server
