// Parser microbenchmarks: the three pure, incremental parsers (the binary
// protocol's FrameParser, the text protocol's TextParser, replication's
// StreamDecoder) over a stream of 1000 requests, 90% GETs (DELs for the
// decoder, which sees no GETs) of 16-byte keys and 10% PUTs of 100-byte
// values. The stream is fed whole (arg 0) or in pieces of a receive buffer
// (arg 1460 = one TCP segment; arg 7 splits nearly every field), so both the
// in-place path and the buffering path are timed. Counters: bytes and events.
//
//   ninja -C build-release benchmarks/parser_benchmark
//   build-release/benchmarks/parser_benchmark --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "server/protocol/binary/binary_parser.h"
#include "server/protocol/text/text_parser.h"
#include "server/replication/wire.h"
#include "server/replication/wire_decoder.h"

namespace {

constexpr size_t requests_per_stream = 1000;
constexpr size_t put_every = 10;
constexpr size_t value_bytes = 100;
constexpr uint64_t item_bytes_max = 1 << 20;

std::string key_of(size_t i) {
  char key[17];
  std::snprintf(key, sizeof key, "key:%012zu", i);
  return std::string(key, 16);
}

// requests_per_stream requests: a PUT of a value_bytes value every put_every,
// the request `append_other` writes (a GET, or a DEL) in between.
template <typename AppendPut, typename AppendOther>
std::string request_stream(AppendPut append_put, AppendOther append_other) {
  std::string out;
  const std::string value(value_bytes, 'v');
  for (size_t i = 0; i < requests_per_stream; ++i) {
    if (i % put_every == 0) {
      append_put(out, i, key_of(i), value);
    } else {
      append_other(out, i, key_of(i));
    }
  }
  return out;
}

void append_field(std::string& out, const std::string& bytes) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(bytes.size() >> shift));
  out += bytes;
}

std::string binary_stream() {
  using ringcache::protocol::Opcode;
  return request_stream(
      [](std::string& out, size_t, const std::string& key, const std::string& value) {
        out.push_back(static_cast<char>(Opcode::put));
        append_field(out, key);
        append_field(out, value);
      },
      [](std::string& out, size_t, const std::string& key) {
        out.push_back(static_cast<char>(Opcode::get));
        append_field(out, key);
      });
}

std::string text_stream() {
  return request_stream(
      [](std::string& out, size_t, const std::string& key, const std::string& value) {
        out += "set " + key + " 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n";
      },
      [](std::string& out, size_t, const std::string& key) { out += "get " + key + "\r\n"; });
}

std::string replication_stream() {
  namespace replication = ringcache::replication;
  return request_stream(
      [](std::string& out, size_t i, const std::string& key, const std::string& value) {
        replication::append_put(out, key, value, replication::PutMeta{i + 1, 0, 0});
      },
      [](std::string& out, size_t i, const std::string& key) { replication::append_del(out, key, i + 1); });
}

// Feeds `stream` to a fresh parser in pieces of `piece_bytes` (0: whole) and
// counts the events that are not need_more.
template <typename Parser, typename Limits, typename Kind>
void run(benchmark::State& state, const std::string& stream, const Limits& limits, Kind need_more) {
  const auto piece_bytes = static_cast<size_t>(state.range(0));
  size_t events = 0;
  for (auto _ : state) {
    Parser parser(limits);
    for (size_t at = 0; at < stream.size();) {
      const size_t size = piece_bytes == 0 ? stream.size() - at : std::min(piece_bytes, stream.size() - at);
      std::string_view piece(stream.data() + at, size);
      for (;;) {
        size_t consumed = 0;
        const auto event = parser.next(piece, consumed);
        benchmark::DoNotOptimize(event);
        piece.remove_prefix(consumed);
        if (event.kind == need_more) break;
        ++events;
      }
      at += size;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["events"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}

void BM_binary_parser(benchmark::State& state) {
  static const std::string stream = binary_stream();
  run<ringcache::protocol::FrameParser>(state, stream, ringcache::protocol::ParserLimits{item_bytes_max},
                                        ringcache::protocol::EventKind::need_more);
}

void BM_text_parser(benchmark::State& state) {
  static const std::string stream = text_stream();
  run<ringcache::protocol::text::TextParser>(state, stream, ringcache::protocol::text::ParserLimits{item_bytes_max},
                                             ringcache::protocol::text::EventKind::need_more);
}

void BM_stream_decoder(benchmark::State& state) {
  static const std::string stream = replication_stream();
  run<ringcache::replication::StreamDecoder>(state, stream, ringcache::replication::DecoderLimits{item_bytes_max},
                                             ringcache::replication::DecodeKind::need_more);
}

}  // namespace

BENCHMARK(BM_binary_parser)->Arg(0)->Arg(1460)->Arg(7);
BENCHMARK(BM_text_parser)->Arg(0)->Arg(1460)->Arg(7);
BENCHMARK(BM_stream_decoder)->Arg(0)->Arg(1460)->Arg(7);

BENCHMARK_MAIN();
