// Client authentication (--auth-file, docs/command_line.md and README.md,
// "Authentication"). Two pieces, whatever the protocol:
// - Authenticator: the credentials of the auth file, loaded once at start-up
//   and read-only afterwards (shared by every worker), and the rate-limited
//   log of failures;
// - ConnectionAuth: one connection's state. A session of any protocol asks
//   it "is this connection authenticated?" and "try these credentials"; how
//   credentials travel is the protocol's business (binary: AUTH, opcode 31;
//   text: memcached's `set` of "user password").
// Without --auth-file there is no Authenticator and every ConnectionAuth is
// authenticated from the start.
//
// Passwords are never kept or logged: the table holds SHA-256 digests of
// every user and password, and an attempt compares the digests of what was
// offered with every entry using CRYPTO_memcmp, so the time taken says
// nothing about which bytes, or how many, matched.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/non_copyable.h"
#include "server/process/binary_stats.h"
#include "server/protocol/binary/binary_parser.h"
#include "server/replication/trust_log.h"

namespace ringcache::server {

// The auth file is read whole at start-up: at most this many bytes, and
// this many `user:password` lines.
inline constexpr size_t auth_file_bytes_max = 256 * 1024;
inline constexpr size_t auth_file_lines_max = 4096;
// A user or password must fit the binary protocol's AUTH fields, so that
// every entry of the file can be used.
inline constexpr size_t auth_credential_bytes_max = protocol::ParserLimits::auth_field_bytes_max;
// Failed attempts one connection may make; the last one closes it.
inline constexpr uint32_t auth_failures_max = 3;

// SHA-256.
using AuthDigest = std::array<unsigned char, 32>;

class AuthTable {
 public:
  // The lines of an auth file: `user:password`, memcached's -Y format (the
  // password is everything after the first colon; a line may end "\r\n").
  // False, with `error` naming the line, for a line with no colon, an empty
  // user or password, a user with spaces or control characters, a user or
  // password longer than auth_credential_bytes_max, no line at all, or more
  // than auth_file_lines_max lines. Never puts a password into `error`.
  static bool parse(std::string_view text, AuthTable& table, std::string& error);
  // Reads and parses `path` (server/replication/secret_file.h: refused if
  // others may read or write it, if it is not a regular file, empty, or
  // larger than auth_file_bytes_max). `error` starts with "--auth-file PATH".
  static bool load(const std::string& path, AuthTable& table, std::string& error);

  // Whether `user` and `password` are one of the entries, in a time that
  // depends only on the number of entries.
  bool check(std::string_view user, std::string_view password) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    AuthDigest user;
    AuthDigest password;
  };
  std::vector<Entry> entries_;
};

class Authenticator : NonCopyable {
 public:
  // `log`: where failures are logged (rate-limited, replication/trust_log.h).
  Authenticator(AuthTable table, replication::LogSink log) : table_(std::move(table)), log_(log) {}

  bool check(std::string_view user, std::string_view password) const { return table_.check(user, password); }
  // A failed attempt of the connection on `fd`: one log line (rate-limited) with the peer's address.
  void log_failure(int fd, const char* port, uint32_t failures);

 private:
  const AuthTable table_;
  replication::TrustLog log_;
};

enum class AuthAttempt : uint8_t {
  accepted,
  refused,        // answer the protocol's failure; the connection goes on
  refused_close,  // the auth_failures_max-th failure: answer, then close the connection
};

class ConnectionAuth {
 public:
  // `auth`: nullptr without --auth-file. `counters`: the worker's (auth_cmds,
  // auth_errors). `fd` and `port` ("binary", "text") only name the
  // connection in the log.
  ConnectionAuth(Authenticator* auth, ThreadCounters& counters, int fd, const char* port)
      : auth_(auth), counters_(counters), fd_(fd), port_(port), authenticated_(auth == nullptr) {}

  // Whether the daemon has --auth-file (credentials are checked at all).
  bool required() const { return auth_ != nullptr; }
  bool authenticated() const { return authenticated_; }
  // Checks the credentials. A success authenticates the connection; a
  // failure of an authenticated connection leaves it authenticated (but
  // counts towards auth_failures_max).
  AuthAttempt attempt(std::string_view user, std::string_view password);
  // An attempt that carried no usable credentials (a malformed token, a
  // field too long): a failure like a wrong password.
  AuthAttempt refuse();

 private:
  Authenticator* auth_;
  ThreadCounters& counters_;
  int fd_;
  const char* port_;
  bool authenticated_;
  uint32_t failures_ = 0;
};

}  // namespace ringcache::server
