// InputBudget (input_budget.h): charges never exceed the limit, even when
// several worker threads charge at once, and releases make room again.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "server/io/input_budget.h"

using namespace ringcache::server;

TEST_CASE("charges up to the limit and no further") {
  InputBudget budget(1000);
  CHECK(budget.try_charge(600));
  CHECK(budget.try_charge(400));
  CHECK(budget.used_bytes() == 1000);
  CHECK_FALSE(budget.try_charge(1));
  budget.release(300);
  CHECK_FALSE(budget.try_charge(301));
  CHECK(budget.used_bytes() == 700);
  CHECK(budget.try_charge(300));
  budget.release(1000);
  CHECK(budget.used_bytes() == 0);
  CHECK_FALSE(budget.try_charge(1001));
}

TEST_CASE("the limit grows with -m and always leaves room for the base") {
  CHECK(input_budget_bytes(64ull << 20) == (16ull << 20) + input_budget_base_bytes);
  CHECK(input_budget_bytes(4ull << 20) == (1ull << 20) + input_budget_base_bytes);
}

TEST_CASE("concurrent charges never overshoot") {
  constexpr uint64_t limit = 100000;
  InputBudget budget(limit);
  std::vector<std::thread> threads;
  std::vector<uint64_t> granted(4, 0);
  for (size_t t = 0; t < granted.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        if (budget.try_charge(7)) granted[t] += 7;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  uint64_t total = 0;
  for (const uint64_t g : granted) total += g;
  CHECK(total == budget.used_bytes());
  CHECK(total <= limit);
  CHECK(total > limit - 7);
}
