// The replication stream (docs/binary_protocol.md, docs/replication.md): frames and their encoders.
//
// A replication connection carries one direction only: the node that opened
// it sends, the node that accepted it applies (docs/replication.md says why).
// Every length below is big-endian; a "field" is a u32 length then its bytes,
// as in the client protocol.
//
//   HELLO        | 200 | field: "RINGCACHE-REPL/1 <node-id>" or "RINGCACHE-REPL/2 <node-id> <nonce>"
//                                  (<= 256 bytes) | first frame only; v2 starts the authentication
//                                  of handshake.h, whose messages precede the frames below
//   MESH         | 206 | peers:u32 |                 how many peers the sender lists
//   RESYNC_BEGIN | 203 |                             a full copy of the sender's store follows
//   PUT          | 201 | version:u64 | flags:u32 | expires_at:u32 | key field | value field |
//   DEL          | 202 | version:u64 | key field |   a tombstone carrying `version`
//   RESYNC_END   | 204 | items:u64 |                 the copy is complete (items it held)
//   HEARTBEAT    | 205 | sent_us:u64 |               sender's wall clock (unix microseconds)
//   FLUSH        | 207 | version:u64 | at_s:u32 |    flush_all: from unix second at_s (0 = now)
//                                                    on, every version below `version` is gone
//
// expires_at is in unix seconds, 0 = never. PUT and DEL from a resync and from
// the live stream look the same and may interleave in any order: each carries
// its version and the receiver keeps the newest, so repeats and reorderings
// are harmless. A FLUSH is a version threshold, not a command to replay in
// order: every node that applies it hides the same writes, whichever side of
// it they arrive on (docs/replication.md §4). Opcodes 208-255 are reserved: a
// receiver closes the connection on them (and on any other byte where an
// opcode is expected).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringcache::replication {

enum class WireOp : uint8_t {
  hello = 200,
  put = 201,
  del = 202,
  resync_begin = 203,
  resync_end = 204,
  heartbeat = 205,
  mesh = 206,
  flush = 207,
};

// The hello field's longest length (handshake.h has the hello itself).
inline constexpr size_t hello_bytes_max = 256;
inline constexpr size_t field_length_bytes = 4;

// Bytes before the key bytes of a PUT / DEL (opcode, fixed fields, key length).
inline constexpr size_t put_head_bytes = 1 + 8 + 4 + 4 + field_length_bytes;
inline constexpr size_t del_head_bytes = 1 + 8 + field_length_bytes;
inline constexpr size_t resync_end_bytes = 1 + 8;
inline constexpr size_t heartbeat_bytes = 1 + 8;
inline constexpr size_t mesh_bytes = 1 + 4;
inline constexpr size_t flush_bytes = 1 + 8 + 4;
static_assert(put_head_bytes == 21 && del_head_bytes == 13 && flush_bytes == 13);

struct PutMeta {
  uint64_t version = 0;
  uint32_t flags = 0;
  uint32_t expires_at = 0;
};

// Whole frame sizes.
constexpr size_t put_frame_bytes(size_t key_bytes, size_t value_bytes) {
  return put_head_bytes + key_bytes + field_length_bytes + value_bytes;
}
constexpr size_t del_frame_bytes(size_t key_bytes) { return del_head_bytes + key_bytes; }

// Raw writers: each writes exactly the bytes named and returns the end.
// dst must have room (the *_bytes functions above say how much).
char* write_put(char* dst, std::string_view key, std::string_view value, const PutMeta& meta);
// A PUT up to and including the value length; the value bytes follow.
char* write_put_head(char* dst, std::string_view key, uint64_t value_bytes, const PutMeta& meta);
char* write_del(char* dst, std::string_view key, uint64_t version);
char* write_flush(char* dst, uint64_t version, uint32_t at_s);

// Appending encoders.
void append_put(std::string& out, std::string_view key, std::string_view value, const PutMeta& meta);
void append_put_head(std::string& out, std::string_view key, uint64_t value_bytes, const PutMeta& meta);
void append_del(std::string& out, std::string_view key, uint64_t version);
void append_resync_begin(std::string& out);
void append_resync_end(std::string& out, uint64_t items);
void append_heartbeat(std::string& out, uint64_t sent_us);
void append_mesh(std::string& out, uint32_t peers);
void append_flush(std::string& out, uint64_t version, uint32_t at_s);

// Big-endian helpers shared with the decoder.
inline void put_be(char* dst, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) {
    dst[i] = static_cast<char>(value >> (8 * (bytes - 1 - i)));
  }
}
inline uint64_t get_be(const char* src, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value = (value << 8) | static_cast<unsigned char>(src[i]);
  return value;
}

}  // namespace ringcache::replication
