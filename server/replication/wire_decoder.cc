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
  const DecodeEvent event = step(input, pos);
  assert(pos <= input.size());
  assert(event.kind != DecodeKind::need_more || pos == input.size());
  consumed = pos;
  // A key left as a view into this input would dangle after the call.
  assert(key_in_input_.empty() || state_ == State::opcode || event.kind != DecodeKind::need_more);
  key_in_input_ = {};
  return event;
}

DecodeEvent StreamDecoder::event(DecodeKind kind) {
  DecodeEvent e;
  e.kind = kind;
  return e;
}

std::string_view StreamDecoder::key() const {
  if (key_in_buffer_) return std::string_view(buffer_).substr(0, key_size_);
  return key_in_input_;
}

// Moves a key that is a view into the current input into buffer_, which must
// hold nothing else yet.
void StreamDecoder::stash_key() {
  if (key_in_buffer_) return;
  assert(buffer_.empty() && key_in_input_.size() == key_size_);
  buffer_.assign(key_in_input_);
  key_in_input_ = {};
  key_in_buffer_ = true;
}

bool StreamDecoder::read_length(std::string_view input, size_t& pos, uint32_t& length) {
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

DecodeEvent StreamDecoder::on_opcode(uint8_t byte) {
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
      return event(DecodeKind::need_more);
    case static_cast<uint8_t>(WireOp::resync_begin):
      return event(DecodeKind::resync_begin);
    default:
      break;
  }
  state_ = State::failed;
  DecodeEvent e = event(DecodeKind::bad_opcode);
  e.byte = byte;
  return e;
}

DecodeEvent StreamDecoder::on_fixed() {
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
    case WireOp::mesh: {
      state_ = State::opcode;
      DecodeEvent e = event(op_ == WireOp::resync_end ? DecodeKind::resync_end
                            : op_ == WireOp::heartbeat ? DecodeKind::heartbeat
                                                       : DecodeKind::mesh);
      e.number = get_be(f, fixed_need_);
      return e;
    }
    case WireOp::flush: {
      state_ = State::opcode;
      DecodeEvent e = event(DecodeKind::flush);
      e.meta.version = get_be(f, 8);
      e.number = get_be(f + 8, 4);
      return e;
    }
    case WireOp::resync_begin:
    case WireOp::hello:
      assert(false && "no fixed fields");
      break;
  }
  if (key_size_ > limits_.item_bytes_max) {
    remaining_ = key_size_;
    skip_value_follows_ = op_ == WireOp::put;
    state_ = State::skip;
    return event(DecodeKind::too_big);
  }
  state_ = State::key;
  return event(DecodeKind::need_more);
}

DecodeEvent StreamDecoder::step(std::string_view input, size_t& pos) {
  while (true) {
    switch (state_) {
      case State::failed:
        pos = input.size();
        return event(DecodeKind::need_more);

      case State::opcode: {
        if (pos == input.size()) return event(DecodeKind::need_more);
        const DecodeEvent e = on_opcode(static_cast<uint8_t>(input[pos++]));
        if (e.kind != DecodeKind::need_more) return e;
        break;
      }

      case State::fixed: {
        const size_t n = std::min(fixed_need_ - fixed_have_, input.size() - pos);
        std::copy_n(input.data() + pos, n, fixed_ + fixed_have_);
        pos += n;
        fixed_have_ += n;
        if (fixed_have_ < fixed_need_) return event(DecodeKind::need_more);
        const DecodeEvent e = on_fixed();
        if (e.kind != DecodeKind::need_more) return e;
        break;
      }

      case State::key: {
        std::string_view view;
        if (!gather(input, pos, key_size_, view)) return event(DecodeKind::need_more);
        if (!buffer_.empty()) {
          key_in_buffer_ = true;
        } else {
          key_in_input_ = view;
        }
        if (op_ == WireOp::del) {
          DecodeEvent e = event(DecodeKind::del);
          e.key = key();
          e.meta = meta_;
          state_ = State::opcode;
          release_pending_ = true;
          return e;
        }
        state_ = State::value_length;
        break;
      }

      case State::value_length: {
        if (!read_length(input, pos, value_size_)) {
          stash_key();
          return event(DecodeKind::need_more);
        }
        if (value_size_ > limits_.item_bytes_max) {
          remaining_ = value_size_;
          skip_value_follows_ = false;
          state_ = State::skip;
          release_pending_ = true;
          return event(DecodeKind::too_big);
        }
        if (value_size_ > limits_.inline_value_bytes_max) {
          DecodeEvent e = event(DecodeKind::put_begin);
          e.key = key();
          e.meta = meta_;
          e.value_size = value_size_;
          remaining_ = value_size_;
          state_ = State::value_stream;
          release_pending_ = true;
          return e;
        }
        state_ = State::value;
        break;
      }

      case State::value: {
        const bool whole_here = part_have_ == 0 && input.size() - pos >= value_size_;
        if (!whole_here) stash_key();
        std::string_view value;
        if (!gather(input, pos, value_size_, value)) return event(DecodeKind::need_more);
        DecodeEvent e = event(DecodeKind::put);
        e.key = key();
        e.data = value;
        e.value_size = value_size_;
        e.meta = meta_;
        state_ = State::opcode;
        release_pending_ = true;
        return e;
      }

      case State::value_stream: {
        if (pos == input.size()) return event(DecodeKind::need_more);
        const size_t n = std::min<uint64_t>(remaining_, input.size() - pos);
        DecodeEvent e = event(DecodeKind::put_data);
        e.data = input.substr(pos, n);
        pos += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::value_stream_end;
        return e;
      }

      case State::value_stream_end:
        state_ = State::opcode;
        return event(DecodeKind::put_end);

      case State::skip: {
        const size_t n = std::min<uint64_t>(remaining_, input.size() - pos);
        pos += n;
        remaining_ -= n;
        if (remaining_ > 0) return event(DecodeKind::need_more);
        state_ = skip_value_follows_ ? State::skip_value_length : State::opcode;
        break;
      }

      case State::skip_value_length: {
        uint32_t length = 0;
        if (!read_length(input, pos, length)) return event(DecodeKind::need_more);
        remaining_ = length;
        skip_value_follows_ = false;
        state_ = State::skip;
        break;
      }
    }
  }
}

}  // namespace ringcache::replication
