// The 64-bit user_data of every io_uring submission: which operation it was
// and which connection slot (of which generation) it belongs to. Every
// completion is decoded here once and dispatched by one switch
// (EventLoop::dispatch).
//
//    63        56 55                      32 31                               0
//   +------------+--------------------------+----------------------------------+
//   |  op (8)    |     generation (24)      |        slot / argument (32)      |
//   +------------+--------------------------+----------------------------------+
//
// A connection slot is reused after its connection closes, with the
// generation incremented; a late completion whose generation differs from the
// slot's current one belongs to a previous connection and must not touch the
// new one. Operations that are not about a connection use the slot field for
// their argument (listener index, file descriptor) and generation 0.
// The value 0 is never produced (Op starts at 1): a zero user_data is a bug.
#pragma once

#include <cstdint>

namespace ringcache::server {

enum class Op : uint8_t {
  accept = 1,        // multishot accept; slot = listener index
  accept_backoff,    // timeout after EMFILE/ENFILE/ENOMEM; slot = listener index
  handoff_sent,      // msg_ring to another worker completed; slot = the connection fd,
                     // generation = its port's ListenerKind
  handoff_received,  // a connection handed over by the accepting worker; res = the fd,
                     // slot = its port's ListenerKind
  recv,              // multishot recv into the provided-buffer ring
  send,              // sendmsg of a connection's output queue
  cancel,            // an async cancel we issued; its result is only logged
  stop_poll,         // the shutdown eventfd became readable
  expire_timer,      // the once-a-second housekeeping tick (store expiry, idle uploads)
  op_end,            // one past the last valid op
};

inline constexpr unsigned user_data_slot_bits = 32;
inline constexpr unsigned user_data_generation_bits = 24;
inline constexpr unsigned user_data_op_bits = 8;
inline constexpr uint64_t user_data_slot_mask = (1ull << user_data_slot_bits) - 1;
inline constexpr uint32_t user_data_generation_mask = (1u << user_data_generation_bits) - 1;

static_assert(user_data_slot_bits + user_data_generation_bits + user_data_op_bits == 64);
static_assert(static_cast<unsigned>(Op::op_end) <= (1u << user_data_op_bits));

struct UserData {
  Op op = Op::op_end;
  uint32_t generation = 0;  // only the low 24 bits are kept
  uint32_t slot = 0;

  friend bool operator==(const UserData&, const UserData&) = default;
};

constexpr uint64_t pack_user_data(const UserData& data) {
  return (static_cast<uint64_t>(data.op) << (user_data_slot_bits + user_data_generation_bits)) |
         (static_cast<uint64_t>(data.generation & user_data_generation_mask) << user_data_slot_bits) |
         data.slot;
}

constexpr UserData unpack_user_data(uint64_t value) {
  UserData data;
  data.op = static_cast<Op>(value >> (user_data_slot_bits + user_data_generation_bits));
  data.generation = static_cast<uint32_t>(value >> user_data_slot_bits) & user_data_generation_mask;
  data.slot = static_cast<uint32_t>(value & user_data_slot_mask);
  return data;
}

constexpr bool is_valid_op(Op op) {
  return static_cast<uint8_t>(op) >= static_cast<uint8_t>(Op::accept) &&
         static_cast<uint8_t>(op) < static_cast<uint8_t>(Op::op_end);
}

// The next generation of a slot, wrapping within the 24 bits kept.
constexpr uint32_t next_generation(uint32_t generation) {
  return (generation + 1) & user_data_generation_mask;
}

static_assert(unpack_user_data(pack_user_data({Op::send, 0xABCDEF, 0xFFFFFFFF})) ==
              UserData{Op::send, 0xABCDEF, 0xFFFFFFFF});
static_assert(pack_user_data({Op::accept, 0, 0}) != 0);

}  // namespace ringcache::server
