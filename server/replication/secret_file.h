// Reading a file that holds secrets (--peer-secret-file, --auth-file): the
// daemon refuses, with a sentence fit for the start-up log, a file that
// others could read or change, that is not a regular file, that is owned by
// someone else, or whose size is outside the caller's bounds. One reader for
// every such file, so that they all get the same checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ringcache::replication {

enum class SecretFileStatus : uint8_t {
  ok,
  cannot_open,
  not_regular,       // a directory, a device, ...
  wrong_owner,       // owned by neither root nor the user the daemon runs as
  readable_by_others,
  too_short,         // fewer than SecretFileRules::bytes_min bytes
  too_long,          // more than SecretFileRules::bytes_max bytes
  read_failed,
};

struct SecretFileRules {
  std::string option;        // how messages name the file: "--peer-secret-file"
  size_t bytes_min = 1;
  size_t bytes_max = 0;
  std::string too_short;     // after "holds N bytes; ": what the file should hold
  std::string exposed_hint;  // after "chmod 600 it": e.g. to replace what others could read
};

// The file's bytes, exactly, in `bytes`. On failure, `error` says why (never
// the file's contents) and `bytes` is left empty; what was read is wiped.
// The caller wipes `bytes` (OPENSSL_cleanse) once done with them.
SecretFileStatus read_secret_file(const std::string& path, const SecretFileRules& rules, std::string& bytes,
                                  std::string& error);

}  // namespace ringcache::replication
