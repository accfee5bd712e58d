// Command line of ringcache-loadgen: every knob with its default and its
// accepted range, validated before any socket is opened.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "key_chooser.h"
#include "protocol_codec.h"

namespace ringcache::loadgen {

inline constexpr std::uint32_t threads_max = 256;
inline constexpr std::uint32_t connections_max = 10000;
inline constexpr std::uint32_t pipeline_depth_max = 4096;
inline constexpr std::uint64_t keys_max = std::uint64_t{1} << 40;
inline constexpr std::uint32_t key_size_bytes_max = 4096;
// memcached refuses longer keys (KEY_MAX_LENGTH).
inline constexpr std::uint32_t memcached_key_size_bytes_max = 250;
inline constexpr std::uint64_t value_size_bytes_max = std::uint64_t{1} << 30;
inline constexpr double duration_seconds_max = 24 * 3600;
inline constexpr double zipf_exponent_max = 10;

struct loadgen_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8889;
  std::uint32_t threads = 2;
  std::uint32_t connections = 50;
  std::uint32_t pipeline = 1;
  std::uint64_t keys = 100000;
  std::uint32_t key_size = 16;
  std::uint64_t value_size = 100;
  double get_ratio = 0.9;
  double duration_seconds = 10;
  double warmup_seconds = 1;
  bool prefill = false;
  popularity key_popularity{};
  protocol_kind protocol = protocol_kind::binary;
  std::optional<int> server_pid;
  std::uint64_t seed = 1;
  // TLS on every connection (handshakes before the warmup, outside the
  // measured interval); with a CA file the server's certificate is verified
  // against it and against --host, without one it is not verified.
  bool tls = false;
  std::string tls_ca_file;
};

enum class parse_status : std::uint8_t { run, help, invalid };

struct parse_result {
  parse_status status = parse_status::invalid;
  loadgen_options options{};
  std::string message;  // why the command line was refused
};

parse_result parse_options(int argc, const char* const* argv);
std::string usage_text();
std::string describe_popularity(const popularity& shape);

}  // namespace ringcache::loadgen
