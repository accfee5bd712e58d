#include "text_codec.h"

#include <cassert>
#include <charconv>
#include <cstring>
#include <optional>

namespace ringcache::loadgen {

namespace {

constexpr std::string_view crlf = "\r\n";

void append_text(std::byte*& cursor, std::string_view text) {
  std::memcpy(cursor, text.data(), text.size());
  cursor += text.size();
}

bool starts_with_word(std::string_view line, std::string_view word) {
  return line.starts_with(word) && (line.size() == word.size() || line[word.size()] == ' ');
}

// "VALUE <key> <flags> <bytes>[ <cas>]": returns the byte count.
std::optional<std::uint64_t> value_line_length(std::string_view line) {
  std::string_view fields[5];
  std::size_t count = 0;
  while (!line.empty() && count < 5) {
    const std::size_t space = line.find(' ');
    fields[count++] = line.substr(0, space);
    line = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
  }
  if (!line.empty() || count < 4 || fields[0] != "VALUE") return std::nullopt;
  std::uint64_t bytes = 0;
  const std::string_view digits = fields[3];
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), bytes);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return bytes;
}

}  // namespace

void text_codec::encode_get(send_queue& out, std::string_view key) {
  constexpr std::string_view verb = "get ";
  std::byte* cursor = out.append_space(verb.size() + key.size() + crlf.size());
  append_text(cursor, verb);
  append_text(cursor, key);
  append_text(cursor, crlf);
}

void text_codec::encode_put(send_queue& out, std::string_view key,
                            std::span<const std::byte> value) {
  constexpr std::string_view verb = "set ";
  constexpr std::string_view flags_and_exptime = " 0 0 ";
  char length_digits[24];
  const auto length_end =
      std::to_chars(length_digits, length_digits + sizeof length_digits, value.size()).ptr;
  const std::string_view length_text(length_digits,
                                     static_cast<std::size_t>(length_end - length_digits));
  const std::size_t header_bytes =
      verb.size() + key.size() + flags_and_exptime.size() + length_text.size() + crlf.size();
  const bool copy_value = value.size() <= value_copy_bytes_max;
  std::byte* cursor =
      out.append_space(header_bytes + (copy_value ? value.size() + crlf.size() : 0));
  append_text(cursor, verb);
  append_text(cursor, key);
  append_text(cursor, flags_and_exptime);
  append_text(cursor, length_text);
  append_text(cursor, crlf);
  if (copy_value) {
    if (!value.empty()) std::memcpy(cursor, value.data(), value.size());
    cursor += value.size();
    append_text(cursor, crlf);
  } else {
    out.append_reference(value);
    out.append_copy(std::as_bytes(std::span(crlf)));
  }
}

text_codec::line_verdict text_codec::interpret_line(std::string_view line, request_kind pending) {
  if (state_ == state::end_line) {
    if (line != "END") {
      problem_ = "expected END after the value";
      return line_verdict::malformed;
    }
    status_ = reply_status::hit;
    return line_verdict::complete;
  }
  assert(state_ == state::first_line);
  if (line == "ERROR") {
    status_ = reply_status::error;
    return line_verdict::complete;
  }
  if (starts_with_word(line, "SERVER_ERROR")) {
    status_ = reply_status::server_error;
    return line_verdict::complete;
  }
  if (starts_with_word(line, "CLIENT_ERROR")) {
    status_ = reply_status::client_error;
    return line_verdict::complete;
  }
  if (pending == request_kind::put) {
    if (line == "STORED") {
      status_ = reply_status::stored;
      return line_verdict::complete;
    }
    if (line == "NOT_STORED") {
      status_ = reply_status::not_stored;
      return line_verdict::complete;
    }
    problem_ = "unexpected reply line to set";
    return line_verdict::malformed;
  }
  if (line == "END") {
    status_ = reply_status::miss;
    return line_verdict::complete;
  }
  const std::optional<std::uint64_t> length = value_line_length(line);
  if (!length) {
    problem_ = "unexpected reply line to get";
    return line_verdict::malformed;
  }
  begin_skip(*length);
  value_bytes_ = *length;
  data_end_seen_ = 0;
  state_ = state::data;
  return line_verdict::continue_reply;
}

decode_step text_codec::decode(std::span<const std::byte> input, request_kind pending) {
  std::size_t used = 0;
  const char* const text = reinterpret_cast<const char*>(input.data());
  while (used < input.size()) {
    if (state_ == state::data) {
      used += skip(input.size() - used);
      if (!skipping()) state_ = state::data_end;
      continue;
    }
    if (state_ == state::data_end) {
      if (text[used] != crlf[data_end_seen_]) {
        return decode_step::malformed(used, "value not followed by CRLF");
      }
      ++used;
      if (++data_end_seen_ == crlf.size()) state_ = state::end_line;
      continue;
    }
    const void* newline = std::memchr(text + used, '\n', input.size() - used);
    const std::size_t line_end =
        newline == nullptr ? input.size() : static_cast<std::size_t>(
                                                static_cast<const char*>(newline) - text);
    const std::size_t piece_bytes = line_end - used;
    if (partial_line_.size() + piece_bytes > text_line_bytes_max) {
      return decode_step::malformed(used, "reply line too long");
    }
    if (newline == nullptr) {
      partial_line_.append(text + used, piece_bytes);
      used = input.size();
      break;
    }
    std::string_view line(text + used, piece_bytes);
    if (!partial_line_.empty()) {
      partial_line_.append(line);
      line = partial_line_;
    }
    used = line_end + 1;
    if (line.ends_with('\r')) line.remove_suffix(1);
    const line_verdict verdict = interpret_line(line, pending);
    partial_line_.clear();
    if (verdict == line_verdict::malformed) {
      return decode_step::malformed(used, problem_);
    }
    if (verdict == line_verdict::complete) {
      const std::uint64_t value_bytes = status_ == reply_status::hit ? value_bytes_ : 0;
      state_ = state::first_line;
      value_bytes_ = 0;
      return decode_step::complete(used, status_, value_bytes);
    }
  }
  return decode_step::need_more(used);
}

decode_step text_codec::value_skipped(std::size_t consumed) {
  // The CRLF and END that follow the data are still to be read and checked.
  state_ = state::data_end;
  return decode_step::need_more(consumed);
}

}  // namespace ringcache::loadgen
