// The ringcached command line (docs/command_line.md), parsed without side effects so that
// it can be unit tested: parse_options() never prints and never exits; main()
// prints the error or the usage and picks the exit code (2 for bad usage).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "server/replication/peer_address.h"

namespace ringcache::server {

inline constexpr uint64_t mib_bytes = 1024ull * 1024;

// Bounds of the values the options accept.
inline constexpr uint32_t threads_max = 256;                   // StoreConfig::threads_max
inline constexpr uint64_t memory_bytes_min = 4 * mib_bytes;    // a few segments plus the index
inline constexpr uint64_t memory_bytes_max = 1ull << 40;       // 1 TiB
inline constexpr uint64_t item_min_bytes = 1;
inline constexpr size_t node_id_bytes_max = 64;
inline constexpr size_t peers_max = 64;                        // --peer given at most this often
inline constexpr uint32_t clock_skew_s_max = 24 * 3600;        // --max-clock-skew at most a day
// --upload-timeout (resource_limits.h, values still arriving): 30 s unless
// given, whole seconds up to a day.
inline constexpr uint64_t upload_idle_ms_default = 30 * 1000;
inline constexpr uint64_t upload_idle_s_max = 24 * 60 * 60;
// --tls-handshake-timeout (io/tls/tls_channel.h): a TLS handshake not done
// within 10 s is dropped unless given, whole seconds up to 5 minutes.
inline constexpr uint64_t tls_handshake_ms_default = 10 * 1000;
inline constexpr uint64_t tls_handshake_s_max = 300;

struct Options {
  uint16_t port = 8889;
  uint16_t text_port = 11211;  // 0 = off
  std::string listen_address = "0.0.0.0";
  uint32_t threads = 1;
  uint64_t memory_bytes = 64 * mib_bytes;
  uint64_t item_bytes_max = 32 * mib_bytes;  // memory_bytes / 2 unless given
  std::string node_id;                       // empty: chosen at random later
  std::vector<replication::PeerAddress> peers;  // --peer, in order; empty = no replication
  std::string peer_secret_file;              // empty: replication unauthenticated (v1 hello)
  uint32_t max_clock_skew_s = 10;
  std::string auth_file;                     // empty: clients need not authenticate (process/auth.h)
  int listen_fd = -1;                        // -1: bind listen_address:port
  int text_listen_fd = -1;
  // --upload-timeout: a connection stalled this long in the middle of a
  // request is closed (server/resource_limits.h).
  uint64_t upload_idle_ms_max = upload_idle_ms_default;
  // TLS on both client ports when tls_cert is set (io/tls/tls_context.h).
  std::string tls_cert;
  std::string tls_key;
  int tls_key_fd = -1;  // >= 0: --tls-key-fd, the key is read from it (io/tls/tls_key_fd.h)
  std::string tls_ca;
  bool tls_verify_clients = false;
  uint64_t tls_handshake_ms_max = tls_handshake_ms_default;
  bool verbose = false;
};

enum class ParseStatus : uint8_t {
  run,      // options are valid: start the daemon
  help,     // -h: print usage_text(), exit 0
  version,  // -V: print version_text(), exit 0
  error,    // print ParseResult::error and a hint, exit 2
};

struct ParseResult {
  ParseStatus status = ParseStatus::error;
  Options options;
  std::string error;
};

// args excludes the program name. hardware_threads is the default for -t.
ParseResult parse_options(std::span<const char* const> args, uint32_t hardware_threads);

// SIZE as docs/command_line.md defines it: a plain number is MiB; K, M, G (any case) are
// powers of 1024. Returns false on anything else, zero included, or overflow.
bool parse_size(std::string_view text, uint64_t& bytes);

std::string usage_text();
std::string version_text();

// The TLS part of the options, as TlsContext takes it (meaningful with
// --tls-cert); server/io/tls/tls_context.h defines it.
struct TlsSettings;
TlsSettings tls_settings(const Options& options);

}  // namespace ringcache::server
