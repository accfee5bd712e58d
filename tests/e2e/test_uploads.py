"""Values still arriving cannot starve the store (issue 11).

Clients that announce a large value, send a little of it and stall hold
store memory that cannot be evicted. The daemon bounds what they may hold
together (UPLOAD_BYTES_MAX, a share of -m: server/resource_limits.h), refuses
what would pass it (EUNK / SERVER_ERROR out of memory storing object, after
reading the value), and closes a connection idle in the middle of a request
after --upload-timeout. Real daemon at -m 64 on 127.0.0.1; every wait is
bounded.
"""

import re
import socket
import struct
import time

from clients import EUNK, MIB, OK, TextClient, field, get_frame, put_frame
from daemon import Daemon
from harness import (assert_rss_bounded, check_alive_and_serving, pattern, raise_fd_limit, rss_limit_bytes,
                     run_tests, wait_stats)

MEMORY_MIB = 64
RSS_LIMIT = rss_limit_bytes(MEMORY_MIB)
ANNOUNCED_BYTES = 30 * MIB  # under the default --max-item of -m 64 (32 MiB)
SENT_BYTES = 64 * 1024
STALLED_COUNT = 150
TEXT_OUT_OF_MEMORY = b"SERVER_ERROR out of memory storing object"
# A line of the daemon's log that says something went wrong.
ERROR_LINE_RE = re.compile(r"error|cancel|fatal|bad file|dropped", re.IGNORECASE)


def stall_binary(port, i):
    """A binary PUT announcing ANNOUNCED_BYTES, of which SENT_BYTES are sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = b"stalled-binary-%d" % i
    sock.sendall(bytes([11]) + field(key) + struct.pack(">I", ANNOUNCED_BYTES) + pattern(SENT_BYTES, i))
    return sock


def stall_text(port, i):
    """A text set announcing ANNOUNCED_BYTES, of which SENT_BYTES are sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"set stalled-text-%d 0 0 %d\r\n" % (i, ANNOUNCED_BYTES) + pattern(SENT_BYTES, i))
    return sock


def open_stalled(d, count):
    """count stalled uploads, alternating between the binary and the text port."""
    socks = []
    for i in range(count):
        socks.append(stall_binary(d.port, i) if i % 2 == 0 else stall_text(d.text_port, i))
    return socks


def wait_all_read(d, count):
    """Until every stalled upload's first bytes were read: each holds one
    block (1 MiB: its SENT_BYTES fit in the first) or was refused."""
    return wait_stats(d, lambda s: int(s["UPLOAD_REFUSED"]) + int(s["UPLOAD_BYTES"]) // MIB >= count,
                      "not every stalled upload was read")


def upload_fields(s):
    return {name: int(s[name]) for name in ("UPLOAD_BYTES", "UPLOAD_BYTES_MAX", "UPLOAD_REFUSED",
                                            "UPLOAD_ABORTS")}


def assert_no_error_lines(d):
    bad = [line for line in d.log().splitlines() if ERROR_LINE_RE.search(line)]
    assert not bad, "error lines in the log:\n" + "\n".join(bad)


def small_writes_on_both_ports(d, tag, count=50):
    """count small PUTs on the binary port and sets on the text port (each
    port's requests pipelined), each answered OK / STORED and read back from
    the other port; returns the seconds they took."""
    keys = [b"small-%s-%d" % (tag, i) for i in range(count)]
    values = [pattern(100 + i * 37, i) for i in range(count)]
    start = time.monotonic()
    with d.client(timeout=5) as b, TextClient(d.text_port, timeout=5) as t:
        b.send(b"".join(put_frame(k + b"-b", v) for k, v in zip(keys, values)))
        t.send(b"".join(b"set %s-t 0 0 %d\r\n%s\r\n" % (k, len(v), v) for k, v in zip(keys, values)))
        statuses = [b.read_status() for _ in keys]
        assert statuses == [OK] * count, statuses
        lines = [t.read_line() for _ in keys]
        assert lines == [b"STORED"] * count, lines
        b.send(b"".join(get_frame(k + b"-t") for k in keys))
        t.send(b"get " + b" ".join(k + b"-b" for k in keys) + b"\r\n")
        assert [b.read_value_reply() for _ in keys] == values
        found = t.read_values()
        assert [found[k + b"-b"][1] for k in keys] == values
    return time.monotonic() - start


def write_more_than_memory(d, factor=2):
    """Writes factor x -m in 16 KiB values on both ports: every write must be
    stored, so eviction has room to work beside the stalled uploads."""
    value = pattern(16 * 1024, 7)
    batch = 64
    rounds = factor * MEMORY_MIB * MIB // (len(value) * batch * 2)
    with d.client() as b, TextClient(d.text_port) as t:
        for r in range(rounds):
            b.send(b"".join(put_frame(b"fill-b-%d-%d" % (r, i), value) for i in range(batch)))
            t.send(b"".join(b"set fill-t-%d-%d 0 0 %d noreply\r\n%s\r\n" % (r, i, len(value), value)
                            for i in range(batch)))
            for _ in range(batch):
                assert b.read_status() == OK
            assert t.call(b"mn") == b"MN"  # every noreply set before it is done
        assert b.get(b"fill-b-%d-%d" % (rounds - 1, batch - 1)) == value
        assert t.value(b"fill-t-%d-%d" % (rounds - 1, batch - 1)) == value
        s = b.stats()
        assert int(s["EVICTIONS"]) > 0, s
        assert int(t.stats()["store_no_memory"]) == 0


def large_upload_binary(d, key, size, seed):
    """A PUT of size bytes sent at full speed: its status, checked against the store."""
    value = pattern(size, seed)
    with d.client(timeout=60) as c:
        status = c.put(key, value)
        assert status in (OK, EUNK), status
        if status == OK:
            assert c.get(key) == value, "OK but not stored"
        return status


def large_upload_text(d, key, size, seed):
    value = pattern(size, seed)
    with TextClient(d.text_port, timeout=60) as t:
        line = t.store(b"set", key, value)
        assert line in (b"STORED", TEXT_OUT_OF_MEMORY), line
        if line == b"STORED":
            assert t.value(key) == value, "STORED but not stored"
        return line


def test_issue_probe_70_stalled_binary_uploads(exe):
    """The probe from the issue: 70 connections on the binary port announce
    30 MiB, send 64 KiB and stall. Before the bound, every other client's PUT
    answered EUNK until they left."""
    raise_fd_limit(200)
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB), text="bind") as d:
        stalled = [stall_binary(d.port, i) for i in range(70)]
        try:
            wait_stats(d, lambda s: int(s["BYTES_READ"]) >= 70 * SENT_BYTES, "the uploads were not read")
            others = [d.client(timeout=5) for _ in range(5)]
            for j, c in enumerate(others):
                assert c.put(b"other-%d" % j, b"v" * 100) == OK
            for j, c in enumerate(others):
                assert c.get(b"other-%d" % j) == b"v" * 100
                c.close()
            u = upload_fields(wait_all_read(d, 70))
            print("  with 70 stalled uploads: %s" % u, flush=True)
            assert 0 < u["UPLOAD_BYTES"] <= u["UPLOAD_BYTES_MAX"], u
            assert u["UPLOAD_REFUSED"] == 70 - u["UPLOAD_BYTES_MAX"] // MIB, u
        finally:
            for sock in stalled:
                sock.close()
        wait_stats(d, lambda s: s["UPLOAD_BYTES"] == "0", "closing the uploads returns their memory")


def test_stalled_uploads_on_both_ports_leave_small_writes_working(exe):
    raise_fd_limit(STALLED_COUNT + 200)
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB), text="bind") as d:
        stalled = open_stalled(d, STALLED_COUNT)
        try:
            u = upload_fields(wait_all_read(d, STALLED_COUNT))
            print("  with %d stalled uploads: %s" % (STALLED_COUNT, u), flush=True)
            assert 0 < u["UPLOAD_BYTES"] <= u["UPLOAD_BYTES_MAX"], u
            # -m 64, --max-item 32 MiB: 32 MiB + two 1 MiB segments.
            assert u["UPLOAD_BYTES_MAX"] == 34 * MIB, u
            assert u["UPLOAD_REFUSED"] >= STALLED_COUNT - 34, u

            took = small_writes_on_both_ports(d, b"attack")
            print("  100 small writes and 100 reads during the attack: %.3f s" % took, flush=True)
            assert took < 1.0, took
            write_more_than_memory(d)
            assert_rss_bounded(d, RSS_LIMIT, "with %d stalled uploads" % STALLED_COUNT)

            # A large upload during the attack is refused (after its value
            # was read) or stored, never left hanging nor acknowledged unstored.
            print("  20 MiB during the attack: binary %s, text %r" % (
                large_upload_binary(d, b"during-b", 20 * MIB, 1),
                large_upload_text(d, b"during-t", 20 * MIB, 2)), flush=True)

            with TextClient(d.text_port) as t:
                ts = t.stats()
            assert int(ts["upload_bytes"]) <= int(ts["upload_bytes_max"]) == u["UPLOAD_BYTES_MAX"], ts
            assert int(ts["upload_refused"]) >= u["UPLOAD_REFUSED"], ts
            s = wait_stats(d, lambda s: True, "")
            # The default --upload-timeout (30 s) has not closed any of them.
            assert s["UPLOAD_ABORTS"] == "0", s
            assert int(s["CONNECTIONS"]) >= STALLED_COUNT, s
        finally:
            for sock in stalled:
                sock.close()
        wait_stats(d, lambda s: s["UPLOAD_BYTES"] == "0", "closing the uploads returns their memory")
        # With nothing else in flight, large values fit again.
        assert large_upload_binary(d, b"after-b", 20 * MIB, 3) == OK
        assert large_upload_text(d, b"after-t", 20 * MIB, 4) == b"STORED"
        check_alive_and_serving(d)

        # Shutdown with stalled uploads and other connections open logs no error.
        stalled = open_stalled(d, 40)
        idle = [d.client() for _ in range(10)]
        try:
            wait_all_read(d, 40)
            assert d.stop() == 0
        finally:
            for sock in stalled:
                sock.close()
            for c in idle:
                c.close()
        assert_no_error_lines(d)


def test_idle_uploads_are_closed_after_the_timeout(exe):
    raise_fd_limit(STALLED_COUNT + 200)
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB), "--upload-timeout", "2", text="bind") as d:
        assert "idle for 2 s in the middle of a request is closed" in d.log(), d.log()
        stalled = open_stalled(d, STALLED_COUNT)
        last_send = time.monotonic()
        try:
            u = upload_fields(wait_all_read(d, STALLED_COUNT))
            assert u["UPLOAD_BYTES"] > 0, u
            took = small_writes_on_both_ports(d, b"before-timeout")
            assert took < 1.0, took
            s = wait_stats(d, lambda s: True, "")
            if time.monotonic() - last_send < 1.9:
                # Not one closed before the timeout.
                assert s["UPLOAD_ABORTS"] == "0", s

            # Closed after 2 s (at most one 1 s tick later), all of them.
            deadline = last_send + 2 + 1 + 5
            for sock in stalled:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                # The text port answers nothing either: the upload is cut, not refused.
                assert data == b"", data
            closed_after = time.monotonic() - last_send
            print("  %d stalled uploads closed %.1f s after their last byte" % (STALLED_COUNT, closed_after),
                  flush=True)
            assert closed_after >= 2.0, closed_after
        finally:
            for sock in stalled:
                sock.close()
        s = wait_stats(d, lambda s: s["UPLOAD_BYTES"] == "0" and s["CONNECTIONS"] == "1",
                       "the idle uploads are gone and their memory returned")
        assert s["UPLOAD_ABORTS"] == str(STALLED_COUNT), s
        with TextClient(d.text_port) as t:
            assert t.stats()["upload_aborts"] == str(STALLED_COUNT)
        # One summary line per worker and tick, not one per connection (the
        # uploads were opened over a second or more on a loaded machine, so
        # their timeouts may fall in a few ticks).
        summaries = [line for line in d.log().splitlines() if "in the middle of a request (" in line]
        assert 1 <= len(summaries) <= STALLED_COUNT // 10, summaries
        assert sum(int(re.search(r"closed (\d+) connections", line).group(1)) for line in summaries) == \
            STALLED_COUNT, summaries
        # Alive but slow: a 4 MiB value in pieces spread over 4 s, longer
        # than the timeout but never 2 s without a byte, is stored.
        with d.client(timeout=20) as slow:
            slow_value = pattern(4 * MIB, 9)
            slow.send(bytes([11]) + field(b"slow") + struct.pack(">I", len(slow_value)))
            piece = len(slow_value) // 8
            for k in range(8):
                time.sleep(0.5)
                slow.send(slow_value[k * piece:(k + 1) * piece])
            assert slow.read_status() == OK
            assert slow.get(b"slow") == slow_value
        # With nothing else in flight, large values are stored.
        assert large_upload_binary(d, b"legit-b", 20 * MIB, 5) == OK
        assert large_upload_text(d, b"legit-t", 20 * MIB, 6) == b"STORED"
        # A partial key and a partial text line are cut too; a connection
        # between requests is not.
        between = d.client()
        assert between.put(b"k", b"v") == OK
        partial_key = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        partial_key.sendall(bytes([13]) + struct.pack(">I", 1000) + b"k" * 10)
        partial_line = socket.create_connection(("127.0.0.1", d.text_port), timeout=10)
        partial_line.sendall(b"get partial-li")
        for sock in (partial_key, partial_line):
            sock.settimeout(8)
            assert sock.recv(1) == b""
            sock.close()
        assert between.get(b"k") == b"v"
        between.close()
        wait_stats(d, lambda s: s["UPLOAD_ABORTS"] == str(STALLED_COUNT + 2), "partial requests are cut")
        assert d.stop() == 0
        assert_no_error_lines(d)


def test_connections_closed_after_a_reply_log_no_cancel_error(exe):
    """Regression: a connection closing right after its reply (a refused
    replication hello, a text quit) had its recv cancelled by fd; when the
    recv ended in the same batch the fd was closed first, and the log said
    'cancel: Bad file descriptor'."""
    with Daemon(exe, "-t", "2", "-m", str(MEMORY_MIB), text="bind") as d:
        for i in range(60):
            with d.client(timeout=10) as c:
                c.send(bytes([200]) + field(b"RINGCACHE-REPL/1 node-%d" % i))
                assert c.read_status() == 111
                assert c.expect_eof() == b""
            with TextClient(d.text_port, timeout=10) as t:
                t.send(b"mn\r\nquit\r\n")
                assert t.expect_eof() == b"MN\r\n"
        check_alive_and_serving(d)
        assert d.stop() == 0
        assert not [line for line in d.log().splitlines() if "cancel" in line], d.log()


if __name__ == "__main__":
    run_tests(globals())
