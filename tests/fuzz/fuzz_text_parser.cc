// libFuzzer target for TextParser.
//
// Input layout: byte 0 picks the ParserLimits, byte 1 seeds the split points,
// the rest is the byte stream of one connection. The stream is parsed once
// whole and once cut into pieces (fuzz_support.h: run_parser_target); both
// runs must give the same events and every call must keep the promises of
// text_parser.h (text_parser_harness.h). The oracle for the grammar is a
// round trip: every whole request is written back in canonical form and
// parsed again by a fresh parser, which must see the same request.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/protocol/text/text_parser.h"
#include "server/protocol/text/text_peek.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/protocol/text_parser_harness.h"

namespace {

using ringcache::protocol::text::Command;
using ringcache::protocol::text::EventKind;
using ringcache::protocol::text::ParserLimits;
using ringcache::protocol::text::test::MetaSeen;
using ringcache::protocol::text::test::Seen;

using fuzz_support::require;

// Small limits reach too_large, streaming and line_too_long with short
// inputs; the last choices keep the production shape.
constexpr uint64_t item_bytes_max_choices[] = {0, 1, 7, 64, 300, 4096, uint64_t{1} << 20, uint64_t{1} << 40};
constexpr uint32_t inline_bytes_max_choices[] = {0, 16, 256, 65536};
constexpr uint32_t line_bytes_max_choices[] = {16, 64, 300, 2048};

ParserLimits limits_from(uint8_t selector) {
  ParserLimits limits{item_bytes_max_choices[selector & 7]};
  limits.inline_value_bytes_max = inline_bytes_max_choices[(selector >> 3) & 3];
  limits.line_bytes_max = line_bytes_max_choices[(selector >> 5) & 3];
  limits.retrieval_line_bytes_max = limits.line_bytes_max * ((selector & 0x80) != 0 ? 32u : 2u);
  return limits;
}

const char* command_name(Command command) {
  switch (command) {
    case Command::get: return "get";
    case Command::gets: return "gets";
    case Command::gat: return "gat";
    case Command::gats: return "gats";
    case Command::set: return "set";
    case Command::add: return "add";
    case Command::replace: return "replace";
    case Command::append: return "append";
    case Command::prepend: return "prepend";
    case Command::cas: return "cas";
    case Command::del: return "delete";
    case Command::incr: return "incr";
    case Command::decr: return "decr";
    case Command::touch: return "touch";
    case Command::flush_all: return "flush_all";
    case Command::stats: return "stats";
    case Command::version: return "version";
    case Command::verbosity: return "verbosity";
    case Command::quit: return "quit";
    case Command::meta_get: return "mg";
    case Command::meta_set: return "ms";
    case Command::meta_delete: return "md";
    case Command::meta_arithmetic: return "ma";
    case Command::meta_noop: return "mn";
    case Command::none: break;
  }
  require(false, "a request has a command");
  return "";
}

std::string meta_flags_text(const MetaSeen& meta) {
  std::string out;
  for (const char letter : meta.order) {
    out += ' ';
    out += letter;
    switch (letter) {
      case 'O': out += meta.opaque; break;
      case 'T': out += std::to_string(meta.ttl); break;
      case 'N': out += std::to_string(meta.vivify_ttl); break;
      case 'R': out += std::to_string(meta.recache_ttl); break;
      case 'C': out += std::to_string(meta.compare_cas); break;
      case 'D': out += std::to_string(meta.delta); break;
      case 'J': out += std::to_string(meta.initial); break;
      case 'F': out += std::to_string(meta.client_flags); break;
      case 'M': out += meta.mode; break;
      default: break;
    }
  }
  return out;
}

// The request written back the way a well-behaved client would send it.
std::string canonical_text(const Seen& r) {
  const std::string name = command_name(r.command);
  const std::string noreply = r.noreply ? " noreply" : "";
  switch (r.command) {
    case Command::get: case Command::gets:
      return name + " " + r.keys + "\r\n";
    case Command::gat: case Command::gats:
      return name + " " + std::to_string(r.exptime) + " " + r.keys + "\r\n";
    case Command::set: case Command::add: case Command::replace: case Command::append: case Command::prepend:
    case Command::cas:
      return name + " " + r.key + " " + std::to_string(r.flags) + " " + std::to_string(r.exptime) + " " +
             std::to_string(r.value_size) + (r.command == Command::cas ? " " + std::to_string(r.number) : "") +
             noreply + "\r\n" + r.data + "\r\n";
    case Command::del:
      return name + " " + r.key + noreply + "\r\n";
    case Command::incr: case Command::decr:
      return name + " " + r.key + " " + std::to_string(r.number) + noreply + "\r\n";
    case Command::touch:
      return name + " " + r.key + " " + std::to_string(r.exptime) + noreply + "\r\n";
    case Command::flush_all:
      return name + " " + std::to_string(r.exptime) + noreply + "\r\n";
    case Command::verbosity:
      return name + " " + std::to_string(r.number) + noreply + "\r\n";
    case Command::stats:
      return name + " " + r.data + "\r\n";
    case Command::version: case Command::quit: case Command::meta_noop:
      return name + "\r\n";
    case Command::meta_get: case Command::meta_delete: case Command::meta_arithmetic:
      require(r.meta.has_value(), "a meta request has its flags");
      return name + " " + r.meta->key_token + meta_flags_text(*r.meta) + "\r\n";
    case Command::meta_set:
      require(r.meta.has_value(), "a meta request has its flags");
      return name + " " + r.meta->key_token + " " + std::to_string(r.value_size) + meta_flags_text(*r.meta) +
             "\r\n" + r.data + "\r\n";
    case Command::none: break;
  }
  require(false, "a request has a command");
  return "";
}

void check_round_trip(const ParserLimits& limits, const Seen& request) {
  // Generous line limits: the canonical form of a valid request may be longer.
  ParserLimits relaxed = limits;
  relaxed.line_bytes_max = 1 << 16;
  relaxed.retrieval_line_bytes_max = 1 << 17;
  ringcache::test::CheckedParser again(relaxed);
  fuzz_support::require_kept(again.feed(canonical_text(request)));
  require(again.events().size() == 1, "a canonical request is one event");
  require(again.events().front() == request, "a canonical request parses to the same request");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto run =
      fuzz_support::run_parser_target(data, size, &limits_from, &ringcache::protocol::text::peek_text_keys);
  if (!run) return 0;
  for (const Seen& event : run->events) {
    if (event.kind == EventKind::request) check_round_trip(run->limits, event);
  }
  return 0;
}
