#include "server/process/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/socket.h>

#include <cassert>
#include <stdexcept>

#include "server/listen_sockets.h"
#include "server/replication/secret_file.h"

namespace ringcache::server {
namespace {

static_assert(sizeof(AuthDigest) == SHA256_DIGEST_LENGTH);

// SHA256() works on a context on the stack: a worker checking credentials
// allocates nothing, so a failure here is not expected even out of memory.
bool digest(std::string_view bytes, AuthDigest& out) {
  return SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out.data()) != nullptr;
}

AuthDigest digest_or_throw(std::string_view bytes) {
  AuthDigest out{};
  if (!digest(bytes, out)) throw std::runtime_error("SHA-256 failed in libcrypto");
  return out;
}

bool is_user_byte(unsigned char byte) { return byte > ' ' && byte != 0x7F; }

std::string line_error(size_t line, const char* what) {
  return "line " + std::to_string(line) + ": " + what + " (each line is user:password)";
}

}  // namespace

bool AuthTable::parse(std::string_view text, AuthTable& table, std::string& error) {
  table.entries_.clear();
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    if (line_number > auth_file_lines_max) {
      error = "more than " + std::to_string(auth_file_lines_max) + " lines";
      return false;
    }
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      error = line_error(line_number, "no colon");
      return false;
    }
    const std::string_view user = line.substr(0, colon);
    const std::string_view password = line.substr(colon + 1);
    if (user.empty()) {
      error = line_error(line_number, "empty user");
      return false;
    }
    if (password.empty()) {
      error = line_error(line_number, "empty password");
      return false;
    }
    for (const char c : user) {
      if (!is_user_byte(static_cast<unsigned char>(c))) {
        error = line_error(line_number, "a space or control character in the user");
        return false;
      }
    }
    if (user.size() > auth_credential_bytes_max || password.size() > auth_credential_bytes_max) {
      error = line_error(line_number, ("a user or password longer than " +
                                       std::to_string(auth_credential_bytes_max) + " bytes").c_str());
      return false;
    }
    table.entries_.push_back(Entry{digest_or_throw(user), digest_or_throw(password)});
  }
  if (table.entries_.empty()) {
    error = "no user:password line";
    return false;
  }
  return true;
}

bool AuthTable::load(const std::string& path, AuthTable& table, std::string& error) {
  const replication::SecretFileRules rules{"--auth-file", 1, auth_file_bytes_max,
                                           "it needs at least one user:password line", ""};
  std::string bytes;
  if (replication::read_secret_file(path, rules, bytes, error) != replication::SecretFileStatus::ok) return false;
  std::string why;
  const bool ok = parse(bytes, table, why);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  if (!ok) error = "--auth-file " + path + ": " + why;
  return ok;
}

bool AuthTable::check(std::string_view user, std::string_view password) const {
  AuthDigest offered_user{};
  AuthDigest offered_password{};
  if (!digest(user, offered_user) || !digest(password, offered_password)) return false;
  // Every entry is compared, whatever matched before it.
  unsigned int matched = 0;
  for (const Entry& entry : entries_) {
    const int user_differs = CRYPTO_memcmp(entry.user.data(), offered_user.data(), offered_user.size());
    const int password_differs =
        CRYPTO_memcmp(entry.password.data(), offered_password.data(), offered_password.size());
    matched |= static_cast<unsigned int>((user_differs | password_differs) == 0);
  }
  return matched != 0;
}

void Authenticator::log_failure(int fd, const char* port, uint32_t failures) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  const std::string from = fd >= 0 && ::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0
                               ? describe_address(address, length)
                               : std::string("?");
  const char* outcome = failures >= auth_failures_max ? ", connection closed" : "";
  log_.refusal(replication::monotonic_ms(), "auth: client " + from + " on the " + port +
                                                " port failed to authenticate (failure " +
                                                std::to_string(failures) + " of " +
                                                std::to_string(auth_failures_max) + outcome + ")");
}

AuthAttempt ConnectionAuth::attempt(std::string_view user, std::string_view password) {
  assert(auth_ != nullptr && "only an authenticating daemon parses credentials");
  if (auth_->check(user, password)) {
    counters_.auth_cmds.add();
    authenticated_ = true;
    return AuthAttempt::accepted;
  }
  return refuse();
}

AuthAttempt ConnectionAuth::refuse() {
  assert(auth_ != nullptr);
  counters_.auth_cmds.add();
  counters_.auth_errors.add();
  ++failures_;
  auth_->log_failure(fd_, port_, failures_);
  return failures_ >= auth_failures_max ? AuthAttempt::refused_close : AuthAttempt::refused;
}

}  // namespace ringcache::server
