// The store under a real RLIMIT_AS: a child process limits its address space,
// writes four times the limit, and must survive with the newest items
// readable. Not run under sanitizers (they cannot run under RLIMIT_AS).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <cstring>
#include <string>
#include <string_view>

#include "store/allocator.h"
#include "store/store.h"

using namespace ringcache::store;

namespace {

uint64_t address_space_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0;
  statm >> pages;
  return pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Fills `value` (its size fixed) with bytes that identify item i. Nothing
// here allocates: after setrlimit the store must be the only allocator user,
// so that a failure is the store's to handle.
void fill_value(std::string& value, uint64_t i) {
  std::memset(value.data(), 'a' + static_cast<int>(i % 26), value.size());
  std::snprintf(value.data(), 24, "%020llu", static_cast<unsigned long long>(i));
}

std::string_view key_for(char (&buf)[32], const char* prefix, uint64_t i) {
  const int n = std::snprintf(buf, sizeof(buf), "%s%llu", prefix, static_cast<unsigned long long>(i));
  return {buf, static_cast<size_t>(n)};
}

int child() {
  constexpr uint64_t limit_bytes = 64 * mib_bytes;
  constexpr size_t value_bytes = 4000;
  StoreConfig c;
  c.memory_limit_bytes = 16ull << 30;  // only RLIMIT_AS bounds this store
  c.index_buckets = 1 << 14;
  Store store(c);
  StoreThread t(store);
  std::string value(value_bytes, '\0');
  std::string expected(value_bytes, '\0');
  std::string large(8 << 20, '\0');
  char key[32];
  const uint64_t base = address_space_bytes();
  rlimit lim{base + limit_bytes, base + limit_bytes};
  if (setrlimit(RLIMIT_AS, &lim) != 0) {
    std::perror("setrlimit");
    return 10;
  }
  const uint64_t items = 4 * limit_bytes / value_bytes;
  for (uint64_t i = 0; i < items; ++i) {
    fill_value(value, i);
    const PutStatus st = t.put(key_for(key, "item:", i), value);
    if (st != PutStatus::stored) {
      std::fprintf(stderr, "put %llu failed: %d\n", static_cast<unsigned long long>(i), static_cast<int>(st));
      return 11;
    }
  }
  for (uint64_t i = items - 100; i < items; ++i) {
    fill_value(expected, i);
    bool ok = false;
    t.get(key_for(key, "item:", i), [&](const ItemView& v) { ok = v.value() == expected; });
    if (!ok) {
      std::fprintf(stderr, "recent item %llu missing or wrong\n", static_cast<unsigned long long>(i));
      return 13;
    }
  }
  // Then large values: chained blocks under the same limit.
  for (uint64_t i = 0; i < 4; ++i) {
    fill_value(large, i);
    if (t.put(key_for(key, "large:", i), large) != PutStatus::stored) return 12;
  }
  bool large_ok = false;
  t.get(key_for(key, "large:", 3), [&](const ItemView& v) {
    fill_value(large, 3);
    std::string_view want(large);
    large_ok = v.value_size() == want.size();
    for (uint64_t off = 0; large_ok && off < want.size(); off += 65536) {
      char chunk[65536];
      const uint64_t n = v.copy_value(off, chunk, sizeof(chunk));
      large_ok = std::string_view(chunk, n) == want.substr(off, n);
    }
  });
  if (!large_ok) return 16;
  const StoreStats s = store.stats();
  std::fprintf(stderr, "allocator=%s alloc_failures=%llu evictions=%llu blocks=%llu MiB keys=%llu\n",
               allocator_name(), static_cast<unsigned long long>(s.alloc_failures),
               static_cast<unsigned long long>(s.evictions),
               static_cast<unsigned long long>(s.blocks_bytes >> 20),
               static_cast<unsigned long long>(s.keys));
  if (s.alloc_failures == 0 || s.evictions == 0) return 14;  // the limit must have bitten
  // Held memory follows the limit, not the 4x written (address space that
  // mimalloc reserved before the limit was set also counts as room).
  if (s.blocks_bytes > 2 * limit_bytes) return 15;
  // A failed operator new throws instead of aborting (Debian's mimalloc
  // aborts unless the program defines its own operator new).
  try {
    // Stored through a volatile so the compiler cannot elide the pair.
    static char* volatile sink;
    sink = new char[1ull << 30];
    delete[] sink;
    return 17;  // 1 GiB cannot fit under this limit
  } catch (const std::bad_alloc&) {
  }
  return 0;
}

}  // namespace

int main() {
  const pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) _exit(child());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 1;
  if (WIFSIGNALED(status)) {
    std::fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
    return 1;
  }
  std::fprintf(stderr, "child exit %d\n", WEXITSTATUS(status));
  return WEXITSTATUS(status) == 0 ? 0 : 1;
}
