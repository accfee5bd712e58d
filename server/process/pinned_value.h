// A pinned store item as the reply queue's PinnedValue (io/output_queue.h),
// so that a large value is sent from the store's memory without io/ knowing
// the store. The pin is dropped with the queue's chunk, once sent.
#pragma once

#include <memory>
#include <string_view>
#include <utility>

#include "server/io/output_queue.h"
#include "server/io/value_copy.h"
#include "store/store.h"

namespace ringcache::server {

class PinnedItemValue final : public PinnedValue {
 public:
  explicit PinnedItemValue(store::PinnedItem item) : item_(std::move(item)) {}
  uint64_t size() const override { return item_.value_size(); }
  std::string_view chunk(uint64_t offset) const override { return item_.value_chunk(offset); }

 private:
  store::PinnedItem item_;
};

// The item's value pinned for OutputQueue::append_pinned (one allocation
// per value sent from the store, which is larger than copy_value_bytes_max, io/value_copy.h).
inline std::unique_ptr<PinnedValue> pin_value(const store::ItemView& item) {
  return std::make_unique<PinnedItemValue>(item.pin());
}

// The item's value as the next reply bytes: copied when small and
// contiguous, otherwise pinned and sent from the store's memory.
inline void append_value(OutputQueue& out, const store::ItemView& item) {
  const uint64_t size = item.value_size();
  if (item.contiguous() && size <= copy_value_bytes_max) {
    out.append(item.value());
  } else if (size > 0) {
    out.append_pinned(pin_value(item));
  }
}

}  // namespace ringcache::server
