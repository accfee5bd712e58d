#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_text_parser, so no binary blobs live in git.

usage: make_text_seed_corpus.py SEED_DIR RUN_DIR STAMP
SEED_DIR receives the seeds (rewritten every time), RUN_DIR is created empty if
missing (libFuzzer writes what it finds there), STAMP is touched for meta.

Each seed is: one byte selecting the parser limits (bits 0-2: item_max choice,
bits 3-4: inline_value_max choice, bits 5-6: line_max choice, bit 7: retrieval
lines 32x instead of 2x; see fuzz_text_parser.cc), one byte seeding the split
points, then the connection's bytes.
"""
import os
import sys


def storage(command: bytes, key: bytes, value: bytes, extra: bytes = b"") -> bytes:
    return b"%s %s 0 0 %d%s\r\n%s\r\n" % (command, key, len(value), extra, value)


# Selector 0x6C: item_max 300, inline 16, line_max 2048, retrieval 2x.
# 0xFE: item_max 1 MiB, inline 64 KiB, line_max 2048, retrieval 32x.
# 0x2B: item_max 64, inline 16, line_max 64, retrieval 2x.
PRODUCTION = 0xFE
SMALL = 0x6C
TINY = 0x2B

SEEDS = [
    ("get", SMALL, 1, b"get a\r\nget a b c\r\ngets k\r\n"),
    ("gat", SMALL, 2, b"gat 100 a b\r\ngats -1 a\r\ngat 5\r\n"),
    ("set", SMALL, 3, storage(b"set", b"k", b"hello") + b"get k\r\n"),
    ("storage_family", SMALL, 4, storage(b"add", b"k", b"v", b" noreply") + storage(b"replace", b"k", b"v")
     + storage(b"append", b"k", b"xy") + storage(b"prepend", b"k", b"z")
     + b"cas k 0 0 2 77 noreply\r\nhi\r\n"),
    ("streamed", SMALL, 5, storage(b"set", b"big", bytes(range(200)))),
    ("too_large", SMALL, 6, storage(b"set", b"k", b"v" * 301) + b"mn\r\n"),
    ("bad_chunk", SMALL, 7, b"set k 0 0 1\r\nxy\r\nget a\r\nset k 0 0 1\nx\nget a\n"),
    ("keyed", SMALL, 8, b"delete k\r\ndelete k 0 noreply\r\nincr k 5\r\ndecr k 1 noreply\r\n"
     b"touch k 10\r\ndelete k 5\r\nincr k x\r\n"),
    ("admin", SMALL, 9, b"flush_all\r\nflush_all 10 noreply\r\nstats\r\nstats settings\r\nversion\r\n"
     b"verbosity 1\r\nverbosity noreply\r\nmn\r\nquit\r\nget a\r\n"),
    ("meta", SMALL, 10, b"mg foo v k c f s t O123 q T30 N5 R10\r\nmg Zm9v b k v\r\n"
     b"ms foo 2 F7 T100 c k O1 MA\r\nhi\r\nmd foo q C5 x T30\r\nma foo N0 J10 D3 MD v t c\r\n"),
    ("meta_errors", SMALL, 11, b"mg a v v\r\nmg a Tx\r\nmg YQ= b\r\nmd a zz\r\nma a Mi\r\n"
     b"ms a 1 MX\r\nx\r\nms b x\r\nyy\r\n"),
    ("long_line", TINY, 12, b"mn " + b"x" * 70 + b"\r\nget a\r\n"),
    ("long_get", TINY, 13, b"get " + b" ".join(b"k%d" % i for i in range(40)) + b"\r\n"),
    ("hostile", SMALL, 14, b"\x00\xff\r\n\r\n GET a\r\nget a\x01b\r\nset " + b"k" * 251
     + b" 0 0 1\r\nx\r\n" + b"\n" * 8),
    ("pipeline", PRODUCTION, 15, b"".join(
        storage(b"set", b"key%d" % i, b"value%d" % i * (i % 7)) + b"get key%d missing\r\n" % i
        + b"delete key%d noreply\r\n" % i for i in range(40)) + b"stats\r\n"),
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
