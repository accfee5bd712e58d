// The user_data layout (user_data.h): round trips, field isolation at the
// extremes, and generation wrap-around.
#include <doctest/doctest.h>

#include <set>

#include "server/io/user_data.h"

using namespace ringcache::server;

TEST_CASE("every op round-trips with extreme slots and generations") {
  for (uint8_t raw = static_cast<uint8_t>(Op::accept); raw < static_cast<uint8_t>(Op::op_end); ++raw) {
    const Op op = static_cast<Op>(raw);
    CHECK(is_valid_op(op));
    for (const uint32_t generation : {0u, 1u, 0x7FFFFFu, user_data_generation_mask}) {
      for (const uint32_t slot : {0u, 1u, 0x12345678u, 0xFFFFFFFFu}) {
        const UserData in{op, generation, slot};
        const uint64_t packed = pack_user_data(in);
        CHECK(packed != 0);
        CHECK(unpack_user_data(packed) == in);
      }
    }
  }
}

TEST_CASE("generation keeps 24 bits and never spills into op or slot") {
  const UserData in{Op::recv, 0xFFFFFFFFu, 7};
  const UserData out = unpack_user_data(pack_user_data(in));
  CHECK(out.op == Op::recv);
  CHECK(out.slot == 7);
  CHECK(out.generation == user_data_generation_mask);
}

TEST_CASE("next_generation wraps within the field") {
  CHECK(next_generation(0) == 1);
  CHECK(next_generation(user_data_generation_mask) == 0);
}

TEST_CASE("a reused slot with a new generation is a different user_data") {
  std::set<uint64_t> seen;
  uint32_t generation = 0;
  for (int i = 0; i < 1000; ++i) {
    CHECK(seen.insert(pack_user_data({Op::send, generation, 42})).second);
    generation = next_generation(generation);
  }
}

TEST_CASE("invalid ops are recognised") {
  CHECK_FALSE(is_valid_op(static_cast<Op>(0)));
  CHECK_FALSE(is_valid_op(Op::op_end));
  CHECK_FALSE(is_valid_op(static_cast<Op>(255)));
  CHECK(unpack_user_data(0).op == static_cast<Op>(0));
}
