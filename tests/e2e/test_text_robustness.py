"""The text port under pressure (issue 7): pipelined multi-gets, lines
fragmented down to single bytes, large and refused values, hostile input,
and slow readers. The daemon must answer in order, stay in sync, never
crash, and keep serving everyone else.

Every test runs twice, over plain TCP and over TLS (transports.py; the
text port speaks TLS under --tls-cert as memcached's does under -Z): over
TLS each send is its own record, so fragmented lines arrive as records of
one byte, and hostile bytes are the plaintext of valid records after a
genuine handshake."""

import random
import socket
import time

from clients import MIB
from harness import check_alive_and_serving, pattern, run_tests
from tls_certs import Certificates, client_context
from transports import Plain, Tls, over_transports

# A connection's queue of replies (write_queue_bytes_max in server/io/session.h).
WRITE_QUEUE_BYTES_MAX = 4 * MIB


def rss_below(daemon, limit_bytes):
    """Resident memory bound; sanitizer builds (no RLIMIT_AS, quarantined frees) are exempt."""
    return daemon.sanitizer_build() or daemon.rss_bytes() < limit_bytes


def tcp_send_buffer_bytes_max():
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        return int(f.read().split()[2])


def hits_settled(c, since, settle_s=0.3, timeout_s=10):
    """get_hits minus since, once two readings settle_s apart agree."""
    deadline = time.monotonic() + timeout_s
    last = int(c.stats()["get_hits"])
    while True:
        time.sleep(settle_s)
        now = int(c.stats()["get_hits"])
        if now == last:
            return now - since
        assert time.monotonic() < deadline, "get_hits still moving: %d" % now
        last = now


def test_pipelined_multigets_answer_in_order(exe, transport):
    with transport.daemon(exe, "-t", "2", "-m", "32", text="bind") as d, transport.text_client(d) as c:
        keys = [b"key:%d" % i for i in range(200)]
        c.send(b"".join(b"set %s %d 0 %d noreply\r\n%s\r\n" % (k, i, len(k) * 3, k * 3)
                        for i, k in enumerate(keys)) + b"mn\r\n")
        assert c.read_line() == b"MN"
        rng = random.Random(5)
        requests = []
        for _ in range(2000):
            wanted = [rng.choice(keys) if rng.random() < 0.8 else b"miss:%d" % rng.randrange(100)
                      for _ in range(rng.randrange(1, 12))]
            requests.append(wanted)
        c.send(b"".join(b"get " + b" ".join(w) + b"\r\n" for w in requests))
        for wanted in requests:
            found = c.read_values()
            expected = {k: (keys.index(k), k * 3, None) for k in wanted if k in keys}
            assert found == expected


def test_fragmented_lines_and_values(exe, transport):
    stream = (b"set frag 3 0 10\r\n0123456789\r\n"
              b"get frag miss\r\n"
              b"ms meta 4 T0 F9\r\nabcd\r\n"
              b"mg meta v f\r\n"
              b"set bad 0 0 1\r\nxyz\r\n"
              b"incr frag 1\r\n"
              b"mn\r\n")
    expected = (b"STORED\r\nVALUE frag 3 10\r\n0123456789\r\nEND\r\nHD\r\nVA 4 f9\r\nabcd\r\n"
                b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"
                b"123456790\r\nMN\r\n")
    with transport.daemon(exe, "-t", "2", "-m", "16", text="bind") as d:
        for piece_bytes in (1, 2, 3, 7, len(stream)):
            with transport.text_client(d) as c:
                c.send(b"delete frag noreply\r\ndelete meta noreply\r\n")
                for start in range(0, len(stream), piece_bytes):
                    c.send(stream[start:start + piece_bytes])
                    if piece_bytes < 4:
                        time.sleep(0.0005)
                got = c.read_exact(len(expected))
                assert got == expected, (piece_bytes, got)


def test_large_values_stream_both_ways(exe, transport):
    with transport.daemon(exe, "-t", "2", "-m", "64", text="bind") as d, transport.text_client(d) as c, \
            d.client() as b:
        for size in (64 * 1024 + 1, 5 * MIB):
            value = pattern(size, size)
            assert c.store(b"set", b"big", value, flags=3) == b"STORED"
            assert c.get(b"big") == {b"big": (3, value, None)}
            assert b.get(b"big") == value
        # A streamed value with a wrong terminator is not stored and the
        # stream stays in sync.
        value = pattern(200 * 1024, 1)
        c.send(b"set big2 0 0 %d\r\n%sXXget big2\r\n" % (len(value), value))
        assert c.read_line() == b"CLIENT_ERROR bad data chunk"
        assert c.read_values() == {}
        # Appends larger than one read gather before they are applied.
        assert c.store(b"set", b"grow", b"<") == b"STORED"
        assert c.store(b"append", b"grow", value) == b"STORED"
        assert c.value(b"grow") == b"<" + value


def test_refused_values_are_skipped_whole(exe, transport):
    with transport.daemon(exe, "-t", "2", "-m", "16", "--max-item", "1M", text="bind") as d, \
            transport.text_client(d) as c:
        assert c.store(b"set", b"k", b"old") == b"STORED"
        hidden = b"flush_all\r\n" * 1000
        too_large = hidden + b"x" * (MIB + 1 - len(hidden))
        assert c.store(b"set", b"k", too_large) == b"SERVER_ERROR object too large for cache"
        assert c.value(b"k") is None, "a set refused as too large drops the old value (as memcached)"
        c.store(b"set", b"keep", b"1")
        # A bad line whose size is readable: its block is skipped, never run.
        c.send(b"set %s 0 0 %d\r\n%s\r\n" % (b"k" * 251, len(hidden), hidden))
        assert c.read_line() == b"CLIENT_ERROR bad command line format"
        assert c.value(b"keep") == b"1"
        # A huge announced size costs nothing: the bytes are counted away.
        c.send(b"set huge 0 0 4000000000 noreply\r\n")
        sent = 0
        chunk = b"v" * MIB
        while sent + len(chunk) <= 64 * MIB:
            c.send(chunk)
            sent += len(chunk)
        assert rss_below(d, 200 * MIB)
        c.close()
        check_alive_and_serving(d)


def test_long_lines_end_the_connection(exe, transport):
    with transport.daemon(exe, "-t", "2", "-m", "16", text="bind") as d:
        with transport.text_client(d) as c:
            c.send(b"x" * 3000)
            assert c.expect_eof() == b"CLIENT_ERROR line too long\r\n"
        with transport.text_client(d) as c:
            c.send(b"set k 0 0 1 " + b" " * 2100 + b"\r\nx\r\n")
            assert c.expect_eof() == b"CLIENT_ERROR line too long\r\n"
        with transport.text_client(d) as c:
            # A multi-get may be long: 64 KiB of keys.
            keys = b" ".join(b"k%05d" % i for i in range(9000))
            assert len(keys) < 64 * 1024
            assert c.get(keys) == {}
        check_alive_and_serving(d)


def test_hostile_bytes_never_crash(exe, transport):
    rng = random.Random(11)
    with transport.daemon(exe, "-t", "2", "-m", "16", text="bind") as d, transport.text_client(d) as good:
        good.store(b"set", b"stable", b"value")
        errors_before = int(good.stats()["client_errors"])
        for round_number in range(30):
            raw = transport.raw(d, timeout=5, text=True)
            sock = raw.sock
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000)))
            words = [b"get", b"set", b"ms", b"mg", b"ma", b"md", b"incr", b"cas", b"gat", b"\r\n", b" ", b"noreply",
                     b"99999999999999999999", b"-1", b"b", b"O", b"T", b"\n", b"0"]
            phrases = b"".join(rng.choice(words) + (b" " if rng.random() < 0.5 else b"") for _ in range(300))
            try:
                raw.sendall(noise if round_number % 2 else phrases)
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(2)
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                sock.close()
            assert good.value(b"stable") == b"value"
        # The bytes reached the parser, over TLS too: each of the 15 rounds
        # of phrases holds lines that are errors (the seeded rounds make 520
        # errors on both transports).
        errors = int(good.stats()["client_errors"]) - errors_before
        assert errors >= 15, "the hostile bytes made %d client errors" % errors
        check_alive_and_serving(d)


def test_slow_reader_multiget_pauses_without_harm(exe, transport):
    value_bytes = 256 * 1024
    with transport.daemon(exe, "-t", "2", "-m", "64", text="bind") as d, transport.text_client(d) as c:
        keys = [b"slow:%d" % i for i in range(40)]
        for i, key in enumerate(keys):
            assert c.store(b"set", key, pattern(value_bytes, i)) == b"STORED"
        # 20 multi-gets of 40 large values each (200 MiB of replies) that the
        # client does not read yet: the daemon must pause, not buffer.
        slow = transport.text_client(d)
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        rounds = 20
        hits_before = int(c.stats()["get_hits"])
        slow.send(b"".join(b"get " + b" ".join(keys) + b"\r\n" for _ in range(rounds)))
        time.sleep(0.5)
        assert rss_below(d, 150 * MIB), "replies to a slow reader were buffered"
        # The values answered so far (get_hits counts them as they are
        # queued), once the count stands still: the pause holds them to what
        # the connection's queue and the kernel's send buffer at its largest
        # take, plus 1 MiB for the reader's receive buffer, a TLS round and
        # the value under way. VmRSS alone would miss a daemon that does not
        # pause, as these values are referenced, not copied, into the
        # replies; this count also holds in sanitizer builds, and over TLS
        # it counts plaintext answered, not ciphertext.
        answered = hits_settled(c, hits_before)
        print("  %d of %d values answered before the slow reader read" % (answered, rounds * len(keys)), flush=True)
        answered_bytes_max = WRITE_QUEUE_BYTES_MAX + tcp_send_buffer_bytes_max() + MIB
        assert answered * value_bytes <= answered_bytes_max, "the daemon did not pause: %d values" % answered
        # Everyone else is still served promptly.
        start = time.monotonic()
        assert c.value(keys[0]) == pattern(value_bytes, 0)
        assert time.monotonic() - start < 2
        for _ in range(rounds):
            found = slow.read_values()
            assert len(found) == len(keys)
            for i, key in enumerate(keys):
                assert found[key][1] == pattern(value_bytes, i)
        slow.close()


def test_many_half_sent_requests(exe, transport):
    with transport.daemon(exe, "-t", "2", "-m", "16", text="bind") as d:
        idle = []
        for i in range(200):
            raw = transport.raw(d, timeout=5, text=True)
            raw.sendall(b"set half%d 0 0 100\r\n%s" % (i, b"v" * 50) if i % 2 else b"get half" + b"k" * 100)
            idle.append(raw)
        check_alive_and_serving(d)
        with transport.text_client(d) as c:
            assert c.store(b"set", b"ok", b"1") == b"STORED"
            assert int(c.stats()["curr_connections"]) >= 200
        for raw in idle:
            raw.close()


if __name__ == "__main__":
    with Certificates() as certs:
        run_tests(over_transports(globals(), [Plain(), Tls(certs, client_context(certs))]))
