// Command line of ringcached-privsep:
//
//   ringcached-privsep --user USER [--port 889] [--text-port N] [--listen ADDR]
//                      [--tls-key FILE] -- ringcached [daemon options]
//
// Everything after "--" is the daemon's command line, passed through except
// that the helper adds --listen-fd / --text-listen-fd / --tls-key-fd itself
// (so the daemon's own copies of those are refused: two sources of listening
// sockets would be ambiguous; likewise the daemon's --tls-key when the helper
// has one).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ringcache::privsep {

inline constexpr std::uint16_t default_binary_port = 889;
inline constexpr const char* default_listen_address = "0.0.0.0";

struct helper_options {
  std::string user;
  std::uint16_t binary_port = default_binary_port;
  std::optional<std::uint16_t> text_port;
  std::string listen_address = default_listen_address;
  std::string tls_key_file;  // empty: the helper passes no key (key_file.h)
  std::vector<std::string> daemon_argv;  // program first, then its options
};

enum class parse_status {
  ok,
  help,                       // -h/--help: print usage, exit 0
  unknown_option,
  missing_value,              // an option that takes a value came last
  missing_user,
  invalid_port,               // not a decimal number in 0..65535
  same_port,                  // binary and text port are the same non-zero port
  missing_separator,          // no "--" before the daemon command
  missing_daemon,             // "--" with nothing after it
  conflicting_daemon_option,  // daemon options contain an option the helper sets (options.cc)
};

struct parse_result {
  parse_status status;
  std::string detail;  // the offending argument, for the error message
  helper_options options;
};

// args excludes argv[0].
parse_result parse_options(std::span<const char* const> args);

// One line naming the problem, e.g. "unknown option '--bogus'".
std::string describe(const parse_result& result);

const char* usage_text();

}  // namespace ringcache::privsep
