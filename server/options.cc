#include "server/options.h"

#include "server/io/tls/tls_context.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <string_view>

#ifndef RINGCACHE_VERSION
#error "RINGCACHE_VERSION must be defined by the build"
#endif

namespace ringcache::server {
namespace {

enum class OptionId : uint8_t {
  port,
  text_port,
  listen,
  threads,
  memory,
  max_item,
  peer,
  node_id,
  peer_secret_file,
  auth_file,
  max_clock_skew,
  listen_fd,
  text_listen_fd,
  upload_timeout,
  tls_cert,
  tls_key,
  tls_key_fd,
  tls_ca,
  tls_verify_clients,
  tls_handshake_timeout,
  verbose,
  help,
  version,
};

struct OptionSpec {
  OptionId id;
  char short_name;  // 0: long form only
  std::string_view long_name;
  bool takes_value;
};

constexpr OptionSpec option_specs[] = {
    {OptionId::port, 'p', "port", true},
    {OptionId::text_port, 0, "text-port", true},
    {OptionId::listen, 'l', "listen", true},
    {OptionId::threads, 't', "threads", true},
    {OptionId::memory, 'm', "memory", true},
    {OptionId::max_item, 0, "max-item", true},
    {OptionId::peer, 0, "peer", true},
    {OptionId::node_id, 0, "node-id", true},
    {OptionId::peer_secret_file, 0, "peer-secret-file", true},
    {OptionId::auth_file, 0, "auth-file", true},
    {OptionId::max_clock_skew, 0, "max-clock-skew", true},
    {OptionId::listen_fd, 0, "listen-fd", true},
    {OptionId::text_listen_fd, 0, "text-listen-fd", true},
    {OptionId::upload_timeout, 0, "upload-timeout", true},
    {OptionId::tls_cert, 0, "tls-cert", true},
    {OptionId::tls_key, 0, "tls-key", true},
    {OptionId::tls_key_fd, 0, "tls-key-fd", true},
    {OptionId::tls_ca, 0, "tls-ca", true},
    {OptionId::tls_verify_clients, 0, "tls-verify-clients", false},
    {OptionId::tls_handshake_timeout, 0, "tls-handshake-timeout", true},
    {OptionId::verbose, 'v', "verbose", false},
    {OptionId::help, 'h', "help", false},
    {OptionId::version, 'V', "version", false},
};

template <class Int>
bool parse_decimal(std::string_view text, Int& value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end;
}

std::string display_name(const OptionSpec& spec) {
  std::string name = "--" + std::string(spec.long_name);
  if (spec.short_name != 0) name = std::string("-") + spec.short_name + "/" + name;
  return name;
}

bool is_valid_node_id(std::string_view id) {
  if (id.empty() || id.size() > node_id_bytes_max) return false;
  for (const char c : id) {
    // The id travels in the replication hello, a space separated line.
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

bool is_numeric_address(std::string_view text) {
  const std::string address(text);  // inet_pton reads up to a NUL
  unsigned char scratch[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, address.c_str(), scratch) == 1 ||
         inet_pton(AF_INET6, address.c_str(), scratch) == 1;
}

bool is_file_name(std::string_view name) { return !name.empty(); }

constexpr uint16_t port_max = std::numeric_limits<uint16_t>::max();

class Parser {
 public:
  explicit Parser(uint32_t hardware_threads) {
    result_.status = ParseStatus::run;
    result_.options.threads = hardware_threads == 0 ? 1 : std::min(hardware_threads, threads_max);
  }

  ParseResult run(std::span<const char* const> args) {
    bool max_item_given = false;
    bool handshake_timeout_given = false;
    for (size_t i = 0; i < args.size() && result_.status == ParseStatus::run; ++i) {
      const std::string_view arg = args[i] == nullptr ? std::string_view() : args[i];
      const OptionSpec* spec = nullptr;
      std::string_view value;
      bool has_value = false;
      if (arg.starts_with("--") && arg.size() > 2) {
        std::string_view name = arg.substr(2);
        if (const size_t eq = name.find('='); eq != std::string_view::npos) {
          value = name.substr(eq + 1);
          name = name.substr(0, eq);
          has_value = true;
        }
        spec = find_long(name);
        if (spec == nullptr) return fail("unknown option '" + std::string(arg) + "'");
        if (!spec->takes_value && has_value) {
          return fail("option " + display_name(*spec) + " takes no value");
        }
      } else if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-') {
        spec = find_short(arg[1]);
        if (spec == nullptr) return fail("unknown option '" + std::string(arg) + "'");
        if (arg.size() > 2) {
          if (!spec->takes_value) return fail("unknown option '" + std::string(arg) + "'");
          value = arg.substr(2);
          has_value = true;
        }
      } else {
        return fail("unexpected argument '" + std::string(arg) + "'");
      }
      if (spec->takes_value && !has_value) {
        if (i + 1 >= args.size() || args[i + 1] == nullptr) {
          return fail("option " + display_name(*spec) + " needs a value");
        }
        value = args[++i];
      }
      if (spec->id == OptionId::max_item) max_item_given = true;
      if (spec->id == OptionId::tls_handshake_timeout) handshake_timeout_given = true;
      apply(*spec, value);
    }
    if (result_.status != ParseStatus::run) return result_;
    Options& options = result_.options;
    if (!max_item_given) {
      options.item_bytes_max = options.memory_bytes / 2;
    } else if (options.item_bytes_max > options.memory_bytes) {
      return fail("--max-item (" + std::to_string(options.item_bytes_max) +
                  " bytes) is larger than -m/--memory (" + std::to_string(options.memory_bytes) +
                  " bytes)");
    }
    if (options.port != 0 && options.port == options.text_port && options.listen_fd < 0 &&
        options.text_listen_fd < 0) {
      return fail("-p/--port and --text-port are both " + std::to_string(options.port) +
                  ": the binary and the text protocol need a port each");
    }
    if (!options.peer_secret_file.empty() && options.peers.empty()) {
      return fail("--peer-secret-file authenticates replication, which needs --peer");
    }
    if (options.listen_fd >= 0 && options.listen_fd == options.text_listen_fd) {
      return fail("--listen-fd and --text-listen-fd name the same descriptor");
    }
    if (!options.tls_key.empty() && options.tls_key_fd >= 0) {
      return fail("--tls-key and --tls-key-fd both name the private key; give one");
    }
    if (options.tls_key_fd >= 0 &&
        (options.tls_key_fd == options.listen_fd || options.tls_key_fd == options.text_listen_fd)) {
      return fail("--tls-key-fd names a listening socket's descriptor");
    }
    if (options.tls_cert.empty() != (options.tls_key.empty() && options.tls_key_fd < 0)) {
      return fail("TLS needs both --tls-cert and --tls-key (or --tls-key-fd)");
    }
    if (options.tls_cert.empty() &&
        (!options.tls_ca.empty() || options.tls_verify_clients || handshake_timeout_given)) {
      return fail("--tls-ca, --tls-verify-clients and --tls-handshake-timeout need --tls-cert and --tls-key");
    }
    const char* tls_problem = options.tls_cert.empty() ? nullptr : tls_settings_problem(tls_settings(options));
    if (tls_problem != nullptr) {
      return fail(tls_problem);
    }
    return result_;
  }

 private:
  static const OptionSpec* find_long(std::string_view name) {
    for (const OptionSpec& spec : option_specs) {
      if (spec.long_name == name) return &spec;
    }
    return nullptr;
  }

  static const OptionSpec* find_short(char name) {
    for (const OptionSpec& spec : option_specs) {
      if (spec.short_name == name) return &spec;
    }
    return nullptr;
  }

  ParseResult fail(std::string message) {
    result_.status = ParseStatus::error;
    result_.error = std::move(message);
    return result_;
  }

  void invalid(const OptionSpec& spec, std::string_view value, std::string_view expected) {
    fail("invalid value '" + std::string(value) + "' for " + display_name(spec) + ": expected " +
         std::string(expected));
  }

  // A whole number from `min` to `max` into `out`; else the option is invalid.
  template <typename Int>
  bool set_decimal(const OptionSpec& spec, std::string_view value, Int& out, Int min, Int max,
                   std::string_view expected) {
    if (parse_decimal(value, out) && out >= min && out <= max) return true;
    invalid(spec, value, expected);
    return false;
  }

  // A size (parse_size) from `min` to `max` bytes into `out`.
  void set_size(const OptionSpec& spec, std::string_view value, uint64_t& out, uint64_t min, uint64_t max,
                std::string_view expected) {
    if (!parse_size(value, out) || out < min || out > max) invalid(spec, value, expected);
  }

  // Text that `valid` accepts into `out`.
  void set_text(const OptionSpec& spec, std::string_view value, std::string& out, bool (*valid)(std::string_view),
                std::string_view expected) {
    out = std::string(value);
    if (!valid(value)) invalid(spec, value, expected);
  }

  void add_peer(const OptionSpec& spec, std::string_view value) {
    std::vector<replication::PeerAddress>& peers = result_.options.peers;
    replication::PeerAddress peer;
    std::string why;
    if (!replication::parse_peer_address(value, peer, why)) {
      invalid(spec, value, "HOST:PORT or [IPV6]:PORT (" + why + ")");
    } else if (peers.size() == peers_max) {
      fail("--peer given more than " + std::to_string(peers_max) + " times");
    } else if (std::any_of(peers.begin(), peers.end(),
                           [&](const auto& p) { return p.host == peer.host && p.port == peer.port; })) {
      fail("--peer " + std::string(value) + " is given twice");
    } else {
      peers.push_back(std::move(peer));
    }
  }

  // Routes each option to the setter for its kind of value.
  void apply(const OptionSpec& spec, std::string_view value) {
    Options& options = result_.options;
    constexpr int fd_max = std::numeric_limits<int>::max();
    switch (spec.id) {
      case OptionId::port:
        set_decimal(spec, value, options.port, uint16_t{0}, port_max, "a port number 0-65535");
        return;
      case OptionId::text_port:
        set_decimal(spec, value, options.text_port, uint16_t{0}, port_max, "a port number 0-65535 (0 = off)");
        return;
      case OptionId::listen:
        set_text(spec, value, options.listen_address, is_numeric_address, "a numeric IPv4 or IPv6 address");
        return;
      case OptionId::listen_fd:
        set_decimal(spec, value, options.listen_fd, 0, fd_max, "a file descriptor number");
        return;
      case OptionId::text_listen_fd:
        set_decimal(spec, value, options.text_listen_fd, 0, fd_max, "a file descriptor number");
        return;
      case OptionId::threads:
        set_decimal(spec, value, options.threads, 1u, threads_max, "a thread count 1-" + std::to_string(threads_max));
        return;
      case OptionId::memory:
        set_size(spec, value, options.memory_bytes, memory_bytes_min, memory_bytes_max,
                 "a size from 4M to 1024G (plain number = MiB; suffix K, M or G)");
        return;
      case OptionId::max_item:
        set_size(spec, value, options.item_bytes_max, item_min_bytes, std::numeric_limits<uint64_t>::max(),
                 "a size (plain number = MiB; suffix K, M or G)");
        return;
      case OptionId::upload_timeout:
        set_seconds_as_ms(spec, value, options.upload_idle_ms_max, upload_idle_s_max);
        return;
      case OptionId::auth_file:
        set_text(spec, value, options.auth_file, is_file_name, "a file name");
        return;
      case OptionId::peer:
        add_peer(spec, value);
        return;
      case OptionId::node_id:
        set_text(spec, value, options.node_id, is_valid_node_id,
                 "1-" + std::to_string(node_id_bytes_max) + " printable characters, no spaces");
        return;
      case OptionId::peer_secret_file:
        set_text(spec, value, options.peer_secret_file, is_file_name, "a file name");
        return;
      case OptionId::max_clock_skew:
        set_decimal(spec, value, options.max_clock_skew_s, 1u, clock_skew_s_max,
                    "seconds, 1-" + std::to_string(clock_skew_s_max));
        return;
      case OptionId::tls_cert:
        set_text(spec, value, options.tls_cert, is_file_name, "a file name");
        return;
      case OptionId::tls_key:
        set_text(spec, value, options.tls_key, is_file_name, "a file name");
        return;
      case OptionId::tls_key_fd:
        set_decimal(spec, value, options.tls_key_fd, 0, fd_max, "a file descriptor number");
        return;
      case OptionId::tls_ca:
        set_text(spec, value, options.tls_ca, is_file_name, "a file name");
        return;
      case OptionId::tls_verify_clients:
        options.tls_verify_clients = true;
        return;
      case OptionId::tls_handshake_timeout:
        set_seconds_as_ms(spec, value, options.tls_handshake_ms_max, tls_handshake_s_max);
        return;
      case OptionId::verbose:
        options.verbose = true;
        return;
      case OptionId::help:
        result_.status = ParseStatus::help;
        return;
      case OptionId::version:
        result_.status = ParseStatus::version;
        return;
    }
    fail("internal error: unhandled option " + display_name(spec));
  }

  // Whole seconds on the command line, milliseconds in Options.
  void set_seconds_as_ms(const OptionSpec& spec, std::string_view value, uint64_t& out_ms, uint64_t seconds_max) {
    uint64_t seconds = 0;
    if (set_decimal(spec, value, seconds, uint64_t{1}, seconds_max, "whole seconds 1-" + std::to_string(seconds_max))) {
      out_ms = seconds * 1000;
    }
  }

  ParseResult result_;
};

}  // namespace

bool parse_size(std::string_view text, uint64_t& bytes) {
  uint64_t unit = mib_bytes;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        unit = 1024;
        break;
      case 'm':
      case 'M':
        unit = mib_bytes;
        break;
      case 'g':
      case 'G':
        unit = 1024 * mib_bytes;
        break;
      default:
        unit = 0;
    }
    if (unit != 0) {
      text.remove_suffix(1);
    } else {
      unit = mib_bytes;
    }
  }
  uint64_t count = 0;
  if (!parse_decimal(text, count) || count == 0) return false;
  if (count > std::numeric_limits<uint64_t>::max() / unit) return false;
  bytes = count * unit;
  return true;
}

ParseResult parse_options(std::span<const char* const> args, uint32_t hardware_threads) {
  return Parser(hardware_threads).run(args);
}

TlsSettings tls_settings(const Options& options) {
  return TlsSettings{.cert_file = options.tls_cert,
                     .key_file = options.tls_key,
                     .key_fd = options.tls_key_fd,
                     .ca_file = options.tls_ca,
                     .verify_clients = options.tls_verify_clients,
                     .peer_links = !options.peers.empty()};
}

std::string usage_text() {
  return "usage: ringcached [-p PORT] [--text-port PORT] [-l ADDR] [-t THREADS] [-m SIZE]\n"
         "                  [--max-item SIZE] [--upload-timeout SECONDS]\n"
         "                  [--peer HOST:PORT]... [--node-id ID]\n"
         "                  [--peer-secret-file PATH] [--max-clock-skew SECONDS]\n"
         "                  [--auth-file PATH]\n"
         "                  [--tls-cert FILE {--tls-key FILE | --tls-key-fd N} [--tls-ca FILE]\n"
         "                   [--tls-verify-clients] [--tls-handshake-timeout SECONDS]]\n"
         "                  [--listen-fd N] [--text-listen-fd N] [-v] [-h] [-V]\n"
         "\n"
         "  -p, --port PORT        binary protocol port (default 8889; 0 picks a free port)\n"
         "      --text-port PORT   memcached text protocol port (default 11211; 0 = off)\n"
         "  -l, --listen ADDR      numeric address to listen on (default 0.0.0.0)\n"
         "  -t, --threads N        worker threads, one io_uring each (default: hardware threads)\n"
         "  -m, --memory SIZE      cache budget (default 64; plain number = MiB; K, M, G suffixes)\n"
         "      --max-item SIZE    largest key or value accepted (default SIZE/2)\n"
         "      --peer HOST:PORT   replicate with the node whose binary port this is (repeatable;\n"
         "                         every node of the mesh lists every other)\n"
         "      --node-id ID       this node's replication id (default: random 1-4095; an id 1-4095\n"
         "                         is also its version tag, others are hashed)\n"
         "      --peer-secret-file PATH\n"
         "                         authenticate every replication stream with this secret (32-4096\n"
         "                         bytes, the same file on every node, owned by this user, mode 600);\n"
         "                         without it streams are accepted from the --peer addresses only\n"
         "      --max-clock-skew SECONDS\n"
         "                         refuse a peer's writes stamped further ahead of this node's clock\n"
         "                         (default 10)\n"
         "      --auth-file PATH   clients must authenticate with a user:password line of this file\n"
         "                         (memcached's -Y format; owned by this user, mode 600) on every\n"
         "                         client port: AUTH on the binary port, memcached's `set` on text\n"
         "      --tls-cert FILE    TLS on both client ports with this PEM certificate chain\n"
         "      --tls-key FILE     and this PEM private key (both needed; TLS 1.2 or 1.3)\n"
         "      --tls-key-fd N     or the PEM private key read from this open descriptor\n"
         "                         (ringcached-privsep --tls-key passes it)\n"
         "      --tls-ca FILE      PEM certificates of the CA trusted for client certificates (asked\n"
         "                         for, not required) and, with --peer, for the mesh's replication\n"
         "                         links (then needed: both ends verify each other's certificate)\n"
         "      --tls-verify-clients\n"
         "                         refuse TLS clients without a certificate signed by --tls-ca\n"
         "      --tls-handshake-timeout SECONDS\n"
         "                         close a connection whose TLS handshake is not done by then\n"
         "                         (default 10)\n"
         "      --listen-fd N      serve this already listening socket as the binary port\n"
         "      --text-listen-fd N serve this already listening socket as the text port\n"
         "      --upload-timeout SECONDS\n"
         "                         close a connection stalled this long (no byte in or out) in the\n"
         "                         middle of a request, dropping its partial value (default 30)\n"
         "  -v, --verbose          log per-connection events\n"
         "  -h, --help             print this help\n"
         "  -V, --version          print the version\n"
         "\n"
         "systemd socket activation (LISTEN_FDS, names 'binary' and 'text') is understood.\n"
         "With TLS, SIGHUP reloads --tls-cert and --tls-key for new connections and links.\n";
}

std::string version_text() { return std::string("ringcached ") + RINGCACHE_VERSION + "\n"; }

}  // namespace ringcache::server
