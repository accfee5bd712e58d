#!/usr/bin/env python3
"""Writes the seed corpus of one fuzz target, so no binary blobs live in git.

usage: make_seeds.py TARGET SEED_DIR RUN_DIR STAMP
TARGET is one of the fuzz targets below. SEED_DIR receives the seeds
(rewritten every time), RUN_DIR is created empty if missing (libFuzzer writes
what it finds there), STAMP is written for meson.

Each target reads a header of choices before the stream (see its .cc file):
  fuzz_binary_parser  byte 0: parser limits (bits 0-2 item_max choice, 3-5
                      inline_value_max choice, bit 6 AUTH enabled); byte 1:
                      split seed
  fuzz_text_parser    byte 0: parser limits (bits 0-2 item_max, 3-4
                      inline_value_max, 5-6 line_max, bit 7 retrieval lines
                      32x instead of 2x); byte 1: split seed
  fuzz_mc_binary_parser  byte 0: parser limits (bits 0-2 item_max choice,
                      3-5 inline_value_max choice); byte 1: split seed
  fuzz_wire_decoder   byte 0: chunk size
  fuzz_handshake      byte 0: decoder (bits 0-1), chunk size (bits 2-7)
"""
import os
import struct
import sys


def field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


# --- fuzz_binary_parser: frames of the binary protocol ---

def binary_put(key: bytes, value: bytes) -> bytes:
    return b"\x0b" + field(key) + field(value)


def binary_get(key: bytes) -> bytes:
    return b"\x0d" + field(key)


def binary_delete(key: bytes) -> bytes:
    return b"\x0c" + field(key)


BINARY_STATS = b"\x15"


def binary_auth(user: bytes, password: bytes) -> bytes:
    return b"\x1f" + field(user) + field(password)


BINARY_HELLO = b"\xc8" + field(b"RINGCACHE-REPL/1 node-a")


def binary_parser_seeds():
    # (name, limits selector, split seed, stream). Selector 0x1C: item_max
    # 300, inline 64 bytes; 0x2E: item_max 1 MiB, inline 64 KiB; 0x0B:
    # item_max 64, inline 1.
    seeds = [
        ("get", 0x1C, 1, binary_get(b"user:42")),
        ("del", 0x1C, 2, binary_delete(b"user:42")),
        ("stats", 0x1C, 3, BINARY_STATS),
        ("put", 0x1C, 4, binary_put(b"user:42", b"hello world")),
        ("put_empty", 0x1C, 5, binary_put(b"", b"")),
        ("put_streamed", 0x1C, 6, binary_put(b"k", bytes(range(200)))),
        ("put_key_plus_value_over_buffer", 0x1C, 7, binary_put(b"k" * 280, b"v" * 30)),
        ("put_big_key", 0x1C, 8, binary_put(b"k" * 301, b"value") + binary_get(b"next")),
        ("put_big_value", 0x1C, 9, binary_put(b"key", b"v" * 301) + BINARY_STATS),
        ("get_big_key", 0x0B, 10, binary_get(b"x" * 65) + binary_get(b"y")),
        ("all_ones_length", 0x2E, 11, b"\x0b\xff\xff\xff\xff" + b"\x0d" * 64),
        ("invalid_opcodes", 0x1C, 12, b"\x00\x65\x6f\xc8\xff" + binary_get(b"k")),
        ("hello", 0x1C, 13, BINARY_HELLO + binary_get(b"k") + b"\xc8"),
        ("hello_too_long", 0x1C, 14, b"\xc8" + field(b"h" * 257) + binary_get(b"k")),
        # 0x5C / 0x4B: as 0x1C / 0x0B with AUTH (31) enabled.
        ("auth", 0x5C, 16, binary_auth(b"alice", b"s3cret") + binary_get(b"k")),
        ("auth_disabled", 0x1C, 17, binary_auth(b"alice", b"s3cret") + binary_get(b"k")),
        ("auth_small_items", 0x4B, 18, binary_auth(b"u" * 100, b"p" * 100) + BINARY_STATS),
        ("auth_too_long", 0x5C, 19, binary_auth(b"u" * 1025, b"pw") + binary_auth(b"u", b"p" * 1025)
         + binary_get(b"k")),
        ("auth_unauthenticated_pipeline", 0x5C, 20, binary_put(b"k", b"v" * 200) + binary_get(b"k")
         + binary_auth(b"alice", b"s3cret") + binary_get(b"k")),
        ("pipeline", 0x2E, 15, BINARY_HELLO + b"".join(
            binary_put(b"key%d" % i, b"value%d" % i * (i % 7)) + binary_get(b"key%d" % i)
            + binary_delete(b"key%d" % i) for i in range(40)) + BINARY_STATS),
    ]
    return [(name, bytes([selector, split_seed]) + stream) for name, selector, split_seed, stream in seeds]


# --- fuzz_text_parser: memcached text requests ---

def text_storage(command: bytes, key: bytes, value: bytes, extra: bytes = b"") -> bytes:
    return b"%s %s 0 0 %d%s\r\n%s\r\n" % (command, key, len(value), extra, value)


def text_parser_seeds():
    # Selector 0x6C: item_max 300, inline 16, line_max 2048, retrieval 2x.
    # 0xFE: item_max 1 MiB, inline 64 KiB, line_max 2048, retrieval 32x.
    # 0x2B: item_max 64, inline 16, line_max 64, retrieval 2x.
    production, small, tiny = 0xFE, 0x6C, 0x2B
    seeds = [
        ("get", small, 1, b"get a\r\nget a b c\r\ngets k\r\n"),
        ("gat", small, 2, b"gat 100 a b\r\ngats -1 a\r\ngat 5\r\n"),
        ("set", small, 3, text_storage(b"set", b"k", b"hello") + b"get k\r\n"),
        ("storage_family", small, 4, text_storage(b"add", b"k", b"v", b" noreply")
         + text_storage(b"replace", b"k", b"v") + text_storage(b"append", b"k", b"xy")
         + text_storage(b"prepend", b"k", b"z") + b"cas k 0 0 2 77 noreply\r\nhi\r\n"),
        ("streamed", small, 5, text_storage(b"set", b"big", bytes(range(200)))),
        ("too_large", small, 6, text_storage(b"set", b"k", b"v" * 301) + b"mn\r\n"),
        ("bad_chunk", small, 7, b"set k 0 0 1\r\nxy\r\nget a\r\nset k 0 0 1\nx\nget a\n"),
        ("keyed", small, 8, b"delete k\r\ndelete k 0 noreply\r\nincr k 5\r\ndecr k 1 noreply\r\n"
         b"touch k 10\r\ndelete k 5\r\nincr k x\r\n"),
        ("admin", small, 9, b"flush_all\r\nflush_all 10 noreply\r\nstats\r\nstats settings\r\nversion\r\n"
         b"verbosity 1\r\nverbosity noreply\r\nmn\r\nquit\r\nget a\r\n"),
        ("meta", small, 10, b"mg foo v k c f s t O123 q T30 N5 R10\r\nmg Zm9v b k v\r\n"
         b"ms foo 2 F7 T100 c k O1 MA\r\nhi\r\nmd foo q C5 x T30\r\nma foo N0 J10 D3 MD v t c\r\n"),
        ("meta_errors", small, 11, b"mg a v v\r\nmg a Tx\r\nmg YQ= b\r\nmd a zz\r\nma a Mi\r\n"
         b"ms a 1 MX\r\nx\r\nms b x\r\nyy\r\n"),
        ("long_line", tiny, 12, b"mn " + b"x" * 70 + b"\r\nget a\r\n"),
        ("long_get", tiny, 13, b"get " + b" ".join(b"k%d" % i for i in range(40)) + b"\r\n"),
        ("hostile", small, 14, b"\x00\xff\r\n\r\n GET a\r\nget a\x01b\r\nset " + b"k" * 251
         + b" 0 0 1\r\nx\r\n" + b"\n" * 8),
        ("pipeline", production, 15, b"".join(
            text_storage(b"set", b"key%d" % i, b"value%d" % i * (i % 7)) + b"get key%d missing\r\n" % i
            + b"delete key%d noreply\r\n" % i for i in range(40)) + b"stats\r\n"),
    ]
    return [(name, bytes([selector, split_seed]) + stream) for name, selector, split_seed, stream in seeds]


# --- fuzz_mc_binary_parser: memcached binary requests (the text port) ---

def mc_request(opcode: int, extras: bytes = b"", key: bytes = b"", value: bytes = b"",
               opaque: int = 0, cas: int = 0) -> bytes:
    body = extras + key + value
    return struct.pack(">BBHBBHIIQ", 0x80, opcode, len(key), len(extras), 0, 0, len(body), opaque, cas) + body


def mc_header(opcode: int, key_length: int, extras_length: int, body_length: int) -> bytes:
    return struct.pack(">BBHBBHIIQ", 0x80, opcode, key_length, extras_length, 0, 0, body_length, 0, 0)


def mc_binary_parser_seeds():
    # Selector 0x1C: item_max 300, inline 64 bytes; 0x2E: item_max 1 MiB,
    # inline 64 KiB; 0x0B: item_max 64, inline 1.
    store = struct.pack(">II", 7, 100)
    arith = struct.pack(">QQI", 1, 5, 0xFFFFFFFF)
    seeds = [
        ("get", 0x1C, 1, mc_request(0x00, key=b"user:42", opaque=9)),
        ("getkq_batch", 0x1C, 2, b"".join(mc_request(0x0D, key=b"k%d" % i) for i in range(10))
         + mc_request(0x0A)),
        ("set", 0x1C, 3, mc_request(0x01, store, b"k", b"hello", 1, 42)),
        ("set_streamed", 0x1C, 4, mc_request(0x11, store, b"k", bytes(range(200)))),
        ("set_too_large", 0x1C, 5, mc_request(0x01, store, b"k", b"v" * 301) + mc_request(0x0A)),
        ("incr", 0x1C, 6, mc_request(0x05, arith, b"n") + mc_request(0x16, arith, b"n")),
        ("admin", 0x1C, 7, mc_request(0x08, struct.pack(">I", 10)) + mc_request(0x10)
         + mc_request(0x10, key=b"settings") + mc_request(0x0B) + mc_request(0x1B, struct.pack(">I", 1))),
        ("bad_lengths", 0x1C, 8, mc_header(0x00, 251, 0, 251) + b"k" * 251
         + mc_header(0x01, 4, 8, 10) + b"x" * 10 + mc_request(0x0A)),
        ("bad_magic", 0x1C, 9, mc_request(0x0A) + b"\x81" + mc_request(0x0A)),
        ("all_ones_body", 0x2E, 10, mc_header(0x01, 3, 8, 0xFFFFFFFF) + store + b"key" + b"v" * 64),
        ("tiny_limits", 0x0B, 11, mc_request(0x01, store, b"k", b"v" * 70) + mc_request(0x0E, key=b"k", value=b"xy")),
        ("pipeline", 0x2E, 12, b"".join(
            mc_request(0x11, store, b"key%d" % i, b"value%d" % i * (i % 7)) + mc_request(0x0C, key=b"key%d" % i)
            + mc_request(0x14, key=b"key%d" % i) for i in range(40)) + mc_request(0x17)),
    ]
    return [(name, bytes([selector, split_seed]) + stream) for name, selector, split_seed, stream in seeds]


# --- fuzz_wire_decoder: replication streams after the hello ---

def wire_put(key: bytes, value: bytes, version=7, flags=1, expires=0) -> bytes:
    return bytes([201]) + struct.pack(">QII", version, flags, expires) + field(key) + field(value)


def wire_decoder_seeds():
    streams = {
        "put": wire_put(b"key", b"value"),
        "big_put": wire_put(b"k", bytes(range(256)) * 4),
        "too_big": wire_put(b"k" * 5000, b"v"),
        "del": bytes([202]) + struct.pack(">Q", 9) + field(b"key"),
        "resync": bytes([206]) + struct.pack(">I", 2) + bytes([203]) + wire_put(b"a", b"1")
        + bytes([204]) + struct.pack(">Q", 1),
        "heartbeat": bytes([205]) + struct.pack(">Q", 1700000000000000),
        "flush": wire_put(b"a", b"1") + bytes([207]) + struct.pack(">QI", 1 << 40, 0)
        + bytes([207]) + struct.pack(">QI", 9, 1700000000) + wire_put(b"b", b"2"),
        "bad": wire_put(b"a", b"b") + bytes([208]) + wire_put(b"c", b"d"),
    }
    return [("%s_%d" % (name, chunk), bytes([chunk]) + body)
            for name, body in streams.items() for chunk in (0, 3)]


# --- fuzz_handshake: the authentication handshake's messages ---

def handshake_seeds():
    nonce = bytes(range(32))
    mac = bytes(range(100, 132))
    # name: (decoder, message): 0 challenge, 1 response, 2 AUTH_OK, 3 hello field.
    inputs = {
        "challenge": (0, bytes([208]) + field(b"node-b") + nonce + mac),
        "challenge_refused": (0, bytes([111])),
        "response": (1, bytes([209]) + mac),
        "auth_ok": (2, bytes([101]) + bytes([206]) + struct.pack(">I", 2)),
        "hello_v1": (3, b"RINGCACHE-REPL/1 node-a"),
        "hello_v2": (3, b"RINGCACHE-REPL/2 node-a " + nonce.hex().encode()),
    }
    return [("%s_%d" % (name, chunk), bytes([which | (chunk << 2)]) + body)
            for name, (which, body) in inputs.items() for chunk in (0, 4)]


TARGETS = {
    "fuzz_binary_parser": binary_parser_seeds,
    "fuzz_text_parser": text_parser_seeds,
    "fuzz_mc_binary_parser": mc_binary_parser_seeds,
    "fuzz_wire_decoder": wire_decoder_seeds,
    "fuzz_handshake": handshake_seeds,
}


def main() -> int:
    if len(sys.argv) != 5 or sys.argv[1] not in TARGETS:
        print(__doc__, file=sys.stderr)
        print("targets: " + " ".join(TARGETS), file=sys.stderr)
        return 2
    target, seed_dir, run_dir, stamp = sys.argv[1:]
    os.makedirs(seed_dir, exist_ok=True)
    os.makedirs(run_dir, exist_ok=True)
    seeds = TARGETS[target]()
    for name, content in seeds:
        with open(os.path.join(seed_dir, name), "wb") as out:
            out.write(content)
    with open(stamp, "w", encoding="ascii") as out:
        out.write("%d seeds\n" % len(seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
