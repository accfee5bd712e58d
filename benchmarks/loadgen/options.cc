#include "options.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <optional>
#include <string_view>

#include "key_chooser.h"
#include "whole_number.h"

namespace ringcache::loadgen {

namespace {

struct option_error {
  std::string message;
};

template <class unsigned_type>
unsigned_type parse_unsigned(std::string_view name, std::string_view text, unsigned_type low,
                             unsigned_type high) {
  const std::optional<unsigned_type> value = parse_whole_number(text, low, high);
  if (!value) {
    throw option_error{"--" + std::string(name) + ": expected an integer in " +
                       std::to_string(low) + ".." + std::to_string(high) + ", got '" +
                       std::string(text) + "'"};
  }
  return *value;
}

double parse_real(std::string_view name, std::string_view text, double low, double high,
                  bool low_inclusive) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  const bool in_range = low_inclusive ? value >= low : value > low;
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() ||
      !std::isfinite(value) || !in_range || value > high) {
    throw option_error{"--" + std::string(name) + ": expected a number in " +
                       (low_inclusive ? "[" : "(") + std::to_string(low) + ", " +
                       std::to_string(high) + "], got '" + std::string(text) + "'"};
  }
  return value;
}

// A byte count with an optional K, M or G suffix (powers of 1024).
std::uint64_t parse_size(std::string_view name, std::string_view text, std::uint64_t high) {
  std::uint64_t multiplier = 1;
  std::string_view digits = text;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'K': case 'k': multiplier = std::uint64_t{1} << 10; break;
      case 'M': case 'm': multiplier = std::uint64_t{1} << 20; break;
      case 'G': case 'g': multiplier = std::uint64_t{1} << 30; break;
      default: break;
    }
    if (multiplier != 1) digits.remove_suffix(1);
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || error != std::errc{} || end != digits.data() + digits.size() ||
      value > high / multiplier) {
    throw option_error{"--" + std::string(name) + ": expected a size up to " +
                       std::to_string(high) + " bytes (suffixes K M G), got '" +
                       std::string(text) + "'"};
  }
  return value * multiplier;
}

popularity parse_popularity(std::string_view text) {
  if (text == "uniform") return popularity{popularity::kind::uniform, 0};
  constexpr std::string_view zipf_prefix = "zipf:";
  if (text.starts_with(zipf_prefix)) {
    const double exponent = parse_real("popularity zipf:S", text.substr(zipf_prefix.size()), 0.0,
                                       zipf_exponent_max, false);
    return popularity{popularity::kind::zipf, exponent};
  }
  throw option_error{"--popularity: expected 'uniform' or 'zipf:S' (S > 0), got '" +
                     std::string(text) + "'"};
}

protocol_kind parse_protocol(std::string_view text) {
  if (text == "binary") return protocol_kind::binary;
  if (text == "text") return protocol_kind::text;
  if (text == "mcbin") return protocol_kind::mcbin;
  throw option_error{"--protocol: expected 'binary', 'text' or 'mcbin', got '" + std::string(text) +
                     "'"};
}

void check_consistency(const loadgen_options& options) {
  const std::size_t needed = 1 + key_digits(options.keys);
  if (options.key_size < needed) {
    throw option_error{"--key-size " + std::to_string(options.key_size) + " is too short for " +
                       std::to_string(options.keys) + " keys: it needs at least " +
                       std::to_string(needed) + " bytes"};
  }
  if (options.protocol != protocol_kind::binary && options.key_size > memcached_key_size_bytes_max) {
    throw option_error{"--key-size: memcached's protocols allow at most " +
                       std::to_string(memcached_key_size_bytes_max) + " bytes"};
  }
}

}  // namespace

std::string usage_text() {
  return R"(usage: ringcache-loadgen [options]
Drives a ringcache (binary protocol) or memcached-compatible (text or binary
protocol) server with a closed-loop load and reports throughput and latency.

  --host HOST           server address (127.0.0.1)
  --port PORT           server port (8889)
  --threads N           client threads, each with its own epoll (2)
  --connections N       connections in total, spread over the threads (50)
  --pipeline N          requests kept in flight per connection (1)
  --keys N              size of the key space (100000)
  --key-size BYTES      key length; keys are k000..0<index> (16)
  --value-size BYTES    PUT value length, suffixes K M G allowed (100)
  --get-ratio R         fraction of requests that are GETs, 0..1 (0.9)
  --duration SECONDS    measured interval (10)
  --warmup SECONDS      load before measuring, not counted (1)
  --prefill             PUT every key once before the warmup
  --popularity P        uniform | zipf:S, rank r drawn with weight r^-S (uniform)
  --protocol P          binary | text (memcached set/get) | mcbin (memcached's
                        binary protocol: set, get, getq batches ending in noop)
                        (binary)
  --server-pid PID      report the server's CPU time per million requests
  --seed N              random seed; threads derive theirs from it (1)
  --tls                 speak TLS (handshakes happen before the warmup and are
                        not measured); the server's certificate is not checked
  --tls-ca FILE         implies --tls and verifies the server's certificate
                        against this CA and against --host
  -h, --help            this text

Prints one progress line per second on stderr, then a summary and a single
'RESULT key=value ...' line on stdout. Exit status: 0 done, 1 connection or
protocol failure, 2 bad command line.
)";
}

std::string describe_popularity(const popularity& shape) {
  if (shape.shape == popularity::kind::uniform) return "uniform";
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, shape.exponent).ptr;
  return "zipf:" + std::string(buffer, end);
}

parse_result parse_options(int argc, const char* const* argv) {
  parse_result result;
  loadgen_options& options = result.options;
  using setter = std::function<void(std::string_view)>;
  struct option_spec {
    std::string_view name;
    setter apply;
  };
  const option_spec specs[] = {
      {"host", [&](std::string_view v) {
         if (v.empty()) throw option_error{"--host: must not be empty"};
         options.host = std::string(v);
       }},
      {"port", [&](std::string_view v) {
         options.port = parse_unsigned<std::uint16_t>("port", v, 1, 65535);
       }},
      {"threads", [&](std::string_view v) {
         options.threads = parse_unsigned<std::uint32_t>("threads", v, 1, threads_max);
       }},
      {"connections", [&](std::string_view v) {
         options.connections = parse_unsigned<std::uint32_t>("connections", v, 1, connections_max);
       }},
      {"pipeline", [&](std::string_view v) {
         options.pipeline = parse_unsigned<std::uint32_t>("pipeline", v, 1, pipeline_depth_max);
       }},
      {"keys", [&](std::string_view v) {
         options.keys = parse_unsigned<std::uint64_t>("keys", v, 1, keys_max);
       }},
      {"key-size", [&](std::string_view v) {
         options.key_size = parse_unsigned<std::uint32_t>("key-size", v, 2, key_size_bytes_max);
       }},
      {"value-size", [&](std::string_view v) {
         options.value_size = parse_size("value-size", v, value_size_bytes_max);
       }},
      {"get-ratio", [&](std::string_view v) {
         options.get_ratio = parse_real("get-ratio", v, 0.0, 1.0, true);
       }},
      {"duration", [&](std::string_view v) {
         options.duration_seconds = parse_real("duration", v, 0.0, duration_seconds_max, false);
       }},
      {"warmup", [&](std::string_view v) {
         options.warmup_seconds = parse_real("warmup", v, 0.0, duration_seconds_max, true);
       }},
      {"popularity", [&](std::string_view v) { options.key_popularity = parse_popularity(v); }},
      {"protocol", [&](std::string_view v) { options.protocol = parse_protocol(v); }},
      {"server-pid", [&](std::string_view v) {
         options.server_pid = parse_unsigned<int>("server-pid", v, 1, 1 << 30);
       }},
      {"tls-ca", [&](std::string_view v) {
         if (v.empty()) throw option_error{"--tls-ca: must not be empty"};
         options.tls = true;
         options.tls_ca_file = std::string(v);
       }},
      {"seed", [&](std::string_view v) {
         options.seed = parse_unsigned<std::uint64_t>("seed", v, 0, UINT64_MAX);
       }},
  };

  try {
    for (int i = 1; i < argc; ++i) {
      std::string_view argument = argv[i];
      if (argument == "-h" || argument == "--help") {
        result.status = parse_status::help;
        return result;
      }
      if (argument == "--prefill") {
        options.prefill = true;
        continue;
      }
      if (argument == "--tls") {
        options.tls = true;
        continue;
      }
      if (!argument.starts_with("--")) {
        throw option_error{"unexpected argument '" + std::string(argument) + "'"};
      }
      argument.remove_prefix(2);
      std::string_view value;
      bool has_value = false;
      if (const std::size_t equals = argument.find('='); equals != std::string_view::npos) {
        value = argument.substr(equals + 1);
        argument = argument.substr(0, equals);
        has_value = true;
      }
      const option_spec* match = nullptr;
      for (const option_spec& spec : specs) {
        if (spec.name == argument) match = &spec;
      }
      if (match == nullptr) throw option_error{"unknown option --" + std::string(argument)};
      if (!has_value) {
        if (i + 1 >= argc) throw option_error{"--" + std::string(argument) + " needs a value"};
        value = argv[++i];
      }
      match->apply(value);
    }
    check_consistency(options);
  } catch (const option_error& error) {
    result.status = parse_status::invalid;
    result.message = error.message;
    return result;
  }
  result.status = parse_status::run;
  return result;
}

}  // namespace ringcache::loadgen
