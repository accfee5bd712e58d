// libFuzzer target for the replication stream decoder (wire_decoder.h):
// anyone who can reach a node's binary port can open a replication
// connection and send arbitrary bytes after a valid hello.
//
// The first input byte picks a chunk size; the rest is the stream, fed whole
// and in chunks of that size (fuzz_support.h), and the two runs must give the
// same events. The decoder's contract is checked on every call
// (wire_harness.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/replication/wire_decoder.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/replication/wire_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t header_bytes = 1;  // chunk size
  std::string_view stream;
  if (!fuzz_support::split_input(data, size, header_bytes, stream)) return 0;
  ringcache::replication::DecoderLimits limits;
  limits.item_bytes_max = 4096;
  limits.inline_value_bytes_max = 512;
  (void)fuzz_support::events_whole_and_in_pieces(limits, stream,
                                                 fuzz_support::FixedSizes(fuzz_support::chunk_bytes_from(data[0])));
  return 0;
}
