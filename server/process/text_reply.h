// Reply pieces of the text protocol, shared by the classic and the meta
// commands: a bounded line builder and the value block writer.
#pragma once

#include <array>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <string_view>

#include "server/io/output_queue.h"
#include "server/io/value_copy.h"
#include "server/process/pinned_value.h"
#include "server/process/text_process.h"
#include "store/store.h"

namespace ringcache::server {

// One reply line built on the stack. Every line the text port sends is far
// shorter than reply_line_bytes_max (keys are at most 250 bytes).
class ReplyLine {
 public:
  ReplyLine& text(std::string_view piece) {
    assert(size_ + piece.size() <= bytes_.size());
    for (const char c : piece) bytes_[size_++] = c;
    return *this;
  }
  ReplyLine& character(char c) {
    assert(size_ < bytes_.size());
    bytes_[size_++] = c;
    return *this;
  }
  template <class Int>
  ReplyLine& number(Int value) {
    const auto [end, ec] = std::to_chars(bytes_.data() + size_, bytes_.data() + bytes_.size(), value);
    assert(ec == std::errc());
    size_ = static_cast<size_t>(end - bytes_.data());
    return *this;
  }
  ReplyLine& end_line() { return text("\r\n"); }
  std::string_view view() const { return {bytes_.data(), size_}; }
  size_t room() const { return bytes_.size() - size_; }

 private:
  std::array<char, reply_line_bytes_max> bytes_;
  size_t size_ = 0;
};

// The item's value and the "\r\n" after it.
inline void append_value_block(OutputQueue& out, const store::ItemView& item) {
  append_value(out, item);
  out.append("\r\n");
}

// A reply line (without its line end) followed by the item's value block. A
// small value joins the line in one append: most replies of a get-heavy load.
inline void append_line_and_value(OutputQueue& out, ReplyLine& line, const store::ItemView& item) {
  line.end_line();
  if (item.contiguous() && item.value_size() + 2 <= line.room()) {
    out.append(line.text(item.value()).end_line().view());
    return;
  }
  out.append(line.view());
  append_value_block(out, item);
}

}  // namespace ringcache::server
