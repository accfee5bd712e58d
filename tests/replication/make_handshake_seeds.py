"""Writes seed inputs for fuzz_handshake: one selector byte (decoder in the
low 2 bits, chunk size above), then a real challenge, response, AUTH_OK or
hello field. Usage: make_handshake_seeds.py SEED_DIR RUN_DIR STAMP"""

import os
import struct
import sys


def field(b):
    return struct.pack(">I", len(b)) + b


def main():
    seed_dir, run_dir, stamp = sys.argv[1:4]
    os.makedirs(seed_dir, exist_ok=True)
    os.makedirs(run_dir, exist_ok=True)
    nonce = bytes(range(32))
    mac = bytes(range(100, 132))
    inputs = {
        "challenge": (0, bytes([208]) + field(b"node-b") + nonce + mac),
        "challenge_refused": (0, bytes([111])),
        "response": (1, bytes([209]) + mac),
        "auth_ok": (2, bytes([101]) + bytes([206]) + struct.pack(">I", 2)),
        "hello_v1": (3, b"RINGCACHE-REPL/1 node-a"),
        "hello_v2": (3, b"RINGCACHE-REPL/2 node-a " + nonce.hex().encode()),
    }
    for name, (which, body) in inputs.items():
        for chunk in (0, 4):
            with open(os.path.join(seed_dir, "%s_%d" % (name, chunk)), "wb") as f:
                f.write(bytes([which | (chunk << 2)]) + body)
    with open(stamp, "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main()
