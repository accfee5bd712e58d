#include "server/replication/wire.h"

#include <cassert>
#include <cstring>
#include <limits>

namespace ringcache::replication {
namespace {

char* write_byte(char* dst, WireOp op) {
  *dst = static_cast<char>(op);
  return dst + 1;
}

char* write_number(char* dst, uint64_t value, size_t bytes) {
  put_be(dst, value, bytes);
  return dst + bytes;
}

char* write_bytes(char* dst, std::string_view bytes) {
  if (!bytes.empty()) std::memcpy(dst, bytes.data(), bytes.size());
  return dst + bytes.size();
}

char* write_length(char* dst, uint64_t length) {
  assert(length <= std::numeric_limits<uint32_t>::max());
  return write_number(dst, length, field_length_bytes);
}

// Grows `out` by n bytes and returns where they start.
char* grow(std::string& out, size_t n) {
  const size_t at = out.size();
  out.resize(at + n);
  return out.data() + at;
}

}  // namespace

char* write_put_head(char* dst, std::string_view key, uint64_t value_bytes, const PutMeta& meta) {
  dst = write_byte(dst, WireOp::put);
  dst = write_number(dst, meta.version, 8);
  dst = write_number(dst, meta.flags, 4);
  dst = write_number(dst, meta.expires_at, 4);
  dst = write_length(dst, key.size());
  dst = write_bytes(dst, key);
  return write_length(dst, value_bytes);
}

char* write_put(char* dst, std::string_view key, std::string_view value, const PutMeta& meta) {
  return write_bytes(write_put_head(dst, key, value.size(), meta), value);
}

char* write_del(char* dst, std::string_view key, uint64_t version) {
  dst = write_byte(dst, WireOp::del);
  dst = write_number(dst, version, 8);
  dst = write_length(dst, key.size());
  return write_bytes(dst, key);
}

char* write_flush(char* dst, uint64_t version, uint32_t at_s) {
  dst = write_byte(dst, WireOp::flush);
  dst = write_number(dst, version, 8);
  return write_number(dst, at_s, 4);
}

void append_put(std::string& out, std::string_view key, std::string_view value, const PutMeta& meta) {
  write_put(grow(out, put_frame_bytes(key.size(), value.size())), key, value, meta);
}

void append_put_head(std::string& out, std::string_view key, uint64_t value_bytes,
                     const PutMeta& meta) {
  write_put_head(grow(out, put_frame_bytes(key.size(), 0)), key, value_bytes, meta);
}

void append_del(std::string& out, std::string_view key, uint64_t version) {
  write_del(grow(out, del_frame_bytes(key.size())), key, version);
}

void append_resync_begin(std::string& out) { write_byte(grow(out, 1), WireOp::resync_begin); }

void append_resync_end(std::string& out, uint64_t items) {
  write_number(write_byte(grow(out, resync_end_bytes), WireOp::resync_end), items, 8);
}

void append_heartbeat(std::string& out, uint64_t sent_us) {
  write_number(write_byte(grow(out, heartbeat_bytes), WireOp::heartbeat), sent_us, 8);
}

void append_mesh(std::string& out, uint32_t peers) {
  write_number(write_byte(grow(out, mesh_bytes), WireOp::mesh), peers, 4);
}

void append_flush(std::string& out, uint64_t version, uint32_t at_s) {
  write_flush(grow(out, flush_bytes), version, at_s);
}

}  // namespace ringcache::replication
