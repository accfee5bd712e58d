"""Writes seed inputs for fuzz_wire_decoder: valid replication streams (one
chunk-size byte, then frames), so that libFuzzer starts from real frames.
Usage: make_wire_seeds.py SEED_DIR RUN_DIR STAMP"""

import os
import struct
import sys


def field(b):
    return struct.pack(">I", len(b)) + b


def put(key, value, version=7, flags=1, expires=0):
    return bytes([201]) + struct.pack(">QII", version, flags, expires) + field(key) + field(value)


def main():
    seed_dir, run_dir, stamp = sys.argv[1:4]
    os.makedirs(seed_dir, exist_ok=True)
    os.makedirs(run_dir, exist_ok=True)
    streams = {
        "put": put(b"key", b"value"),
        "big_put": put(b"k", bytes(range(256)) * 4),
        "too_big": put(b"k" * 5000, b"v"),
        "del": bytes([202]) + struct.pack(">Q", 9) + field(b"key"),
        "resync": bytes([206]) + struct.pack(">I", 2) + bytes([203]) + put(b"a", b"1") +
                  bytes([204]) + struct.pack(">Q", 1),
        "heartbeat": bytes([205]) + struct.pack(">Q", 1700000000000000),
        "flush": put(b"a", b"1") + bytes([207]) + struct.pack(">QI", 1 << 40, 0) +
                 bytes([207]) + struct.pack(">QI", 9, 1700000000) + put(b"b", b"2"),
        "bad": put(b"a", b"b") + bytes([208]) + put(b"c", b"d"),
    }
    for name, body in streams.items():
        for chunk in (0, 3):
            with open(os.path.join(seed_dir, "%s_%d" % (name, chunk)), "wb") as f:
                f.write(bytes([chunk]) + body)
    with open(stamp, "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main()
