// STATS text (docs/binary_protocol.md): field order, format, and that per-thread counters
// add up.
#include <doctest/doctest.h>

#include <cctype>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/process/binary_stats.h"
#include "server/process/text_stats.h"

using namespace ringcache;
using namespace ringcache::server;

namespace {

std::vector<std::string> split_fields(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string field;
  while (in >> field) out.push_back(field);
  return out;
}

std::map<std::string, std::string> as_map(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const std::string& field : split_fields(text)) {
    const size_t eq = field.find('=');
    REQUIRE(eq != std::string::npos);
    out[field.substr(0, eq)] = field.substr(eq + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("the first fourteen fields are the ones docs/binary_protocol.md names, in order") {
  StatsRegistry registry(2);
  const std::string text = format_stats(registry.collect(store::StoreStats{}, 1024));
  const std::vector<std::string> fields = split_fields(text);
  const std::vector<std::string> required = {"PUTS",     "DELS",   "GETS",      "KEYS",  "STATS",
                                             "INVALID",  "HITS",   "MISSES",    "EVICTIONS",
                                             "BYTES",    "LIMIT",  "CONNECTIONS", "THREADS", "UPTIME"};
  REQUIRE(fields.size() > required.size());
  for (size_t i = 0; i < required.size(); ++i) {
    CHECK(fields[i].substr(0, fields[i].find('=')) == required[i]);
  }
}

TEST_CASE("ASCII NAME=value pairs, single spaces, no trailing newline or NUL") {
  StatsRegistry registry(3);
  const std::string text = format_stats(registry.collect(store::StoreStats{}, 1));
  REQUIRE_FALSE(text.empty());
  CHECK(text.front() != ' ');
  CHECK(text.back() != ' ');
  CHECK(text.back() != '\n');
  CHECK(text.find('\0') == std::string::npos);
  CHECK(text.find("  ") == std::string::npos);
  for (const char c : text) CHECK((c >= ' ' && c <= '~'));
  for (const std::string& field : split_fields(text)) {
    const size_t eq = field.find('=');
    REQUIRE(eq != std::string::npos);
    CHECK(eq > 0);
    CHECK(eq + 1 < field.size());
  }
}

TEST_CASE("counters of every thread are summed; per-thread lists keep their order") {
  StatsRegistry registry(3);
  registry.thread(0).puts.add(5);
  registry.thread(1).puts.add(7);
  registry.thread(2).gets.add(4);
  registry.thread(2).hits.add(3);
  registry.thread(2).misses.add(1);
  registry.thread(1).invalid.add(2);
  registry.thread(0).connections_open.add(12);
  registry.thread(1).connections_open.add(13);
  registry.thread(2).connections_open.add(2);
  registry.thread(2).connections_open.sub(1);
  registry.thread(0).connections_accepted.add(20);
  store::StoreStats store_stats;
  store_stats.keys = 9;
  store_stats.live_bytes = 1234;
  store_stats.evictions = 6;
  store_stats.memory_limit_bytes = 64 * store::mib_bytes;
  const auto fields = as_map(format_stats(registry.collect(store_stats, 777)));
  const std::map<std::string, std::string> expected = {
      {"PUTS", "12"}, {"GETS", "4"}, {"HITS", "3"}, {"MISSES", "1"}, {"INVALID", "2"},
      {"KEYS", "9"}, {"BYTES", "1234"}, {"EVICTIONS", "6"}, {"LIMIT", std::to_string(64 * store::mib_bytes)},
      {"CONNECTIONS", "26"}, {"THREADS", "3"}, {"MAX_ITEM", "777"},
      {"THREAD_CONNECTIONS", "12,13,1"}, {"THREAD_ACCEPTED", "20,0,0"}};
  for (const auto& field : expected) {
    const std::string& name = field.first;
    CAPTURE(name);
    REQUIRE(fields.contains(name));
    CHECK(fields.at(name) == field.second);
  }
}

// Counters behind the fields both ports show (visit_shared_fields).
struct SharedFields {
  StatsRegistry registry{2};
  store::StoreStats store_stats;

  SharedFields() {
    registry.thread(0).upload_aborts.add(3);
    registry.thread(1).upload_aborts.add(4);
    registry.thread(0).auth_cmds.add(5);
    registry.thread(1).auth_cmds.add(1);
    registry.thread(1).auth_errors.add(2);
    registry.thread(0).tls_connections_tls12.add(1);
    registry.thread(1).tls_connections_tls13.add(2);
    registry.thread(0).tls_handshakes_tls12.add(3);
    registry.thread(1).tls_handshakes_tls13.add(4);
    registry.thread(0).tls_handshake_errors.add(5);
    registry.thread(1).tls_handshake_errors.add(1);
    registry.thread(1).tls_handshake_timeouts.add(1);
    store_stats.upload_bytes = 5 * store::mib_bytes;
    store_stats.upload_bytes_max = 34 * store::mib_bytes;
    store_stats.upload_refusals = 116;
    store_stats.merged_segments = 8;
    store_stats.merged_items = 900;
  }

  // Name and value of each, as the binary STATS writes them.
  static std::vector<std::pair<std::string, std::string>> expected() {
    return {{"UPLOAD_BYTES", std::to_string(5 * store::mib_bytes)},
            {"UPLOAD_BYTES_MAX", std::to_string(34 * store::mib_bytes)},
            {"UPLOAD_REFUSED", "116"},
            {"UPLOAD_ABORTS", "7"},
            {"AUTH_CMDS", "6"},
            {"AUTH_ERRORS", "2"},
            {"TLS_CONNECTIONS_TLS12", "1"},
            {"TLS_CONNECTIONS_TLS13", "2"},
            {"TLS_HANDSHAKES_TLS12", "3"},
            {"TLS_HANDSHAKES_TLS13", "4"},
            {"TLS_HANDSHAKE_ERRORS", "6"},
            {"TLS_HANDSHAKE_TIMEOUTS", "1"},
            {"MERGED_SEGMENTS", "8"},
            {"MERGED_ITEMS", "900"}};
  }
};

TEST_CASE("the upload, auth, TLS and compaction fields come last, in order") {
  const SharedFields shared;
  const std::vector<std::string> fields = split_fields(format_stats(shared.registry.collect(shared.store_stats, 1)));
  const auto expected = SharedFields::expected();
  REQUIRE(fields.size() > expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(fields[fields.size() - expected.size() + i] == expected[i].first + "=" + expected[i].second);
  }
  // What came before them is unchanged: THREAD_ACCEPTED was the last field.
  CHECK(fields[fields.size() - expected.size() - 1].rfind("THREAD_ACCEPTED=", 0) == 0);
}

TEST_CASE("the text stats show the same fields after evicted_segments, lower case, TLS_ as ssl_") {
  const SharedFields shared;
  const TextStatsRegistry text(2);
  const std::string stats = format_text_stats(TextStatsContext{shared.registry, text, 1}, shared.store_stats, 0);
  std::string expected_lines;
  for (const auto& [name, value] : SharedFields::expected()) {
    std::string lower = name.rfind("TLS_", 0) == 0 ? "ssl_" + name.substr(4) : name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    expected_lines += "STAT " + lower + " " + value + "\r\n";
  }
  const size_t at = stats.find("STAT evicted_segments 0\r\n");
  REQUIRE(at != std::string::npos);
  CHECK(stats.substr(at + std::string_view("STAT evicted_segments 0\r\n").size()) == expected_lines + "END\r\n");
  CHECK(stats.find("STAT ssl_handshake_errors 6\r\nSTAT ssl_handshake_timeouts 1\r\n") != std::string::npos);
}

TEST_CASE("thread counters sit on separate cache lines") {
  static_assert(alignof(ThreadCounters) == cache_line_bytes);
  StatsRegistry registry(2);
  const auto a = reinterpret_cast<uintptr_t>(&registry.thread(0));
  const auto b = reinterpret_cast<uintptr_t>(&registry.thread(1));
  CHECK(b - a >= cache_line_bytes);
}
