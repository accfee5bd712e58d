"""Memory limits (docs/command_line.md), run only where RLIMIT_AS applies (suite
'rlimit'; sanitizer builds skip them): eviction at -m 64 with resident memory
read from /proc, a 1 GiB value against -m 64, 1000 idle connections, and a
client that never reads its replies."""

import socket
import time

from clients import EBIG, MIB, OK, field, get_frame, put_frame
from daemon import Daemon
from harness import (assert_rss_bounded, check_alive_and_serving, pattern, raise_fd_limit, rss_limit_bytes,
                     run_tests, wait_stats)

MEMORY_MIB = 64
RSS_LIMIT = rss_limit_bytes(MEMORY_MIB)


def test_rlimit_as_is_set_and_logged(exe):
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB)) as d:
        assert "RLIMIT_AS set to" in d.log(), d.log()
        with open("/proc/%d/limits" % d.pid) as f:
            line = next(l for l in f if l.startswith("Max address space"))
        limit = int(line.split()[3])
        assert MEMORY_MIB * MIB < limit < 2048 * MIB, line


def test_eviction_keeps_resident_memory_bounded(exe):
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB)) as d:
        sizes = [100, 4096, 30000, 70 * 1024, 700 * 1024]
        written = 0
        i = 0
        with d.client() as c:
            batch = []
            while written < 5 * MEMORY_MIB * MIB:
                size = sizes[i % len(sizes)]
                batch.append(put_frame(b"e%d" % i, pattern(size, i)))
                written += size
                i += 1
                if len(batch) == 64:
                    c.send(b"".join(batch))
                    for _ in batch:
                        assert c.read_status() == OK
                    batch = []
            c.send(b"".join(batch))
            for _ in batch:
                assert c.read_status() == OK
            s = c.stats()
            assert int(s["EVICTIONS"]) > 0, s
            assert int(s["BYTES"]) <= MEMORY_MIB * MIB, s
            # The newest items survive, the oldest were evicted.
            for j in range(i - 5, i):
                assert c.get(b"e%d" % j) == pattern(sizes[j % len(sizes)], j), j
            assert c.get(b"e0") is None
        assert_rss_bounded(d, RSS_LIMIT, "after writing %d MiB" % (written // MIB))
        check_alive_and_serving(d)


def test_1_gib_value_against_m64_is_ebig(exe):
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB)) as d, d.client(timeout=60) as c:
        size = 1024 * MIB
        c.send(bytes([11]) + field(b"gigantic") + size.to_bytes(4, "big"))
        assert c.read_status() == EBIG, "EBIG comes when the length is read"
        chunk = memoryview(bytes(4 * MIB))
        for _ in range(size // len(chunk)):
            c.send(chunk)
        c.send(get_frame(b"gigantic") + put_frame(b"next", b"in sync"))
        assert c.read_value_reply() is None
        assert c.read_status() == OK
        assert c.get(b"next") == b"in sync"
        assert_rss_bounded(d, RSS_LIMIT, "after a 1 GiB value")


def test_1000_idle_connections(exe):
    count = 1000
    if raise_fd_limit(count + 100) < count + 100:
        raise AssertionError("cannot open %d sockets in the test process" % count)
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB)) as d:
        socks = []
        try:
            for _ in range(count):
                socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=10))
            # Every tenth one does a request, so all are surely accepted and served.
            for s in socks[::10]:
                s.sendall(get_frame(b"idle"))
            for s in socks[::10]:
                assert s.recv(1) == bytes([112])
            stats = wait_stats(d, lambda s: s["CONNECTIONS"] == str(count + 1), "not every connection was accepted")
            per_thread = [int(x) for x in stats["THREAD_CONNECTIONS"].split(",")]
            assert min(per_thread) >= 0.35 * (count / len(per_thread)), per_thread
            check_alive_and_serving(d)
            assert_rss_bounded(d, RSS_LIMIT, "with %d idle connections" % count)
        finally:
            for s in socks:
                s.close()
        wait_stats(d, lambda s: s["CONNECTIONS"] == "1", "idle connections were not closed")


def test_client_that_never_reads(exe):
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB)) as d:
        large = pattern(MIB, 1)
        small = pattern(8 * 1024, 2)
        with d.client() as c:
            assert c.put(b"large", large) == OK
            assert c.put(b"small", small) == OK
        hogs = []
        for frame in (get_frame(b"large"), get_frame(b"small")):
            # Asks for gigabytes of replies and never reads one.
            sock = socket.create_connection(("127.0.0.1", d.port))
            sock.setblocking(False)
            sent = 0
            deadline = time.monotonic() + 1.5
            payload = frame * 4096
            while time.monotonic() < deadline:
                try:
                    sent += sock.send(payload)
                except BlockingIOError:
                    time.sleep(0.01)
            hogs.append((sock, sent // len(frame)))
        print("  requests sent without reading: %s" % [n for _, n in hogs], flush=True)
        assert all(n > 1000 for _, n in hogs), hogs
        with d.client(timeout=10) as c:
            start = time.monotonic()
            for i in range(200):
                assert c.put(b"other%d" % i, b"v%d" % i) == OK
                assert c.get(b"other%d" % i) == b"v%d" % i
            assert c.get(b"large") == large
            elapsed = time.monotonic() - start
            assert elapsed < 10, elapsed
            s = c.stats()
            assert int(s["READ_PAUSES"]) >= 2, s
        assert_rss_bounded(d, RSS_LIMIT, "with two clients that never read")
        for sock, _ in hogs:
            sock.close()
        check_alive_and_serving(d)


def test_many_clients_stalled_in_large_keys(exe):
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB)) as d:
        key_size = 30 * MIB  # under --max-item (32 MiB): the parser must buffer it
        sent_each = 8 * MIB
        stalled = []
        for i in range(24):
            sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            try:
                sock.sendall(bytes([13]) + key_size.to_bytes(4, "big") + bytes([i]) * sent_each)
            except (ConnectionResetError, BrokenPipeError):
                pass  # dropped by the input budget
            stalled.append(sock)
        time.sleep(0.3)
        with d.client() as c:
            s = c.stats()
            print("  INPUT_BUFFERED=%s DROPPED=%s" % (s["INPUT_BUFFERED"], s["DROPPED"]), flush=True)
            assert int(s["DROPPED"]) > 0, s
            assert int(s["INPUT_BUFFERED"]) <= MEMORY_MIB * MIB // 4 + 16 * MIB, s
            assert c.put(b"still", b"served") == OK
            assert c.get(b"still") == b"served"
        assert "input budget exhausted" in d.log()
        assert_rss_bounded(d, RSS_LIMIT, "with 24 clients stalled in 30 MiB keys")
        for sock in stalled:
            sock.close()
        # Once they are gone, one large key fits again.
        with d.client() as c:
            assert c.get(b"k" * key_size) is None
            assert c.put(b"still", b"served") == OK


if __name__ == "__main__":
    run_tests(globals())
