// Unit tests of the load generator's supporting parts: the histogram's
// precision, the Zipf and uniform key choosers against their exact
// distributions, option validation, TLS set-up refusals, the echo server's
// framing and the reading of a process's CPU time.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "echo_request_parser.h"
#include "key_chooser.h"
#include "latency_histogram.h"
#include "options.h"
#include "process_cpu.h"
#include "tls_client.h"

using namespace ringcache::loadgen;

namespace {

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return std::vector<std::byte>(data, data + text.size());
}

parse_result parse(std::vector<const char*> arguments) {
  arguments.insert(arguments.begin(), "ringcache-loadgen");
  return parse_options(static_cast<int>(arguments.size()), arguments.data());
}

}  // namespace

TEST_CASE("histogram buckets keep the relative error under 1/128") {
  const std::uint64_t samples[] = {0,    1,         255,
                                   256,  257,       1000,
                                   123456789, (std::uint64_t{1} << 40) + 12345, UINT64_MAX - 1,
                                   UINT64_MAX};
  for (const std::uint64_t value : samples) {
    CAPTURE(value);
    const std::size_t index = latency_histogram::index_of(value);
    REQUIRE(index < latency_histogram::bucket_count);
    const std::uint64_t high = latency_histogram::highest_value_in(index);
    CHECK(high >= value);
    CHECK(static_cast<double>(high - value) <= static_cast<double>(value) / 128.0 + 1.0);
  }
  // Indexes grow with the value and every bucket starts right after the last.
  for (std::size_t index = 1; index < latency_histogram::bucket_count; ++index) {
    const std::uint64_t first = latency_histogram::highest_value_in(index - 1) + 1;
    REQUIRE(latency_histogram::index_of(first) == index);
  }
}

TEST_CASE("histogram quantiles of a known distribution") {
  latency_histogram histogram;
  CHECK(histogram.value_at_quantile(0.5) == 0);
  for (std::uint64_t value = 1; value <= 100000; ++value) histogram.record(value * 1000);
  CHECK(histogram.count() == 100000);
  CHECK(histogram.min() == 1000);
  CHECK(histogram.max() == 100000000);
  CHECK(histogram.value_at_quantile(0.5) == doctest::Approx(50e6).epsilon(0.01));
  CHECK(histogram.value_at_quantile(0.99) == doctest::Approx(99e6).epsilon(0.01));
  CHECK(histogram.value_at_quantile(0.999) == doctest::Approx(99.9e6).epsilon(0.01));
  CHECK(histogram.value_at_quantile(1.0) == 100000000);

  latency_histogram other;
  other.record(7);
  histogram.merge(other);
  CHECK(histogram.count() == 100001);
  CHECK(histogram.min() == 7);
  histogram.reset();
  CHECK(histogram.count() == 0);
}

TEST_CASE("zipf samples follow the exact distribution") {
  for (const double exponent : {0.5, 0.99, 1.0, 1.5}) {
    CAPTURE(exponent);
    constexpr std::uint64_t ranks = 10;
    constexpr int samples = 200000;
    zipf_sampler sampler(ranks, exponent);
    random_source random(42);
    std::vector<int> seen(ranks + 1, 0);
    for (int i = 0; i < samples; ++i) {
      const std::uint64_t rank = sampler.sample(random);
      REQUIRE(rank >= 1);
      REQUIRE(rank <= ranks);
      ++seen[rank];
    }
    double norm = 0;
    for (std::uint64_t rank = 1; rank <= ranks; ++rank) {
      norm += std::pow(static_cast<double>(rank), -exponent);
    }
    for (std::uint64_t rank = 1; rank <= ranks; ++rank) {
      const double expected = samples * std::pow(static_cast<double>(rank), -exponent) / norm;
      CAPTURE(rank);
      // Five standard deviations of a binomial count.
      CHECK(std::fabs(seen[rank] - expected) < 5 * std::sqrt(expected));
    }
  }
  zipf_sampler single(1, 1.2);
  random_source random(1);
  CHECK(single.sample(random) == 1);
}

TEST_CASE("uniform keys cover the key space and keys have a fixed spelling") {
  key_chooser chooser(7, popularity{});
  random_source random(3);
  std::vector<int> seen(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const std::uint64_t index = chooser.next_index(random);
    REQUIRE(index < 7);
    ++seen[index];
  }
  for (const int count : seen) CHECK(count > 800);
  char buffer[16];
  CHECK(format_key(42, buffer) == "k000000000000042");
  CHECK(format_key(0, std::span<char>(buffer, 2)) == "k0");
  CHECK(key_digits(1) == 1);
  CHECK(key_digits(10) == 1);
  CHECK(key_digits(11) == 2);
  CHECK(key_digits(100000) == 5);
}

TEST_CASE("options: defaults, both spellings, and clear refusals") {
  const parse_result defaults = parse({});
  REQUIRE(defaults.status == parse_status::run);
  CHECK(defaults.options.port == 8889);
  CHECK(defaults.options.connections == 50);
  CHECK(defaults.options.pipeline == 1);
  CHECK(defaults.options.protocol == protocol_kind::binary);

  const parse_result custom = parse({"--pipeline", "16", "--value-size=1M", "--popularity",
                                     "zipf:0.99", "--protocol", "text", "--prefill"});
  REQUIRE(custom.status == parse_status::run);
  CHECK(custom.options.pipeline == 16);
  CHECK(custom.options.value_size == 1048576);
  CHECK(custom.options.key_popularity.shape == popularity::kind::zipf);
  CHECK(custom.options.key_popularity.exponent == doctest::Approx(0.99));
  CHECK(custom.options.protocol == protocol_kind::text);
  CHECK(custom.options.prefill);

  const parse_result zero_pipeline = parse({"--pipeline", "0"});
  CHECK(zero_pipeline.status == parse_status::invalid);
  CHECK(zero_pipeline.message.find("--pipeline") != std::string::npos);
  CHECK(parse({"--get-ratio", "1.5"}).status == parse_status::invalid);
  CHECK(parse({"--duration", "0"}).status == parse_status::invalid);
  CHECK(parse({"--duration", "abc"}).status == parse_status::invalid);
  CHECK(parse({"--popularity", "zipf:-1"}).status == parse_status::invalid);
  CHECK(parse({"--port"}).status == parse_status::invalid);
  CHECK(parse({"--bogus", "1"}).status == parse_status::invalid);
  CHECK(parse({"--value-size", "2G"}).status == parse_status::invalid);
  const parse_result short_keys = parse({"--keys", "1000000", "--key-size", "4"});
  CHECK(short_keys.status == parse_status::invalid);
  CHECK(short_keys.message.find("at least 7") != std::string::npos);
  CHECK(parse({"--protocol", "text", "--key-size", "251"}).status == parse_status::invalid);
  CHECK(parse({"--protocol", "mcbin", "--key-size", "251"}).status == parse_status::invalid);
  CHECK(parse({"--protocol", "mcbin"}).options.protocol == protocol_kind::mcbin);
  CHECK(parse({"--help"}).status == parse_status::help);
}

TEST_CASE("options: --tls and --tls-ca") {
  CHECK_FALSE(parse({}).options.tls);
  const parse_result plain_tls = parse({"--tls"});
  REQUIRE(plain_tls.status == parse_status::run);
  CHECK(plain_tls.options.tls);
  CHECK(plain_tls.options.tls_ca_file.empty());
  const parse_result verified = parse({"--tls-ca", "ca.pem"});
  REQUIRE(verified.status == parse_status::run);
  CHECK(verified.options.tls);
  CHECK(verified.options.tls_ca_file == "ca.pem");
  CHECK(parse({"--tls-ca"}).status == parse_status::invalid);
  CHECK(parse({"--tls-ca="}).status == parse_status::invalid);
}

TEST_CASE("tls: a missing CA file and a peer that is not TLS are refused with a message") {
  std::string error;
  tls_client_context missing_ca;
  CHECK_FALSE(missing_ca.open("/nonexistent/ca.pem", error));
  CHECK(error.find("/nonexistent/ca.pem") != std::string::npos);

  tls_client_context context;
  error.clear();
  REQUIRE(context.open("", error));
  int pair[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);
  const std::string not_tls = "HTTP/1.0 400 Bad Request\r\n\r\n";
  REQUIRE(::write(pair[1], not_tls.data(), not_tls.size()) ==
          static_cast<ssize_t>(not_tls.size()));
  const ssl_handle session = context.connect(pair[0], "127.0.0.1", error);
  CHECK(session == nullptr);
  CHECK(error.find("TLS handshake failed") != std::string::npos);
  ::close(pair[0]);
  ::close(pair[1]);
}

TEST_CASE("echo framing finds every request, whole and split at every byte") {
  const std::string stream = std::string("\x0b\0\0\0\x01k\0\0\0\x03val", 13) +  // PUT
                             std::string("\x0d\0\0\0\x02kk", 7) +              // GET
                             std::string("\x0b\0\0\0\0\0\0\0\0", 9) +          // PUT, empty
                             std::string("\x0c\0\0\0\x01x", 6) +               // DEL
                             std::string("\x15", 1) +                          // STATS
                             std::string("\xc8", 1) +                          // unknown
                             std::string("\x0d\0\0\0\0", 5);                   // GET, empty key
  using echo::parsed_request;
  const std::vector<parsed_request> expected = {
      parsed_request::put, parsed_request::get, parsed_request::put, parsed_request::del,
      parsed_request::stats, parsed_request::unknown_opcode, parsed_request::get};
  const std::vector<std::byte> bytes = bytes_of(stream);
  for (const std::size_t piece : {std::size_t{1000}, std::size_t{3}, std::size_t{1}}) {
    CAPTURE(piece);
    echo::request_parser parser;
    std::vector<parsed_request> found;
    for (std::size_t start = 0; start < bytes.size(); start += piece) {
      std::span<const std::byte> input(bytes.data() + start, std::min(piece, bytes.size() - start));
      while (!input.empty()) {
        const echo::parse_step step = parser.parse(input);
        input = input.subspan(step.consumed);
        if (step.complete) found.push_back(step.request);
      }
    }
    CHECK(found == expected);
  }
}

TEST_CASE("process CPU time is read from /proc and a missing process is reported") {
  const std::optional<double> own = process_cpu_seconds(static_cast<int>(getpid()));
  REQUIRE(own.has_value());
  CHECK(*own >= 0.0);
  CHECK_FALSE(process_cpu_seconds(1 << 30).has_value());
}
