"""Hostile clients (issue 3): unknown opcodes, maximal lengths then a
disconnect, megabytes of random bytes, half-sent frames, clients that leave
mid-reply. The daemon must survive and keep serving everyone else.

Every test runs twice, over plain TCP and over TLS (transports.py): over
TLS the hostile bytes are the plaintext of valid records after a genuine
handshake, so they reach the same parser through the TLS layer. Hostility
at the TLS record layer itself (garbage before and inside records,
truncated records, stalled handshakes) is in test_tls.py."""

import random
import socket
import struct
import threading
import time

from clients import EBIG, EINVAL, KNOWN_OPCODES, MIB, OK, field, get_frame, put_frame
from harness import check_alive_and_serving, pattern, run_tests, wait_stats
from tls_certs import Certificates, client_context
from transports import Plain, Tls, over_transports

MAX_LENGTH = b"\xff\xff\xff\xff"


def test_every_unknown_opcode_byte(exe, transport):
    with transport.daemon(exe, "-t", "2") as d, d.client() as c:
        unknown = [b for b in range(256) if b not in KNOWN_OPCODES]
        assert len(unknown) == 252
        # A first request, so that 200 is not the connection's first byte.
        c.send(get_frame(b"first") + bytes(unknown) + put_frame(b"after", b"fine") + get_frame(b"after"))
        assert c.read_value_reply() is None
        for b in unknown:
            assert c.read_status() == EINVAL, "opcode byte %d" % b
        assert c.read_status() == OK
        assert c.read_value_reply() == b"fine"
        # One connection per byte too: each is answered and the connection stays usable.
        for b in unknown:
            if b == 200:
                continue  # a replication hello as a first byte: see the next test
            with d.client() as one:
                one.send(bytes([b]) + get_frame(b"after"))
                assert one.read_status() == EINVAL, b
                assert one.read_value_reply() == b"fine", b
        assert int(c.stats()["INVALID"]) == 252 + 251


def test_replication_hello_is_refused(exe, transport):
    with transport.daemon(exe, "-t", "2") as d:
        with d.client() as c:
            c.send(bytes([200]) + field(b"RINGCACHE-REPL/1 node-b"))
            assert c.read_status() == EINVAL
            assert c.expect_eof() == b""
        with d.client() as c:
            c.send(bytes([200]) + field(b"x" * 300))  # hello longer than 256 bytes
            assert c.read_status() == EINVAL
            assert c.expect_eof() == b""
        with d.client() as c:
            c.send(bytes([200]) + MAX_LENGTH)
            assert c.read_status() == EINVAL
            assert c.expect_eof() == b""
        check_alive_and_serving(d)


def test_maximal_lengths_then_disconnect(exe, transport):
    frames = [
        bytes([11]) + MAX_LENGTH,                   # PUT key length 4 GiB - 1
        bytes([11]) + field(b"k") + MAX_LENGTH,     # PUT value length 4 GiB - 1
        bytes([13]) + MAX_LENGTH,                   # GET
        bytes([12]) + MAX_LENGTH,                   # DEL
    ]
    with transport.daemon(exe, "-t", "2") as d:
        for frame in frames:
            for tail in (b"", b"some bytes of the huge field", b"\x00" * 70000):
                with d.client() as c:
                    c.send(frame)
                    assert c.read_status() == EBIG
                    c.send(tail)
        # Lengths cut short, then gone.
        for partial in (b"\x0b\xff", b"\x0b\xff\xff\xff", b"\x0d\x00\x00\x10", b"\x0b" + field(b"k") + b"\x00\x10"):
            with d.client() as c:
                c.send(partial)
        # With a large --max-item the announced value is accepted and streamed:
        # the client vanishes after a few bytes and the reservation is dropped.
        check_alive_and_serving(d)
    with transport.daemon(exe, "-t", "1", "-m", "64", "--max-item", "60M") as d:
        for _ in range(3):
            with d.client() as c:
                c.send(bytes([11]) + field(b"big") + struct.pack(">I", 50 * MIB) + b"v" * 300000)
        with d.client() as c:
            s = c.stats()
            assert s["KEYS"] == "0", s
            assert c.get(b"big") is None
        check_alive_and_serving(d)


def _drain_until_eof(sock, done):
    try:
        while sock.recv(1 << 20):
            pass
    except OSError:
        pass
    done.set()


def _hostile_bytes(rng, size):
    """Random frames with random keys and values among runs of unknown opcode
    bytes. Unlike uniform noise (whose first PUT announces a huge length that
    swallows the rest), the parser has to walk through thousands of frames."""
    unknown = [b for b in range(256) if b not in KNOWN_OPCODES and b != 200]
    out = bytearray()
    while len(out) < size:
        r = rng.random()
        if r < 0.3:
            out += bytes(rng.choice(unknown) for _ in range(rng.randint(1, 16)))
        elif r < 0.6:
            out += put_frame(rng.randbytes(rng.randint(0, 3)), rng.randbytes(rng.randint(0, 300)))
        elif r < 0.8:
            out += get_frame(rng.randbytes(rng.randint(0, 3)))
        elif r < 0.95:
            out += bytes([12]) + field(rng.randbytes(rng.randint(0, 3)))
        else:
            out.append(21)
    # Last, a length up to 4 GiB - 1 that the client never fills.
    return bytes(out) + bytes([11]) + rng.randbytes(4)


def _random_garbage_client(transport, d, seed, size, errors):
    rng = random.Random(seed)
    data = rng.randbytes(size) if seed == 0 else _hostile_bytes(rng, size)
    try:
        raw = transport.raw(d, timeout=30)
        sock = raw.sock
        done = threading.Event()
        reader = threading.Thread(target=_drain_until_eof, args=(sock, done), daemon=True)
        reader.start()
        raw.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        if not done.wait(30):
            errors.append("seed %d: the daemon did not finish the connection" % seed)
        sock.close()
    except OSError as e:
        # A reset is acceptable (e.g. the stash limit); a hang is not.
        if not isinstance(e, (ConnectionResetError, BrokenPipeError)):
            errors.append("seed %d: %r" % (seed, e))


# Round trips the bystander must complete while garbage is flowing; the
# garbage keeps coming (2 MiB per connection, new connections) until it has,
# within a time bound, so the check does not depend on the machine's speed.
BYSTANDER_ROUND_TRIPS = 20
GARBAGE_SECONDS_MAX = 30


def test_megabytes_of_random_bytes(exe, transport):
    for extra in ([], ["--max-item", "1K"]):
        with transport.daemon(exe, "-t", "2", *extra) as d:
            errors = []
            bystander_done = threading.Event()
            checked = [0]

            def bystander():
                # Another client keeps working, byte-exact, while the garbage flows.
                try:
                    with d.client(timeout=10) as c:
                        for i in range(BYSTANDER_ROUND_TRIPS):
                            value = pattern(i % 900, i)
                            assert c.put(b"by%d" % i, value) == OK
                            assert c.get(b"by%d" % i) == value
                            checked[0] = i + 1
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append("bystander: %r" % e)
                finally:
                    bystander_done.set()

            def garbage_source(seed):
                deadline = time.monotonic() + GARBAGE_SECONDS_MAX
                round_ = 0
                while not bystander_done.is_set() and time.monotonic() < deadline:
                    _random_garbage_client(transport, d, seed + 4 * round_ if round_ else seed, 2 * MIB, errors)
                    round_ += 1

            garbage = [threading.Thread(target=garbage_source, args=(seed,)) for seed in range(4)]
            for t in garbage:
                t.start()
            watcher = threading.Thread(target=bystander)
            watcher.start()
            watcher.join(GARBAGE_SECONDS_MAX + 10)
            for t in garbage:
                t.join(GARBAGE_SECONDS_MAX + 40)
            assert not errors, errors
            assert checked[0] == BYSTANDER_ROUND_TRIPS, checked
            check_alive_and_serving(d)
            with d.client() as c:
                s = c.stats()
                assert int(s["INVALID"]) > 10000, s


def test_half_sent_frame_costs_others_nothing(exe, transport):
    with transport.daemon(exe, "-t", "1") as d:
        value = pattern(200 * 1024, 4)
        frame = put_frame(b"half", value)
        with d.client() as stalled, d.client() as other:
            stalled.send(frame[:len(frame) // 2])  # a streamed value, half sent
            with d.client() as stalled_key:
                stalled_key.send(bytes([13]) + struct.pack(">I", 1000) + b"k" * 10)  # half a key
                start = time.monotonic()
                for i in range(200):
                    assert other.put(b"o%d" % i, b"x" * i) == OK
                    assert other.get(b"o%d" % i) == b"x" * i
                assert time.monotonic() - start < 10
            stalled.send(frame[len(frame) // 2:])
            assert stalled.read_status() == OK
            assert other.get(b"half") == value


def test_client_leaving_mid_reply(exe, transport):
    with transport.daemon(exe, "-t", "2", "-m", "128") as d:
        value = pattern(20 * MIB, 9)
        with d.client() as c:
            assert c.put(b"large", value) == OK
        for i in range(8):
            raw = transport.raw(d)
            raw.sendall(get_frame(b"large") * 4)
            if i % 2:
                raw.sock.recv(1000)
                # RST instead of FIN: the daemon's pending send fails with ECONNRESET/EPIPE.
                raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
        check_alive_and_serving(d)
        wait_stats(d, lambda s: s["CONNECTIONS"] == "1", "connections were not closed")
        with d.client() as c:
            assert c.get(b"large") == value


if __name__ == "__main__":
    with Certificates() as certs:
        run_tests(over_transports(globals(), [Plain(), Tls(certs, client_context(certs))]))
