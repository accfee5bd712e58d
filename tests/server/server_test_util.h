// What the tests of the daemon's modules share: value bytes, the replies a
// connection would send, read out of its OutputQueue, a connection that
// never pauses, and the store of a processor test.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "server/io/output_queue.h"
#include "server/io/session.h"
#include "server/process/binary_stats.h"
#include "server/process/text_stats.h"
#include "server/process/write_path.h"
#include "store/store.h"

namespace ringcache::server::test {

// Deterministic bytes of every value, different for each seed.
inline std::string pattern(size_t size, unsigned seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// A store for one test: 64 MiB, room for every test's values.
inline store::StoreConfig test_store_config() {
  store::StoreConfig config;
  config.memory_limit_bytes = 64 * store::mib_bytes;
  return config;
}

// A connection that may always go on producing replies.
class NeverPause final : public PauseCheck {
 public:
  bool must_pause() const override { return false; }
};

// Pauses once `bytes_max` reply bytes wait to be sent, the way a connection
// stops at its write queue limit.
class PauseAtQueuedBytes final : public PauseCheck {
 public:
  PauseAtQueuedBytes(const OutputQueue& out, uint64_t bytes_max) : out_(out), bytes_max_(bytes_max) {}
  bool must_pause() const override { return out_.pending_bytes() >= bytes_max_; }

 private:
  const OutputQueue& out_;
  uint64_t bytes_max_;
};

// The store of a processor test: 64 MiB, on a clock the test moves.
inline store::StoreConfig processor_store_config(uint32_t (*clock_s)()) {
  store::StoreConfig config = test_store_config();
  config.clock_s = clock_s;
  return config;
}

// What a processor of the text port works with in a test: a real store on
// the test's clock, one worker's stats and a local write path.
struct TextPortStore {
  TextPortStore(uint32_t (*clock_s)(), uint64_t item_bytes_max)
      : store(processor_store_config(clock_s)),
        thread(store),
        binary_stats(1),
        text_stats(1),
        write(WritePath::make(thread, nullptr, 0)),
        stats_context{binary_stats, text_stats, item_bytes_max} {}

  store::Store store;
  store::StoreThread thread;
  StatsRegistry binary_stats;
  TextStatsRegistry text_stats;
  std::unique_ptr<WritePath> write;
  TextStatsContext stats_context;
};

// Parses `requests` as a connection's next input and hands every event to
// `handle`, as a session does. The input is scribbled over afterwards, so a
// view a processor kept past its event would show wrong bytes.
template <class Parser, class Handle>
void parse_each(Parser& parser, std::string_view requests, Handle handle) {
  std::string input(requests);
  std::string_view rest = input;
  for (;;) {
    size_t consumed = 0;
    const auto event = parser.next(rest, consumed);
    if (event.kind == decltype(event.kind)::need_more) break;
    handle(event);
    rest.remove_prefix(consumed);
  }
  std::fill(input.begin(), input.end(), '#');
}

// Everything queued, as the client would receive it; the queue is left empty.
inline std::string take_output(OutputQueue& out) {
  constexpr size_t iov_max = 16;
  std::string bytes;
  iovec iov[iov_max];
  while (!out.empty()) {
    const size_t count = out.gather(iov, iov_max);
    size_t total = 0;
    for (size_t i = 0; i < count; ++i) {
      bytes.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      total += iov[i].iov_len;
    }
    out.consume(total);
  }
  return bytes;
}

}  // namespace ringcache::server::test
