// ConnectionTable: a worker's connections by slot number. Slots are reused;
// each reuse bumps the slot's generation so that a completion addressed to
// the previous occupant (user_data.h) finds nothing.
#pragma once

#include <cassert>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "server/io/connection.h"
#include "server/io/user_data.h"

namespace ringcache::server {

class ConnectionTable {
 public:
  // May throw std::bad_alloc, leaving the table unchanged.
  Connection& add(int fd, std::unique_ptr<Session> session) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      assert(slots_.size() < user_data_slot_mask);
      free_.reserve(slots_.size() + 1);  // so that remove() never allocates
      slots_.emplace_back();
      slot = static_cast<uint32_t>(slots_.size() - 1);
    }
    Slot& entry = slots_[slot];
    try {
      entry.connection = std::make_unique<Connection>(fd, slot, entry.generation, std::move(session));
    } catch (...) {
      free_.push_back(slot);
      throw;
    }
    ++live_;
    return *entry.connection;
  }

  Connection* find(uint32_t slot, uint32_t generation) {
    if (slot >= slots_.size()) return nullptr;
    Slot& entry = slots_[slot];
    if (!entry.connection || entry.generation != generation) return nullptr;
    return entry.connection.get();
  }

  void remove(uint32_t slot) {
    assert(slot < slots_.size() && slots_[slot].connection);
    Slot& entry = slots_[slot];
    entry.connection.reset();
    entry.generation = next_generation(entry.generation);
    free_.push_back(slot);
    --live_;
  }

  // Visits every live connection; visit must not add or remove.
  template <class Visit>
  void for_each(Visit&& visit) {
    for (Slot& entry : slots_) {
      if (entry.connection) visit(*entry.connection);
    }
  }

  size_t live() const { return live_; }

 private:
  struct Slot {
    std::unique_ptr<Connection> connection;
    uint32_t generation = 0;
  };

  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  size_t live_ = 0;
};

}  // namespace ringcache::server
