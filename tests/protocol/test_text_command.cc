// TextParser grammar tests: every command's fields, noreply, the meta flags,
// and the error each malformed line gets, as measured against memcached
// 1.6.18 (Debian 12). Every case is fed whole, split at every byte and in
// every sweep chunk size.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/protocol/text/text_command.h"
#include "tests/protocol/parser_sweep.h"
#include "tests/protocol/text_parser_harness.h"

namespace ringcache::protocol::text::test {
namespace {

using namespace ringcache::test;

constexpr ParserLimits grammar_limits{1000, 32, 2048, 4096};

struct Case {
  const char* name;
  std::string bytes;
  std::vector<Seen> expected;
};

void check_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    CAPTURE(c.name);
    check_every_split(grammar_limits, c.bytes, c.expected);
  }
}

Seen with_noreply(Seen seen) {
  seen.noreply = true;
  return seen;
}

const std::string key_250(250, 'k');
const std::string key_251(251, 'k');

TEST_CASE("retrieval commands") {
  check_cases({
      {"get", "get a\r\n", {seen_retrieval(C::get, "a")}},
      {"get many keys, extra spaces", "get a b  c \r\n", {seen_retrieval(C::get, "a b c")}},
      {"gets", "gets k1 k2\r\n", {seen_retrieval(C::gets, "k1 k2")}},
      {"bare newline, leading spaces", "   get a\n", {seen_retrieval(C::get, "a")}},
      {"key of 250 bytes", "get " + key_250 + "\r\n", {seen_retrieval(C::get, key_250)}},
      {"utf-8 key", "get cl\xC3\xA9\r\n", {seen_retrieval(C::get, "cl\xC3\xA9")}},
      {"gat", "gat 100 a b\r\n", {seen_retrieval(C::gat, "a b", 100)}},
      {"gats negative", "gats -1 a\r\n", {seen_retrieval(C::gats, "a", -1)}},
      {"gat without keys answers END", "gat 100\r\n", {seen_retrieval(C::gat, "", 100)}},
      {"get without keys", "get\r\n", {seen_error(E::unknown_command, C::get)}},
      {"gets with only spaces", "gets  \r\n", {seen_error(E::unknown_command, C::gets)}},
      {"gat without exptime", "gat\r\n", {seen_error(E::unknown_command, C::gat)}},
      {"gat bad exptime", "gat x a\r\n", {seen_error(E::bad_exptime, C::gat)}},
      {"one key too long fails the whole line", "get a " + key_251 + " b\r\n", {seen_error(E::bad_command_line, C::get)}},
      {"control character in a key", "get a\x01" "b\r\n", {seen_error(E::bad_command_line, C::get)}},
      {"a lone \\r is part of the line", "get a\rget b\r\n", {seen_error(E::bad_command_line, C::get)}},
      {"commands are case-sensitive", "GET a\r\n", {seen_error(E::unknown_command)}},
  });
}

TEST_CASE("storage commands") {
  check_cases({
      {"set", "set k 5 100 3\r\nabc\r\n", {seen_storage(C::set, "k", 5, 100, "abc")}},
      {"set extremes", "set k 4294967295 -1 0\r\n\r\n", {seen_storage(C::set, "k", 4294967295u, -1, "")}},
      {"value holding \\r\\n", "set k 0 0 3\r\na\r\n\r\n", {seen_storage(C::set, "k", 0, 0, "a\r\n")}},
      {"binary value", std::string("set k 0 0 3\r\n\0\xFF\n\r\n", 18), {seen_storage(C::set, "k", 0, 0, std::string("\0\xFF\n", 3))}},
      {"add noreply", "add k 1 2 1 noreply\r\nx\r\n", {seen_storage(C::add, "k", 1, 2, "x", true)}},
      {"replace", "replace k 0 0 1\r\nx\r\n", {seen_storage(C::replace, "k", 0, 0, "x")}},
      {"append", "append k 0 0 2\r\nxy\r\n", {seen_storage(C::append, "k", 0, 0, "xy")}},
      {"prepend noreply", "prepend k 0 0 2 noreply\r\nxy\r\n", {seen_storage(C::prepend, "k", 0, 0, "xy", true)}},
      {"cas", "cas k 0 0 2 18446744073709551615 noreply\r\nhi\r\n",
       {seen_storage(C::cas, "k", 0, 0, "hi", true, 18446744073709551615ull)}},
      {"a sixth token other than noreply is ignored", "set k 0 0 1 norepl\r\nx\r\n", {seen_storage(C::set, "k", 0, 0, "x")}},
      {"'+' and leading zeros as strtoul allows", "set k +1 +2 01\r\nx\r\n", {seen_storage(C::set, "k", 1, 2, "x")}},
      {"spaces around tokens", "set  k  1  0  1 \r\nx\r\n", {seen_storage(C::set, "k", 1, 0, "x")}},
      {"bare newline after the line", "set k 0 0 1\nx\r\n", {seen_storage(C::set, "k", 0, 0, "x")}},
      {"key of 250 bytes", "set " + key_250 + " 0 0 1\r\nx\r\n", {seen_storage(C::set, key_250, 0, 0, "x")}},
  });
}

TEST_CASE("storage errors keep the stream in sync") {
  check_cases({
      // Too few or too many tokens: memcached cannot know the size, so it
      // reads the data block as a command line (and so do we).
      {"too few tokens", "set k 0 0\r\nx\r\n", {seen_error(E::unknown_command, C::set), seen_error(E::unknown_command)}},
      {"too many tokens", "set k 0 0 1 noreply extra\r\nx\r\n",
       {seen_error(E::unknown_command, C::set), seen_error(E::unknown_command)}},
      {"cas without unique", "cas k 0 0 1\r\nx\r\n", {seen_error(E::unknown_command, C::cas), seen_error(E::unknown_command)}},
      {"negative size", "set k 0 0 -1\r\nxy\r\n", {seen_error(E::bad_command_line, C::set), seen_error(E::unknown_command)}},
      {"size near 2^64", "set k 0 0 18446744073709551614\r\nmn\r\n",
       {seen_error(E::bad_command_line, C::set), seen_request(C::meta_noop)}},
      // A readable size: the data block is consumed even though the line is bad.
      {"key too long", "set " + key_251 + " 0 0 1\r\nx\r\nmn\r\n",
       {seen_error(E::bad_command_line, C::set), seen_request(C::meta_noop)}},
      {"negative flags", "set k -1 0 1\r\nx\r\nmn\r\n", {seen_error(E::bad_command_line, C::set), seen_request(C::meta_noop)}},
      {"flags above 32 bits", "set k 4294967296 0 1\r\nx\r\nmn\r\n",
       {seen_error(E::bad_command_line, C::set), seen_request(C::meta_noop)}},
      {"bad exptime", "set k 0 0x 1\r\nx\r\n", {seen_error(E::bad_command_line, C::set)}},
      {"bad cas unique", "cas k 0 0 1 x\r\nx\r\n", {seen_error(E::bad_command_line, C::cas)}},
      {"cas unique above 64 bits", "cas k 0 0 1 18446744073709551616\r\nx\r\n", {seen_error(E::bad_command_line, C::cas)}},
      {"a refused set never runs a command hidden in its value", "set " + key_251 + " 0 0 11\r\nflush_all\r\n\r\n",
       {seen_error(E::bad_command_line, C::set)}},
      {"noreply covers the line's errors", "set k -1 0 1 noreply\r\nx\r\n", {seen_error(E::bad_command_line, C::set, true)}},
      // memcached reads exactly size + 2 bytes and checks the last two.
      {"block one byte long", "set k 0 0 1\r\nxy\r\nget a\r\n",
       {seen_error(E::bad_data_chunk, C::set), seen_error(E::unknown_command), seen_retrieval(C::get, "a")}},
      {"block ended by a bare newline", "set k 0 0 1\nx\nget a\n",
       {seen_error(E::bad_data_chunk, C::set), seen_error(E::unknown_command)}},
      {"bad chunk with noreply", "set k 0 0 1 noreply\r\nxy\r\n",
       {seen_error(E::bad_data_chunk, C::set, true), seen_error(E::unknown_command)}},
      {"too large", "set k 0 0 1001\r\n" + std::string(1001, 'v') + "\r\nmn\r\n",
       {[] { Seen s = seen_error(E::too_large, C::set); s.key = "k"; return s; }(), seen_request(C::meta_noop)}},
      {"too large noreply", "append k 0 0 5000 noreply\r\n" + std::string(5000, 'v') + "\r\n",
       {[] { Seen s = seen_error(E::too_large, C::append, true); s.key = "k"; return s; }()}},
  });
}

TEST_CASE("delete, incr, decr, touch") {
  check_cases({
      {"delete", "delete k\r\n", {seen_keyed(C::del, "k")}},
      {"delete with a zero hold time", "delete k 0\r\n", {seen_keyed(C::del, "k")}},
      {"delete noreply", "delete k noreply\r\n", {seen_keyed(C::del, "k", true)}},
      {"delete 0 noreply", "delete k 0 noreply\r\n", {seen_keyed(C::del, "k", true)}},
      {"delete alone", "delete\r\n", {seen_error(E::unknown_command, C::del)}},
      {"delete many", "delete a b c d e\r\n", {seen_error(E::unknown_command, C::del)}},
      {"delete with a hold time", "delete k 5\r\n", {seen_error(E::delete_usage, C::del)}},
      {"delete with a hold time, noreply", "delete k 5 noreply\r\n", {seen_error(E::delete_usage, C::del, true)}},
      {"delete 0 and junk", "delete k 0 x\r\n", {seen_error(E::delete_usage, C::del)}},
      {"delete key too long", "delete " + key_251 + "\r\n", {seen_error(E::bad_command_line, C::del)}},
      {"incr", "incr k 5\r\n", {seen_keyed(C::incr, "k", false, 5)}},
      {"decr max noreply", "decr k 18446744073709551615 noreply\r\n",
       {seen_keyed(C::decr, "k", true, 18446744073709551615ull)}},
      {"incr junk fourth token", "incr k 1 x\r\n", {seen_keyed(C::incr, "k", false, 1)}},
      {"incr without delta", "incr k\r\n", {seen_error(E::unknown_command, C::incr)}},
      {"incr bad delta", "incr k x\r\n", {seen_error(E::bad_delta, C::incr)}},
      {"incr negative delta", "incr k -1\r\n", {seen_error(E::bad_delta, C::incr)}},
      {"incr delta above 64 bits", "incr k 18446744073709551616\r\n", {seen_error(E::bad_delta, C::incr)}},
      {"incr bad delta noreply", "incr k x noreply\r\n", {seen_error(E::bad_delta, C::incr, true)}},
      {"incr key too long", "incr " + key_251 + " 1\r\n", {seen_error(E::bad_command_line, C::incr)}},
      {"touch", "touch k 10\r\n", {seen_keyed(C::touch, "k", false, 0, 10)}},
      {"touch negative noreply", "touch k -1 noreply\r\n", {seen_keyed(C::touch, "k", true, 0, -1)}},
      {"touch bad exptime", "touch k x\r\n", {seen_error(E::bad_exptime, C::touch)}},
      {"touch without exptime", "touch k\r\n", {seen_error(E::unknown_command, C::touch)}},
  });
}

TEST_CASE("flush_all, stats, version, verbosity, quit, mn") {
  Seen flush_delay = seen_request(C::flush_all);
  flush_delay.exptime = 10;
  Seen flush_past = with_noreply(seen_request(C::flush_all));
  flush_past.exptime = -1;
  Seen flush_junk = seen_request(C::flush_all);
  flush_junk.exptime = 1;
  Seen stats_args = seen_request(C::stats);
  stats_args.data = "settings x";
  Seen verbosity_one = seen_request(C::verbosity);
  verbosity_one.number = 1;
  check_cases({
      {"flush_all", "flush_all\r\n", {seen_request(C::flush_all)}},
      {"flush_all delay", "flush_all 10\r\n", {flush_delay}},
      {"flush_all noreply", "flush_all noreply\r\n", {with_noreply(seen_request(C::flush_all))}},
      {"flush_all negative noreply", "flush_all -1 noreply\r\n", {flush_past}},
      {"flush_all junk second token", "flush_all 1 2\r\n", {flush_junk}},
      {"flush_all bad delay", "flush_all x\r\n", {seen_error(E::bad_exptime, C::flush_all)}},
      {"flush_all bad delay noreply", "flush_all x noreply\r\n", {seen_error(E::bad_exptime, C::flush_all, true)}},
      {"flush_all too many", "flush_all 1 2 3\r\n", {seen_error(E::unknown_command, C::flush_all)}},
      {"stats", "stats\r\n", {seen_request(C::stats)}},
      {"stats with arguments", "stats  settings x \r\n", {stats_args}},
      {"version", "version\r\n", {seen_request(C::version)}},
      {"version ignores arguments", "version foo bar\r\n", {seen_request(C::version)}},
      {"verbosity", "verbosity 1\r\n", {verbosity_one}},
      {"verbosity junk", "verbosity 1 2\r\n", {verbosity_one}},
      {"verbosity noreply", "verbosity 1 noreply\r\n", {with_noreply(verbosity_one)}},
      {"verbosity alone", "verbosity\r\n", {seen_error(E::unknown_command, C::verbosity)}},
      {"verbosity bad level", "verbosity x\r\n", {seen_error(E::bad_command_line, C::verbosity)}},
      {"verbosity noreply alone is silent", "verbosity noreply\r\n", {seen_error(E::bad_command_line, C::verbosity, true)}},
      {"verbosity too many", "verbosity 1 2 3\r\n", {seen_error(E::unknown_command, C::verbosity)}},
      {"mn", "mn\r\n", {seen_request(C::meta_noop)}},
      {"mn ignores arguments", "mn extra\r\n", {seen_request(C::meta_noop)}},
      {"empty line", "\r\n", {seen_error(E::unknown_command)}},
      {"spaces only", "   \n", {seen_error(E::unknown_command)}},
      {"unknown", "bogus 1 2\r\n", {seen_error(E::unknown_command)}},
      {"quit ends the input", "quit\r\nget a\r\nset k 0 0 1\r\n", {seen_request(C::quit)}},
      {"quit with arguments", "quit now\r\nmn\r\n", {seen_request(C::quit)}},
  });
}

TEST_CASE("meta commands") {
  check_cases({
      {"mg all return flags", "mg foo v k c f s t O123 q h l u\r\n",
       {seen_meta(C::meta_get, "foo", meta_flags("vkcfstOqhlu").with_opaque("123"))}},
      {"mg tokens", "mg foo T30 N-5 R10 v\r\n",
       {seen_meta(C::meta_get, "foo", meta_flags("TNRv").with_ttl(30).with_vivify_ttl(-5).with_recache_ttl(10))}},
      {"mg no flags", "mg foo\r\n", {seen_meta(C::meta_get, "foo", meta_flags())}},
      {"mg token-less flags ignore their tail", "mg foo vxyz\r\n", {seen_meta(C::meta_get, "foo", meta_flags("v"))}},
      {"mg empty opaque", "mg foo O\r\n", {seen_meta(C::meta_get, "foo", meta_flags("O"))}},
      {"mg opaque of 31", "mg foo O" + std::string(31, 'x') + "\r\n",
       {seen_meta(C::meta_get, "foo", meta_flags("O").with_opaque(std::string(31, 'x')))}},
      {"mg base64 key", "mg Zm9v b k v\r\n", {seen_meta(C::meta_get, "foo", meta_flags("bkv").with_key_token("Zm9v"))}},
      {"mg base64 binary key", "mg AAEgDQo= b\r\n",
       {seen_meta(C::meta_get, std::string("\0\1 \r\n", 5), meta_flags("b").with_key_token("AAEgDQo="))}},
      {"mg 16 flags, the last invalid", "mg foo b c f h k l O q s t u v N1 R1 T1 x\r\n", {seen_error(E::meta_invalid_flag, C::meta_get)}},
      {"ms", "ms foo 2 F7 T100 c k O1 MA I\r\nhi\r\n",
       {seen_meta(C::meta_set, "foo", meta_flags("FTckOMI").with_opaque("1").with_ttl(100).with_client_flags(7).with_mode('A'), "hi")}},
      {"ms compare cas, vivify", "ms foo 1 C99 N30 q s\r\nx\r\n",
       {seen_meta(C::meta_set, "foo", meta_flags("CNqs").with_vivify_ttl(30).with_compare_cas(99), "x")}},
      {"ms base64", "ms Zm9v 0 b\r\n\r\n", {seen_meta(C::meta_set, "foo", meta_flags("b").with_key_token("Zm9v"), "")}},
      {"md", "md foo q C5 x I T30 k O9\r\n",
       {seen_meta(C::meta_delete, "foo", meta_flags("qCxITkO").with_opaque("9").with_ttl(30).with_compare_cas(5))}},
      {"ma", "ma foo N0 J10 D3 MD v t c q O5 k\r\n",
       {seen_meta(C::meta_arithmetic, "foo",
                  meta_flags("NJDMvtcqOk").with_opaque("5").with_compare_cas(0).with_delta(3).with_initial(10).with_mode('D'))}},
      {"ma + and -", "ma a M+\r\nma a M-\r\n",
       {seen_meta(C::meta_arithmetic, "a", meta_flags("M").with_mode('I')),
        seen_meta(C::meta_arithmetic, "a", meta_flags("M").with_mode('D'))}},
  });
}

TEST_CASE("meta errors read like memcached's") {
  const std::string many_v = [] {
    std::string flags;
    for (int i = 0; i < 18; ++i) flags += " v";
    return flags;
  }();
  check_cases({
      {"mg alone", "mg\r\n", {seen_error(E::unknown_command, C::meta_get)}},
      {"mg unknown flag", "mg a zz\r\n", {seen_error(E::meta_invalid_flag, C::meta_get)}},
      {"mg digit flag", "mg a 5\r\n", {seen_error(E::meta_invalid_flag, C::meta_get)}},
      {"mg E is not in 1.6.18", "mg a E99\r\n", {seen_error(E::meta_invalid_flag, C::meta_get)}},
      {"mg duplicate", "mg a v v\r\n", {seen_error(E::meta_duplicate_flag, C::meta_get)}},
      {"mg duplicate opaque", "mg a O1 O2\r\n", {seen_error(E::meta_duplicate_flag, C::meta_get)}},
      {"mg empty number", "mg a T\r\n", {seen_error(E::meta_bad_token, C::meta_get)}},
      {"mg bad number", "mg a Nx\r\n", {seen_error(E::meta_bad_token, C::meta_get)}},
      {"mg plain key with b", "mg a k b\r\n", {seen_error(E::meta_key_decode, C::meta_get)}},
      {"mg short base64", "mg YQ= b\r\n", {seen_error(E::meta_key_decode, C::meta_get)}},
      {"mg opaque of 32", "mg a O" + std::string(32, 'x') + "\r\n", {seen_error(E::meta_opaque_too_long, C::meta_get)}},
      {"mg 18 flags", "mg a" + many_v + "\r\n", {seen_error(E::meta_mg_too_many_flags, C::meta_get)}},
      {"mg key too long", "mg " + key_251 + " v\r\n", {seen_error(E::bad_command_line, C::meta_get)}},
      {"mg key with a control character", "mg a\x01 v\r\n", {seen_error(E::bad_command_line, C::meta_get)}},
      {"md one message for every flag error", "md a zz\r\nmd a Tx\r\nmd a q q\r\nmd zz k b\r\n",
       {seen_error(E::meta_bad_flag, C::meta_delete), seen_error(E::meta_bad_flag, C::meta_delete),
        seen_error(E::meta_bad_flag, C::meta_delete), seen_error(E::meta_bad_flag, C::meta_delete)}},
      {"ma flag errors", "ma a Dx\r\nma a M\r\nma a Mi\r\nma a MII\r\n",
       {seen_error(E::meta_bad_flag, C::meta_arithmetic), seen_error(E::meta_bad_flag, C::meta_arithmetic),
        seen_error(E::meta_ma_mode, C::meta_arithmetic), seen_error(E::meta_ma_mode, C::meta_arithmetic)}},
      {"ms without size", "ms b\r\nyy\r\n", {seen_error(E::bad_command_line, C::meta_set), seen_error(E::unknown_command)}},
      {"ms bad size", "ms b x\r\nyy\r\n", {seen_error(E::bad_command_line, C::meta_set), seen_error(E::unknown_command)}},
      // Errors after a readable size swallow the data block, as memcached does.
      {"ms bad mode", "ms a 1 MX\r\nx\r\nmn\r\n", {seen_error(E::meta_ms_mode, C::meta_set), seen_request(C::meta_noop)}},
      {"ms lower-case mode", "ms a 1 Ms\r\nx\r\n", {seen_error(E::meta_ms_mode, C::meta_set)}},
      {"ms long mode", "ms a 1 MSET\r\nx\r\n", {seen_error(E::meta_mode_length, C::meta_set)}},
      {"ms bad client flags", "ms a 1 Fx\r\nx\r\n", {seen_error(E::bad_command_line, C::meta_set)}},
      {"ms bad ttl", "ms a 1 Tx\r\nx\r\n", {seen_error(E::meta_bad_token, C::meta_set)}},
      {"ms unknown flag", "ms a 1 zz\r\nx\r\n", {seen_error(E::meta_invalid_flag, C::meta_set)}},
      {"ms bad base64", "ms b 2 F7 k b\r\nhi\r\n", {seen_error(E::meta_key_decode, C::meta_set)}},
      {"ms key too long", "ms " + key_251 + " 1\r\nx\r\nmn\r\n",
       {seen_error(E::bad_command_line, C::meta_set), seen_request(C::meta_noop)}},
      {"ms 17 flags", "ms a 1" + std::string(" T1 T1 T1 T1 T1 T1 T1 T1 T1 T1 T1 T1 T1 T1 T1 T1 T1") + "\r\nx\r\n",
       {seen_error(E::meta_too_many_flags, C::meta_set)}},
      {"ms bad chunk is never quiet", "ms b 2 q\r\nyyy\r\n",
       {seen_error(E::bad_data_chunk, C::meta_set), seen_error(E::unknown_command)}},
      {"ms too large", "ms a 1001 q\r\n" + std::string(1001, 'v') + "\r\nmn\r\n",
       {[] { Seen s = seen_error(E::too_large, C::meta_set); s.key = "a"; return s; }(), seen_request(C::meta_noop)}},
  });
}

TEST_CASE("error lines are memcached's, byte for byte") {
  CHECK(error_line(E::unknown_command) == "ERROR\r\n");
  CHECK(error_line(E::bad_command_line) == "CLIENT_ERROR bad command line format\r\n");
  CHECK(error_line(E::bad_data_chunk) == "CLIENT_ERROR bad data chunk\r\n");
  CHECK(error_line(E::bad_delta) == "CLIENT_ERROR invalid numeric delta argument\r\n");
  CHECK(error_line(E::bad_exptime) == "CLIENT_ERROR invalid exptime argument\r\n");
  CHECK(error_line(E::delete_usage) == "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
  CHECK(error_line(E::line_too_long) == "CLIENT_ERROR line too long\r\n");
  CHECK(error_line(E::too_large) == "SERVER_ERROR object too large for cache\r\n");
  CHECK(error_line(E::meta_invalid_flag) == "CLIENT_ERROR invalid flag\r\n");
  CHECK(error_line(E::meta_duplicate_flag) == "CLIENT_ERROR duplicate flag\r\n");
  CHECK(error_line(E::meta_bad_flag) == "CLIENT_ERROR invalid or duplicate flag\r\n");
  CHECK(error_line(E::meta_bad_token) == "CLIENT_ERROR bad token in command line format\r\n");
  CHECK(error_line(E::meta_key_decode) == "CLIENT_ERROR error decoding key\r\n");
  CHECK(error_line(E::meta_opaque_too_long) == "CLIENT_ERROR opaque token too long\r\n");
  CHECK(error_line(E::meta_ms_mode) == "CLIENT_ERROR invalid mode for ms M token\r\n");
  CHECK(error_line(E::meta_ma_mode) == "CLIENT_ERROR invalid mode for ma M token\r\n");
  CHECK(error_line(E::meta_mode_length) == "CLIENT_ERROR incorrect length for M token\r\n");
  CHECK(error_line(E::meta_mg_too_many_flags) == "CLIENT_ERROR options flags are too long\r\n");
  CHECK(error_line(E::meta_too_many_flags) == "CLIENT_ERROR options flags too long\r\n");
}

TEST_CASE("next_key walks a key list") {
  std::string_view keys = "  a bb   ccc ";
  std::string_view key;
  std::vector<std::string_view> seen;
  while (next_key(keys, key)) seen.push_back(key);
  CHECK(seen == std::vector<std::string_view>{"a", "bb", "ccc"});
  CHECK(keys.empty());
  std::string_view none = "   ";
  CHECK_FALSE(next_key(none, key));
}

TEST_CASE("the line limit depends only on the first token") {
  CHECK(starts_retrieval_command("get a", 2048));
  CHECK(starts_retrieval_command("  gats 1 a", 2048));
  CHECK_FALSE(starts_retrieval_command("get", 2048));  // no key can follow yet
  CHECK_FALSE(starts_retrieval_command("getx a", 2048));
  CHECK_FALSE(starts_retrieval_command("set a 0 0 1", 2048));
  CHECK_FALSE(starts_retrieval_command(std::string(10, ' ') + "get a", 8));
}

}  // namespace
}  // namespace ringcache::protocol::text::test
