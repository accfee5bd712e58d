#include "server/replication/wire_decoder.h"

#include <algorithm>
#include <cassert>

namespace ringcache::replication {
namespace {

// A buffer grown past this for one large key is given back after its frame.
constexpr size_t buffer_keep_bytes_max = 64 * 1024;

size_t fixed_bytes_of(WireOp op) {
  switch (op) {
    case WireOp::put:
      return put_head_bytes - 1;
    case WireOp::del:
      return del_head_bytes - 1;
    case WireOp::resync_end:
      return resync_end_bytes - 1;
    case WireOp::heartbeat:
      return heartbeat_bytes - 1;
    case WireOp::mesh:
      return mesh_bytes - 1;
    case WireOp::flush:
      return flush_bytes - 1;
    case WireOp::resync_begin:
    case WireOp::hello:
      return 0;
  }
  return 0;
}

}  // namespace

const char* decode_kind_name(DecodeKind kind) {
  switch (kind) {
    case DecodeKind::need_more: return "need_more";
    case DecodeKind::put: return "put";
    case DecodeKind::put_begin: return "put_begin";
    case DecodeKind::put_data: return "put_data";
    case DecodeKind::put_end: return "put_end";
    case DecodeKind::del: return "del";
    case DecodeKind::resync_begin: return "resync_begin";
    case DecodeKind::resync_end: return "resync_end";
    case DecodeKind::heartbeat: return "heartbeat";
    case DecodeKind::mesh: return "mesh";
    case DecodeKind::flush: return "flush";
    case DecodeKind::too_big: return "too_big";
    case DecodeKind::bad_opcode: return "bad_opcode";
  }
  return "unknown";
}

StreamDecoder::StreamDecoder(const DecoderLimits& limits) : limits_(limits) {
  assert(limits.item_bytes_max > 0);
}

bool StreamDecoder::at_frame_boundary() const {
  return state_ == State::opcode && buffer_.empty() && !key_in_buffer_;
}

DecodeEvent StreamDecoder::next(std::string_view input, size_t& consumed) {
  if (release_pending_) {
    release_pending_ = false;
    key_in_buffer_ = false;
    buffer_.clear();
    if (buffer_.capacity() > buffer_keep_bytes_max) std::string().swap(buffer_);
  }
  size_t pos = 0;
  DecodeEvent event;
  while (step(input, pos, event) == Step::again) {
  }
  assert(pos <= input.size());
  assert(event.kind != DecodeKind::need_more || pos == input.size());
  consumed = pos;
  // A key left as a view into this input would dangle after the call.
  assert(key_in_input_.empty() || state_ == State::opcode || event.kind != DecodeKind::need_more);
  key_in_input_ = {};
  return event;
}

std::string_view StreamDecoder::key() const {
  if (key_in_buffer_) return std::string_view(buffer_).substr(0, key_size_);
  return key_in_input_;
}

// Moves a key that is a view into the current input into buffer_, which must
// hold nothing else yet.
void StreamDecoder::stash_key() {
  if (key_in_buffer_) return;
  assert(buffer_.empty());
  assert(key_in_input_.size() == key_size_);
  buffer_.assign(key_in_input_);
  key_in_input_ = {};
  key_in_buffer_ = true;
}

bool StreamDecoder::read_length(std::string_view input, size_t& pos, uint32_t& length) {
  assert(length_have_ < field_length_bytes);
  assert(!(pos > input.size()));
  const size_t n = std::min(field_length_bytes - length_have_, input.size() - pos);
  std::copy_n(input.data() + pos, n, length_ + length_have_);
  pos += n;
  length_have_ += n;
  if (length_have_ < field_length_bytes) return false;
  length_have_ = 0;
  length = static_cast<uint32_t>(get_be(length_, field_length_bytes));
  return true;
}

// Gathers `size` bytes as one view: straight from the input when the whole
// field is there and none of it was buffered, else through buffer_ (where the
// field starts at offset `part_base`, after a stashed key).
bool StreamDecoder::gather(std::string_view input, size_t& pos, uint64_t size, std::string_view& out) {
  assert(size <= limits_.item_bytes_max);
  assert(!(part_have_ > size));
  const size_t available = input.size() - pos;
  if (part_have_ == 0 && available >= size) {
    out = input.substr(pos, size);
    pos += size;
    return true;
  }
  const size_t part_base = key_in_buffer_ ? key_size_ : 0;
  if (part_have_ == 0) buffer_.reserve(part_base + size);
  const size_t n = std::min<uint64_t>(size - part_have_, available);
  buffer_.append(input.substr(pos, n));
  pos += n;
  part_have_ += n;
  if (part_have_ < size) return false;
  part_have_ = 0;
  out = std::string_view(buffer_).substr(part_base, size);
  return true;
}

inline StreamDecoder::Step StreamDecoder::step(std::string_view input, size_t& pos, DecodeEvent& e) {
  // The state functions fill in a fresh event field by field (see FrameParser::step).
  assert(e.kind == DecodeKind::need_more);
  assert(!(pos > input.size()));
  switch (state_) {
    case State::failed:
      pos = input.size();
      return Step::done;
    case State::opcode:
      return read_opcode(input, pos, e);
    case State::fixed:
      return read_fixed(input, pos, e);
    case State::key:
      return read_key(input, pos, e);
    case State::value_length:
      return read_value_length(input, pos, e);
    case State::value:
      return read_value(input, pos, e);
    case State::value_stream:
      return stream_value(input, pos, e);
    case State::value_stream_end:
      state_ = State::opcode;
      e.kind = DecodeKind::put_end;
      return Step::done;
    case State::skip:
      return skip_bytes(input, pos);
    case State::skip_value_length:
      return skip_value_length(input, pos);
  }
  assert(false && "every state is handled above");
  return Step::done;
}

inline StreamDecoder::Step StreamDecoder::read_opcode(std::string_view input, size_t& pos, DecodeEvent& e) {
  if (pos == input.size()) return Step::done;
  // Every frame's buffer was released before the call that reads the next opcode.
  assert(buffer_.empty());
  assert(!key_in_buffer_);
  const auto byte = static_cast<uint8_t>(input[pos++]);
  switch (byte) {
    case static_cast<uint8_t>(WireOp::put):
    case static_cast<uint8_t>(WireOp::del):
    case static_cast<uint8_t>(WireOp::resync_end):
    case static_cast<uint8_t>(WireOp::heartbeat):
    case static_cast<uint8_t>(WireOp::mesh):
    case static_cast<uint8_t>(WireOp::flush):
      op_ = static_cast<WireOp>(byte);
      fixed_need_ = fixed_bytes_of(op_);
      fixed_have_ = 0;
      state_ = State::fixed;
      return Step::again;
    case static_cast<uint8_t>(WireOp::resync_begin):
      e.kind = DecodeKind::resync_begin;
      return Step::done;
    default:
      break;
  }
  state_ = State::failed;
  e.kind = DecodeKind::bad_opcode;
  e.byte = byte;
  return Step::done;
}

inline StreamDecoder::Step StreamDecoder::read_fixed(std::string_view input, size_t& pos, DecodeEvent& e) {
  assert(fixed_have_ < fixed_need_);
  assert(!(fixed_need_ > fixed_bytes_max));
  const size_t n = std::min(fixed_need_ - fixed_have_, input.size() - pos);
  std::copy_n(input.data() + pos, n, fixed_ + fixed_have_);
  pos += n;
  fixed_have_ += n;
  if (fixed_have_ < fixed_need_) return Step::done;
  return on_fixed(e);
}

// The fixed fields are complete: a PUT or DEL goes on to its key, the other
// frames are whole now.
inline StreamDecoder::Step StreamDecoder::on_fixed(DecodeEvent& e) {
  assert(fixed_have_ == fixed_need_);
  assert(!(op_ == WireOp::resync_begin || op_ == WireOp::hello));
  const char* f = fixed_;
  switch (op_) {
    case WireOp::put:
      meta_.version = get_be(f, 8);
      meta_.flags = static_cast<uint32_t>(get_be(f + 8, 4));
      meta_.expires_at = static_cast<uint32_t>(get_be(f + 12, 4));
      key_size_ = static_cast<uint32_t>(get_be(f + 16, 4));
      break;
    case WireOp::del:
      meta_ = PutMeta{get_be(f, 8), 0, 0};
      key_size_ = static_cast<uint32_t>(get_be(f + 8, 4));
      break;
    case WireOp::resync_end:
    case WireOp::heartbeat:
    case WireOp::mesh:
      state_ = State::opcode;
      e.kind = op_ == WireOp::resync_end  ? DecodeKind::resync_end
               : op_ == WireOp::heartbeat ? DecodeKind::heartbeat
                                          : DecodeKind::mesh;
      e.number = get_be(f, fixed_need_);
      return Step::done;
    case WireOp::flush:
      state_ = State::opcode;
      e.kind = DecodeKind::flush;
      e.meta.version = get_be(f, 8);
      e.number = get_be(f + 8, 4);
      return Step::done;
    case WireOp::resync_begin:
    case WireOp::hello:
      break;
  }
  if (refuse_too_big(key_size_, op_ == WireOp::put, e)) return Step::done;
  state_ = State::key;
  return Step::again;
}

// A key or value over item_bytes_max is answered once (too_big) and skipped,
// with the value behind a skipped PUT key; false when `size` is acceptable.
inline bool StreamDecoder::refuse_too_big(uint32_t size, bool value_follows, DecodeEvent& e) {
  if (size <= limits_.item_bytes_max) return false;
  remaining_ = size;
  skip_value_follows_ = value_follows;
  state_ = State::skip;
  e.kind = DecodeKind::too_big;
  return true;
}

inline StreamDecoder::Step StreamDecoder::read_key(std::string_view input, size_t& pos, DecodeEvent& e) {
  assert(key_size_ <= limits_.item_bytes_max);
  assert(!key_in_buffer_);
  std::string_view view;
  if (!gather(input, pos, key_size_, view)) return Step::done;
  if (!buffer_.empty()) {
    key_in_buffer_ = true;
  } else {
    key_in_input_ = view;
  }
  if (op_ != WireOp::del) {
    state_ = State::value_length;
    return Step::again;
  }
  e.kind = DecodeKind::del;
  e.key = key();
  e.meta = meta_;
  state_ = State::opcode;
  release_pending_ = true;
  return Step::done;
}

inline StreamDecoder::Step StreamDecoder::read_value_length(std::string_view input, size_t& pos, DecodeEvent& e) {
  assert(op_ == WireOp::put);
  assert(!(key_size_ > 0 && !key_in_buffer_ && key_in_input_.empty()));
  if (!read_length(input, pos, value_size_)) {
    stash_key();
    return Step::done;
  }
  if (refuse_too_big(value_size_, false, e)) {
    release_pending_ = true;
    return Step::done;
  }
  if (value_size_ <= limits_.inline_value_bytes_max) {
    state_ = State::value;
    return Step::again;
  }
  e.kind = DecodeKind::put_begin;
  e.key = key();
  e.meta = meta_;
  e.value_size = value_size_;
  remaining_ = value_size_;
  state_ = State::value_stream;
  release_pending_ = true;
  return Step::done;
}

inline StreamDecoder::Step StreamDecoder::read_value(std::string_view input, size_t& pos, DecodeEvent& e) {
  assert(value_size_ <= limits_.inline_value_bytes_max);
  const bool whole_here = part_have_ == 0 && input.size() - pos >= value_size_;
  if (!whole_here) stash_key();
  std::string_view value;
  if (!gather(input, pos, value_size_, value)) return Step::done;
  assert(value.size() == value_size_);
  assert(!(key_in_buffer_ && buffer_.size() < key_size_));
  e.kind = DecodeKind::put;
  e.key = key();
  e.data = value;
  e.value_size = value_size_;
  e.meta = meta_;
  state_ = State::opcode;
  release_pending_ = true;
  return Step::done;
}

inline StreamDecoder::Step StreamDecoder::stream_value(std::string_view input, size_t& pos, DecodeEvent& e) {
  if (pos == input.size()) return Step::done;
  assert(remaining_ > 0);
  assert(!(remaining_ > value_size_));
  const size_t n = std::min<uint64_t>(remaining_, input.size() - pos);
  e.kind = DecodeKind::put_data;
  e.data = input.substr(pos, n);
  pos += n;
  remaining_ -= n;
  if (remaining_ == 0) state_ = State::value_stream_end;
  return Step::done;
}

inline StreamDecoder::Step StreamDecoder::skip_bytes(std::string_view input, size_t& pos) {
  const size_t n = std::min<uint64_t>(remaining_, input.size() - pos);
  pos += n;
  remaining_ -= n;
  if (remaining_ > 0) return Step::done;
  state_ = skip_value_follows_ ? State::skip_value_length : State::opcode;
  return Step::again;
}

inline StreamDecoder::Step StreamDecoder::skip_value_length(std::string_view input, size_t& pos) {
  uint32_t length = 0;
  if (!read_length(input, pos, length)) return Step::done;
  remaining_ = length;
  skip_value_follows_ = false;
  state_ = State::skip;
  return Step::again;
}

}  // namespace ringcache::replication
