#include "server/protocol/text/text_peek.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstdint>

namespace ringcache::protocol::text {

namespace {

// Splits a line into space-separated tokens, one at a time.
class Tokens {
 public:
  explicit Tokens(std::string_view line) : rest_(line) {}
  std::string_view next() {
    while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
    const size_t end = std::min(rest_.find(' '), rest_.size());
    const std::string_view token = rest_.substr(0, end);
    rest_.remove_prefix(end);
    return token;
  }

 private:
  std::string_view rest_;
};

bool parse_size(std::string_view token, uint64_t& out) {
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), out);
  return ec == std::errc() && end == token.data() + token.size();
}

}  // namespace

size_t peek_text_keys(std::string_view input, std::string_view* keys, size_t max) {
  size_t found = 0;
  size_t pos = 0;
  while (found < max && pos < input.size()) {
    const size_t newline = input.find('\n', pos);
    if (newline == std::string_view::npos) break;
    std::string_view line = input.substr(pos, newline - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t next = newline + 1;
    Tokens tokens(line);
    const std::string_view command = tokens.next();
    if (command == "get" || command == "gets" || command == "gat" || command == "gats") {
      if (command == "gat" || command == "gats") tokens.next();  // exptime
      for (std::string_view key = tokens.next(); !key.empty() && found < max; key = tokens.next()) {
        keys[found++] = key;
      }
    } else if (command == "delete" || command == "incr" || command == "decr" || command == "touch" ||
               command == "mg" || command == "md" || command == "ma") {
      const std::string_view key = tokens.next();
      if (!key.empty()) keys[found++] = key;
    } else if (command == "set" || command == "add" || command == "replace" || command == "append" ||
               command == "prepend" || command == "cas" || command == "ms") {
      const std::string_view key = tokens.next();
      if (command != "ms") {
        tokens.next();  // flags
        tokens.next();  // exptime
      }
      uint64_t bytes = 0;
      if (key.empty() || !parse_size(tokens.next(), bytes)) break;
      // The data block and its "\r\n" must be here too.
      if (bytes > input.size() - next || input.size() - next - bytes < 2) break;
      next += bytes + 2;
      keys[found++] = key;
    } else {
      break;
    }
    assert(next > pos);
    pos = next;
  }
  assert(found <= max);
  assert(!(pos > input.size()));
  return found;
}

}  // namespace ringcache::protocol::text
