#include "privsep/options.h"

#include <cassert>
#include <charconv>
#include <string_view>

namespace ringcache::privsep {
namespace {

constexpr std::size_t port_digits_max = 5;

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > port_digits_max) return std::nullopt;
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Matches "--name VALUE" and "--name=VALUE"; advances index past the value.
enum class match { no, yes, missing_value };

match take_value(std::span<const char* const> args, std::size_t& index, std::string_view name,
                 std::string& value) {
  const std::string_view arg = args[index];
  if (arg == name) {
    if (index + 1 >= args.size()) return match::missing_value;
    value = args[++index];
    return match::yes;
  }
  if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
    value = std::string(arg.substr(name.size() + 1));
    return match::yes;
  }
  return match::no;
}

// Options of the daemon that the helper sets itself: the daemon's own copies
// would name a second source for the same socket or key.
bool is_reserved_option(std::string_view arg, bool helper_passes_key) {
  for (std::string_view reserved : {"--listen-fd", "--text-listen-fd", "--tls-key-fd", "--tls-key"}) {
    if (reserved == "--tls-key" && !helper_passes_key) continue;
    if (arg == reserved) return true;
    if (arg.size() > reserved.size() && arg.substr(0, reserved.size()) == reserved &&
        arg[reserved.size()] == '=') {
      return true;
    }
  }
  return false;
}

parse_result error(parse_status status, std::string detail) {
  return parse_result{status, std::move(detail), {}};
}

}  // namespace

parse_result parse_options(std::span<const char* const> args) {
  helper_options options;
  bool have_user = false;
  std::size_t index = 0;
  for (; index < args.size(); ++index) {
    const std::string_view arg = args[index];
    if (arg == "--") break;
    if (arg == "-h" || arg == "--help") return error(parse_status::help, "");

    std::string value;
    bool matched = false;
    for (std::string_view name : {"--user", "--port", "--text-port", "--listen", "--tls-key"}) {
      const match m = take_value(args, index, name, value);
      if (m == match::missing_value) return error(parse_status::missing_value, std::string(name));
      if (m == match::no) continue;
      matched = true;
      if (name == "--user") {
        options.user = value;
        have_user = !value.empty();
      } else if (name == "--listen") {
        options.listen_address = value;
      } else if (name == "--tls-key") {
        if (value.empty()) return error(parse_status::missing_value, std::string(name));
        options.tls_key_file = value;
      } else {
        const std::optional<std::uint16_t> port = parse_port(value);
        if (!port) return error(parse_status::invalid_port, std::string(name) + " " + value);
        if (name == "--port") options.binary_port = *port;
        else options.text_port = *port;
      }
      break;
    }
    if (!matched) return error(parse_status::unknown_option, std::string(arg));
  }

  if (!have_user) return error(parse_status::missing_user, "");
  if (options.text_port && *options.text_port != 0 && *options.text_port == options.binary_port) {
    return error(parse_status::same_port, std::to_string(options.binary_port));
  }
  if (index >= args.size()) return error(parse_status::missing_separator, "");
  ++index;
  if (index >= args.size() || std::string_view(args[index]).empty()) {
    return error(parse_status::missing_daemon, "");
  }
  for (; index < args.size(); ++index) {
    if (is_reserved_option(args[index], !options.tls_key_file.empty())) {
      return error(parse_status::conflicting_daemon_option, args[index]);
    }
    options.daemon_argv.emplace_back(args[index]);
  }
  assert(!options.daemon_argv.empty());
  return parse_result{parse_status::ok, "", std::move(options)};
}

std::string describe(const parse_result& result) {
  switch (result.status) {
    case parse_status::ok: return "ok";
    case parse_status::help: return "help requested";
    case parse_status::unknown_option: return "unknown option '" + result.detail + "'";
    case parse_status::missing_value: return "option " + result.detail + " needs a value";
    case parse_status::missing_user: return "--user USER is required";
    case parse_status::invalid_port:
      return "invalid port in '" + result.detail + "' (expected 0..65535)";
    case parse_status::same_port:
      return "binary and text port are both " + result.detail;
    case parse_status::missing_separator:
      return "missing '--' before the daemon command (e.g. -- ringcached -t 2)";
    case parse_status::missing_daemon: return "no daemon command after '--'";
    case parse_status::conflicting_daemon_option:
      return "daemon option '" + result.detail +
             "' conflicts with the sockets (and --tls-key) this helper passes; remove it";
  }
  assert(false && "unhandled parse_status");
  return "unknown parse_status";
}

const char* usage_text() {
  return "usage: ringcached-privsep --user USER [--port PORT] [--text-port PORT] [--listen ADDR]\n"
         "                          [--tls-key FILE] -- ringcached [daemon options]\n"
         "\n"
         "Run as root. Binds the binary port (default 889) and, with --text-port, the\n"
         "memcached text port on ADDR (numeric IPv4/IPv6, default 0.0.0.0), then runs\n"
         "the daemon as USER with no capabilities, no supplementary groups and\n"
         "NoNewPrivs, handing it the listening sockets over a Unix socket (SCM_RIGHTS).\n"
         "The daemon keeps this process's PID; it receives --listen-fd N\n"
         "[--text-listen-fd M] in front of the daemon options given here.\n"
         "\n"
         "With --tls-key FILE the helper opens the TLS private key as root (it may be\n"
         "readable by root only) and hands the open file over the same way; the daemon\n"
         "gets --tls-key-fd K and needs --tls-cert among its options.\n";
}

}  // namespace ringcache::privsep
