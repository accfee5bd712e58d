#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_binary_parser, so no binary blobs live in git.

usage: make_seed_corpus.py SEED_DIR RUN_DIR STAMP
SEED_DIR receives the seeds (rewritten every time), RUN_DIR is created empty if
missing (libFuzzer writes what it finds there), STAMP is touched for meson.

Each seed is: one byte selecting the parser limits (low 3 bits: item_max
choice, next 3 bits: inline_value_max choice, see fuzz_binary_parser.cc), one
byte seeding the split points, then the connection's bytes.
"""
import os
import struct
import sys


def field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def put(key: bytes, value: bytes) -> bytes:
    return b"\x0b" + field(key) + field(value)


def get(key: bytes) -> bytes:
    return b"\x0d" + field(key)


def delete(key: bytes) -> bytes:
    return b"\x0c" + field(key)


STATS = b"\x15"
HELLO = b"\xc8" + field(b"RINGCACHE-REPL/1 node-a")

# (name, limits selector, split seed, stream). Selector 0x1C: item_max 300,
# inline 64 bytes; 0x2E: item_max 1 MiB, inline 64 KiB; 0x0B: item_max 64, inline 1.
SEEDS = [
    ("get", 0x1C, 1, get(b"user:42")),
    ("del", 0x1C, 2, delete(b"user:42")),
    ("stats", 0x1C, 3, STATS),
    ("put", 0x1C, 4, put(b"user:42", b"hello world")),
    ("put_empty", 0x1C, 5, put(b"", b"")),
    ("put_streamed", 0x1C, 6, put(b"k", bytes(range(200)))),
    ("put_key_plus_value_over_buffer", 0x1C, 7, put(b"k" * 280, b"v" * 30)),
    ("put_big_key", 0x1C, 8, put(b"k" * 301, b"value") + get(b"next")),
    ("put_big_value", 0x1C, 9, put(b"key", b"v" * 301) + STATS),
    ("get_big_key", 0x0B, 10, get(b"x" * 65) + get(b"y")),
    ("all_ones_length", 0x2E, 11, b"\x0b\xff\xff\xff\xff" + b"\x0d" * 64),
    ("invalid_opcodes", 0x1C, 12, b"\x00\x65\x6f\xc8\xff" + get(b"k")),
    ("hello", 0x1C, 13, HELLO + get(b"k") + b"\xc8"),
    ("hello_too_long", 0x1C, 14, b"\xc8" + field(b"h" * 257) + get(b"k")),
    ("pipeline", 0x2E, 15, HELLO + b"".join(
        put(b"key%d" % i, b"value%d" % i * (i % 7)) + get(b"key%d" % i) + delete(b"key%d" % i)
        for i in range(40)) + STATS),
]


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    seed_dir, run_dir, stamp = sys.argv[1:]
    os.makedirs(seed_dir, exist_ok=True)
    os.makedirs(run_dir, exist_ok=True)
    for name, selector, split_seed, stream in SEEDS:
        with open(os.path.join(seed_dir, name), "wb") as out:
            out.write(bytes([selector, split_seed]) + stream)
    with open(stamp, "w", encoding="ascii") as out:
        out.write("%d seeds\n" % len(SEEDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
