#include "server/protocol/text/text_command.h"

#include <cassert>
#include <cstring>
#include <iterator>
#include <limits>

namespace ringcache::protocol::text {

namespace {

// More tokens than any fixed-shape command accepts; longer lines are only
// valid for the commands that read the rest of the line themselves
// (retrieval keys, stats arguments) or ignore it (version, quit, mn).
constexpr size_t tokens_max = 24;

struct Tokens {
  std::array<std::string_view, tokens_max> items;
  size_t count = 0;
  bool truncated = false;  // the line has more than tokens_max tokens
};

// memcached separates tokens by spaces only; any other byte belongs to a token.
Tokens tokenize(std::string_view line) {
  Tokens tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i == line.size()) break;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (tokens.count == tokens_max) {
      tokens.truncated = true;
      break;
    }
    tokens.items[tokens.count++] = line.substr(start, i - start);
  }
  assert(tokens.count <= tokens_max);
  assert(!(tokens.truncated && tokens.count < tokens_max));
  return tokens;
}

std::string_view trim_spaces(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// The line after `token` (a view into it), without surrounding spaces.
std::string_view rest_after(std::string_view line, std::string_view token) {
  const auto end = static_cast<size_t>(token.data() + token.size() - line.data());
  assert(end <= line.size());
  return trim_spaces(line.substr(end));
}

// Unsigned decimal, optional '+' (as strtoull accepts), at least one digit.
bool parse_u64(std::string_view text, uint64_t& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  uint64_t result = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (result > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    result = result * 10 + digit;
  }
  // At least one digit was read, and a non-zero one left its mark.
  assert(!text.empty());
  assert(!(result == 0 && text.find_first_not_of('0') != std::string_view::npos));
  value = result;
  return true;
}

bool parse_u32(std::string_view text, uint32_t& value) {
  uint64_t wide = 0;
  if (!parse_u64(text, wide) || wide > std::numeric_limits<uint32_t>::max()) return false;
  value = static_cast<uint32_t>(wide);
  return true;
}

bool parse_i64(std::string_view text, int64_t& value) {
  const bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  uint64_t magnitude = 0;
  if (!parse_u64(text, magnitude)) return false;
  constexpr auto positive_max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (magnitude > positive_max + (negative ? 1 : 0)) return false;
  assert(magnitude <= positive_max + 1);
  assert(!(!negative && magnitude > positive_max));
  value = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
  return true;
}

bool valid_key(std::string_view key) {
  if (key.empty() || key.size() > ParserLimits::key_bytes_max) return false;
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= ' ' || byte == 0x7F) return false;
  }
  return true;
}

// Every key of a retrieval line must be valid before any is answered: memcached
// answers a multi-get with one bad key by the error alone.
bool valid_keys(std::string_view keys) {
  std::string_view key;
  while (next_key(keys, key))
    if (!valid_key(key)) return false;
  return true;
}

int base64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with padding; false on any malformed input or an empty key.
bool decode_base64_key(std::string_view text, DecodedKey& out, std::string_view& key) {
  if (text.empty() || text.size() % 4 != 0) return false;
  size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  const size_t size = text.size() / 4 * 3 - padding;
  if (size == 0 || size > out.size()) return false;
  size_t written = 0;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t group = 0;
    for (size_t j = 0; j < 4; ++j) {
      const bool pad_position = i + j >= text.size() - padding;
      const int digit = pad_position ? (text[i + j] == '=' ? 0 : -1) : base64_digit(text[i + j]);
      if (digit < 0) return false;
      group = group << 6 | static_cast<uint32_t>(digit);
    }
    const char bytes[3] = {static_cast<char>(group >> 16), static_cast<char>(group >> 8), static_cast<char>(group)};
    for (size_t j = 0; j < 3 && written < size; ++j) out[written++] = bytes[j];
  }
  assert(written == size);
  assert(!(size > out.size()));
  key = std::string_view(out.data(), size);
  return true;
}

Command classic_command(std::string_view name) {
  // A token: never empty, never a space in it.
  assert(!name.empty());
  assert(name.find(' ') == std::string_view::npos);
  struct Entry {
    std::string_view name;
    Command command;
  };
  static constexpr Entry table[] = {
      {"get", Command::get},         {"gets", Command::gets},        {"gat", Command::gat},
      {"gats", Command::gats},       {"set", Command::set},          {"add", Command::add},
      {"replace", Command::replace}, {"append", Command::append},    {"prepend", Command::prepend},
      {"cas", Command::cas},         {"delete", Command::del},       {"incr", Command::incr},
      {"decr", Command::decr},       {"touch", Command::touch},      {"flush_all", Command::flush_all},
      {"stats", Command::stats},     {"version", Command::version},  {"verbosity", Command::verbosity},
      {"quit", Command::quit},       {"mg", Command::meta_get},      {"ms", Command::meta_set},
      {"md", Command::meta_delete},  {"ma", Command::meta_arithmetic}, {"mn", Command::meta_noop},
  };
  for (const Entry& entry : table)
    if (entry.name == name) return entry.command;
  return Command::none;
}

LineOutcome fail(Event& event, Error error) {
  event.kind = EventKind::error;
  event.error = error;
  return {};
}

LineOutcome fail_after_data(Event& event, Error error) {
  event.kind = EventKind::error;
  event.error = error;
  return {true};
}

LineOutcome parse_retrieval(std::string_view line, const Tokens& tokens, Event& event) {
  assert(tokens.count >= 1);
  assert(is_retrieval(event.command));
  if (tokens.count < 2) return fail(event, Error::unknown_command);
  std::string_view after = tokens.items[0];
  if (touches(event.command)) {
    if (!parse_i64(tokens.items[1], event.exptime)) return fail(event, Error::bad_exptime);
    after = tokens.items[1];
  }
  event.keys = rest_after(line, after);
  if (!valid_keys(event.keys)) return fail(event, Error::bad_command_line);
  return {};
}

LineOutcome parse_storage(const Tokens& tokens, const ParserLimits& limits, Event& event) {
  const size_t fixed = event.command == Command::cas ? 6 : 5;
  if (tokens.truncated || (tokens.count != fixed && tokens.count != fixed + 1))
    return fail(event, Error::unknown_command);
  event.noreply = tokens.count == fixed + 1 && tokens.items[fixed] == "noreply";
  // A size this close to 2^64 cannot be skipped with its "\r\n" counted.
  if (!parse_u64(tokens.items[4], event.value_size) || event.value_size > std::numeric_limits<uint64_t>::max() - 2)
    return fail(event, Error::bad_command_line);
  event.key = tokens.items[1];
  const bool fields_ok = valid_key(event.key) && parse_u32(tokens.items[2], event.flags) &&
                         parse_i64(tokens.items[3], event.exptime) &&
                         (event.command != Command::cas || parse_u64(tokens.items[5], event.number));
  if (!fields_ok) return fail_after_data(event, Error::bad_command_line);
  if (event.value_size > limits.item_bytes_max) return fail_after_data(event, Error::too_large);
  assert(!event.key.empty());
  assert(!(tokens.count > fixed + 1));
  return {true};
}

LineOutcome parse_delete(const Tokens& tokens, Event& event) {
  if (tokens.truncated || tokens.count < 2 || tokens.count > 4) return fail(event, Error::unknown_command);
  event.noreply = tokens.count >= 3 && tokens.items[tokens.count - 1] == "noreply";
  // "0" is the hold time of memcached < 1.4, still accepted when it is zero.
  const bool hold_is_zero = tokens.count >= 3 && tokens.items[2] == "0";
  const bool shape_ok = tokens.count == 2 || (tokens.count == 3 && (hold_is_zero || event.noreply)) ||
                        (tokens.count == 4 && hold_is_zero && event.noreply);
  if (!shape_ok) return fail(event, Error::delete_usage);
  event.key = tokens.items[1];
  if (!valid_key(event.key)) return fail(event, Error::bad_command_line);
  assert(!event.key.empty());
  assert(!(tokens.count > 4));
  return {};
}

// incr, decr, touch: <key> <number> [noreply].
LineOutcome parse_key_number(const Tokens& tokens, Event& event) {
  if (tokens.truncated || (tokens.count != 3 && tokens.count != 4)) return fail(event, Error::unknown_command);
  event.noreply = tokens.count == 4 && tokens.items[3] == "noreply";
  event.key = tokens.items[1];
  if (!valid_key(event.key)) return fail(event, Error::bad_command_line);
  if (event.command == Command::touch) {
    if (!parse_i64(tokens.items[2], event.exptime)) return fail(event, Error::bad_exptime);
  } else if (!parse_u64(tokens.items[2], event.number)) {
    return fail(event, Error::bad_delta);
  }
  assert(!event.key.empty());
  assert(!(tokens.count > 4));
  return {};
}

LineOutcome parse_flush_all(const Tokens& tokens, Event& event) {
  if (tokens.truncated || tokens.count > 3) return fail(event, Error::unknown_command);
  event.noreply = tokens.count >= 2 && tokens.items[tokens.count - 1] == "noreply";
  const size_t arguments = tokens.count - 1 - (event.noreply ? 1 : 0);
  if (arguments > 0 && !parse_i64(tokens.items[1], event.exptime)) return fail(event, Error::bad_exptime);
  return {};
}

LineOutcome parse_verbosity(const Tokens& tokens, Event& event) {
  if (tokens.truncated || (tokens.count != 2 && tokens.count != 3)) return fail(event, Error::unknown_command);
  event.noreply = tokens.items[tokens.count - 1] == "noreply";
  uint32_t level = 0;
  if (!parse_u32(tokens.items[1], level)) return fail(event, Error::bad_command_line);
  event.number = level;
  return {};
}

// Which flags a meta command accepts, and how its flag errors read.
struct MetaGrammar {
  std::string_view letters;
  // md and ma answer every flag problem with one message.
  bool single_flag_error;
};

MetaGrammar meta_grammar(Command command) {
  switch (command) {
    case Command::meta_get: return {"bcfhklOqstuvNRT", false};
    case Command::meta_set: return {"bcCFIkOqsTMN", false};
    case Command::meta_delete: return {"bCIkOqTx", true};
    case Command::meta_arithmetic: return {"bCNJDTMqOtcvk", true};
    default: break;
  }
  assert(false && "not a meta command with flags");
  return {"", true};
}

Error parse_meta_mode(Command command, std::string_view token, MetaRequest& meta) {
  // parse_meta gave both commands their default mode before any flag.
  assert(meta.mode != 0);
  assert(!(command != Command::meta_set && command != Command::meta_arithmetic));
  if (command == Command::meta_set) {
    if (token.size() != 1) return Error::meta_mode_length;
    if (std::string_view("SEAPR").find(token[0]) == std::string_view::npos) return Error::meta_ms_mode;
    meta.mode = token[0];
    return Error::none;
  }
  if (token.empty()) return Error::meta_bad_flag;
  if (token.size() != 1) return Error::meta_ma_mode;
  switch (token[0]) {
    case 'I': case '+': meta.mode = 'I'; return Error::none;
    case 'D': case '-': meta.mode = 'D'; return Error::none;
    default: return Error::meta_ma_mode;
  }
}

// One flag token: its letter, then its argument for the letters that take one
// (other letters ignore anything after them, as memcached does).
Error parse_meta_flag(Command command, const MetaGrammar& grammar, std::string_view token, MetaRequest& meta) {
  assert(!token.empty());
  const char letter = token[0];
  const Error flag_error = grammar.single_flag_error ? Error::meta_bad_flag : Error::meta_invalid_flag;
  if (grammar.letters.find(letter) == std::string_view::npos) return flag_error;
  if (meta.has(letter)) return grammar.single_flag_error ? Error::meta_bad_flag : Error::meta_duplicate_flag;
  meta.present |= MetaRequest::bit(letter);
  assert(meta.count < meta.order.size());
  meta.order[meta.count++] = letter;

  const std::string_view argument = token.substr(1);
  const Error number_error = grammar.single_flag_error ? Error::meta_bad_flag : Error::meta_bad_token;
  switch (letter) {
    case 'O':
      if (argument.size() > ParserLimits::opaque_bytes_max) return Error::meta_opaque_too_long;
      meta.opaque = argument;
      return Error::none;
    case 'T': return parse_i64(argument, meta.ttl) ? Error::none : number_error;
    case 'N': return parse_i64(argument, meta.vivify_ttl) ? Error::none : number_error;
    case 'R': return parse_i64(argument, meta.recache_ttl) ? Error::none : number_error;
    case 'C': return parse_u64(argument, meta.compare_cas) ? Error::none : number_error;
    case 'D': return parse_u64(argument, meta.delta) ? Error::none : number_error;
    case 'J': return parse_u64(argument, meta.initial) ? Error::none : number_error;
    case 'F': return parse_u32(argument, meta.client_flags) ? Error::none : Error::bad_command_line;
    case 'M': return parse_meta_mode(command, argument, meta);
    default: return Error::none;
  }
}

LineOutcome parse_meta(const Tokens& tokens, const ParserLimits& limits, Event& event, MetaRequest& meta,
                       DecodedKey& decoded_key) {
  assert(event.kind == EventKind::request);
  assert(!(event.command != Command::meta_get && event.command != Command::meta_set &&
           event.command != Command::meta_delete && event.command != Command::meta_arithmetic));
  const bool is_set = event.command == Command::meta_set;
  if (tokens.count < 2) return fail(event, Error::unknown_command);
  meta = MetaRequest{};
  meta.mode = is_set ? 'S' : event.command == Command::meta_arithmetic ? 'I' : 0;
  event.meta = &meta;
  meta.key_token = tokens.items[1];

  LineOutcome outcome;
  size_t first_flag = 2;
  if (is_set) {
    if (tokens.count < 3 || !parse_u64(tokens.items[2], event.value_size) ||
        event.value_size > std::numeric_limits<uint64_t>::max() - 2)
      return fail(event, Error::bad_command_line);
    outcome.data_follows = true;
    first_flag = 3;
  }
  const auto fail_meta = [&](Error error) {
    event.kind = EventKind::error;
    event.error = error;
    return outcome;
  };
  if (meta.key_token.size() > ParserLimits::key_bytes_max) return fail_meta(Error::bad_command_line);
  if (tokens.truncated || tokens.count > ParserLimits::meta_tokens_max)
    return fail_meta(event.command == Command::meta_get ? Error::meta_mg_too_many_flags : Error::meta_too_many_flags);

  const MetaGrammar grammar = meta_grammar(event.command);
  for (size_t i = first_flag; i < tokens.count; ++i) {
    const Error error = parse_meta_flag(event.command, grammar, tokens.items[i], meta);
    if (error != Error::none) return fail_meta(error);
  }
  if (meta.has('b')) {
    // md and ma report a bad base64 key like any other flag problem (memcached 1.6.18).
    if (!decode_base64_key(meta.key_token, decoded_key, event.key))
      return fail_meta(grammar.single_flag_error ? Error::meta_bad_flag : Error::meta_key_decode);
  } else {
    event.key = meta.key_token;
    if (!valid_key(event.key)) return fail_meta(Error::bad_command_line);
  }
  if (is_set && event.value_size > limits.item_bytes_max) return fail_meta(Error::too_large);
  assert(event.meta == &meta);
  assert(!(outcome.data_follows && !is_set));
  return outcome;
}

}  // namespace

bool next_key(std::string_view& keys, std::string_view& key) {
  while (!keys.empty() && keys.front() == ' ') keys.remove_prefix(1);
  if (keys.empty()) return false;
  const size_t end = std::min(keys.find(' '), keys.size());
  key = keys.substr(0, end);
  keys.remove_prefix(end);
  return true;
}

bool starts_retrieval_command(std::string_view line_start, size_t scan_bytes) {
  const std::string_view scanned = line_start.substr(0, scan_bytes);
  const size_t begin = scanned.find_first_not_of(' ');
  if (begin == std::string_view::npos) return false;
  const size_t end = scanned.find(' ', begin);
  if (end == std::string_view::npos) return false;
  const std::string_view name = scanned.substr(begin, end - begin);
  return name == "get" || name == "gets" || name == "gat" || name == "gats";
}

namespace {

LineOutcome dispatch(std::string_view line, const ParserLimits& limits, Event& event, MetaRequest& meta,
                     DecodedKey& decoded_key) {
  assert(event.kind == EventKind::request);
  const Tokens tokens = tokenize(line);
  if (tokens.count == 0) return fail(event, Error::unknown_command);
  event.command = classic_command(tokens.items[0]);
  switch (event.command) {
    case Command::none:
      return fail(event, Error::unknown_command);
    case Command::get:
    case Command::gets:
    case Command::gat:
    case Command::gats:
      return parse_retrieval(line, tokens, event);
    case Command::set:
    case Command::add:
    case Command::replace:
    case Command::append:
    case Command::prepend:
    case Command::cas:
      return parse_storage(tokens, limits, event);
    case Command::del:
      return parse_delete(tokens, event);
    case Command::incr:
    case Command::decr:
    case Command::touch:
      return parse_key_number(tokens, event);
    case Command::flush_all:
      return parse_flush_all(tokens, event);
    case Command::verbosity:
      return parse_verbosity(tokens, event);
    case Command::stats:
      event.data = rest_after(line, tokens.items[0]);
      return {};
    case Command::version:
    case Command::quit:
    case Command::meta_noop:
      // memcached ignores anything after these.
      return {};
    case Command::meta_get:
    case Command::meta_set:
    case Command::meta_delete:
    case Command::meta_arithmetic:
      return parse_meta(tokens, limits, event, meta, decoded_key);
  }
  assert(false && "unhandled command");
  return fail(event, Error::unknown_command);
}

}  // namespace

LineOutcome parse_command_line(std::string_view line, const ParserLimits& limits, Event& event,
                               MetaRequest& meta, DecodedKey& decoded_key) {
  event = Event{};
  event.kind = EventKind::request;
  const LineOutcome outcome = dispatch(line, limits, event, meta, decoded_key);
  assert(event.kind == EventKind::request || event.kind == EventKind::error);
  // A data block is only ever announced with a size that can be skipped with its "\r\n".
  assert(!(outcome.data_follows && event.value_size > std::numeric_limits<uint64_t>::max() - 2));
  if (event.kind == EventKind::error && event.error != Error::too_large) {
    // Fields read before the error may be invalid (a key too long); an error
    // carries only what its reply depends on.
    event.key = {};
    event.keys = {};
    event.data = {};
    event.meta = nullptr;
  }
  return outcome;
}

namespace {

// One reply line per Error, in the enum's order (text_parser.h); none has no line.
constexpr std::string_view error_lines[] = {
    "",
    "ERROR\r\n",
    "CLIENT_ERROR bad command line format\r\n",
    "CLIENT_ERROR bad data chunk\r\n",
    "CLIENT_ERROR invalid numeric delta argument\r\n",
    "CLIENT_ERROR invalid exptime argument\r\n",
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
    "CLIENT_ERROR line too long\r\n",
    "SERVER_ERROR object too large for cache\r\n",
    "CLIENT_ERROR invalid flag\r\n",
    "CLIENT_ERROR duplicate flag\r\n",
    "CLIENT_ERROR invalid or duplicate flag\r\n",
    "CLIENT_ERROR bad token in command line format\r\n",
    "CLIENT_ERROR error decoding key\r\n",
    "CLIENT_ERROR opaque token too long\r\n",
    "CLIENT_ERROR invalid mode for ms M token\r\n",
    "CLIENT_ERROR invalid mode for ma M token\r\n",
    "CLIENT_ERROR incorrect length for M token\r\n",
    "CLIENT_ERROR options flags are too long\r\n",
    "CLIENT_ERROR options flags too long\r\n",
};
static_assert(std::size(error_lines) == static_cast<size_t>(Error::meta_too_many_flags) + 1);

}  // namespace

std::string_view error_line(Error error) {
  const auto index = static_cast<size_t>(error);
  const bool has_line = error != Error::none && index < std::size(error_lines);
  assert(has_line && "no reply line for this Error");
  if (!has_line) return "SERVER_ERROR internal error\r\n";
  return error_lines[index];
}

}  // namespace ringcache::protocol::text
