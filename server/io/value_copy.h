// Which values are copied and which are sent from the store's memory, one
// threshold for the whole daemon: a value of at most copy_value_bytes_max
// bytes (stored contiguously) is copied, into a client's reply queue
// (process/) or into replication's handoff ring, log and resync chunks
// (replication/); a larger one is pinned in the store and sent from there
// (io/output_queue.h PinnedValue, replication's PieceQueue). Copying up to
// one reply block (output_block_bytes_max) costs less than a pin and an
// extra iovec; beyond it, the copy costs more than the pin.
//
// Header-only and dependency-free, so that replication/ can see it too.
#pragma once

#include <cstdint>

namespace ringcache::server {

inline constexpr uint64_t copy_value_bytes_max = 16 * 1024;

}  // namespace ringcache::server
