"""Connections spread evenly over the worker threads (issue 3): one
listening socket, accepted by one ring and dealt round-robin to the others."""

import resource
import socket
import time

from clients import get_frame
from daemon import Daemon
from harness import run_tests, wait_stats

FAIR_SHARE_MIN = 0.35


def spread(exe, threads, count):
    with Daemon(exe, "-t", str(threads)) as d:
        assert d.threads == threads
        socks = [socket.create_connection(("127.0.0.1", d.port), timeout=10) for _ in range(count)]
        try:
            for s in socks:
                s.sendall(get_frame(b"k"))
            for s in socks:
                assert s.recv(1) == bytes([112])
            with d.client() as c:
                stats = c.stats()
            per_thread = [int(x) for x in stats["THREAD_CONNECTIONS"].split(",")]
            accepted = [int(x) for x in stats["THREAD_ACCEPTED"].split(",")]
            print("  -t %d: connections per thread %s" % (threads, per_thread), flush=True)
            assert len(per_thread) == threads
            assert sum(per_thread) == count + 1, per_thread
            fair = (count + 1) / threads
            assert min(per_thread) >= FAIR_SHARE_MIN * fair, per_thread
            # Round robin: no thread is more than one connection ahead.
            assert max(accepted) - min(accepted) <= 1, accepted
        finally:
            for s in socks:
                s.close()


def test_100_connections_over_2_threads(exe):
    spread(exe, 2, 100)


def test_100_connections_over_4_threads(exe):
    spread(exe, 4, 100)


def test_connections_arriving_in_parallel(exe):
    # Bursts while other connections come and go.
    with Daemon(exe, "-t", "3") as d:
        for _ in range(5):
            socks = [socket.create_connection(("127.0.0.1", d.port), timeout=10) for _ in range(30)]
            for s in socks:
                s.sendall(get_frame(b"x"))
            for s in socks:
                assert s.recv(1) == bytes([112])
            for s in socks[::2]:
                s.close()
            for s in socks[1::2]:
                s.close()
        stats = wait_stats(d, lambda s: s["CONNECTIONS"] == "1", "connections were not closed")
        accepted = [int(x) for x in stats["THREAD_ACCEPTED"].split(",")]
        assert sum(accepted) >= 151
        assert max(accepted) - min(accepted) <= 1, accepted


def test_emfile_backs_off_then_recovers(exe):
    fd_limit = 48

    def tiny_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    with Daemon(exe, "-t", "2", preexec_fn=tiny_fd_limit) as d:
        socks = [socket.create_connection(("127.0.0.1", d.port), timeout=10) for _ in range(fd_limit + 20)]
        try:
            # The first ones are served; the rest wait in the backlog.
            for s in socks[:20]:
                s.sendall(get_frame(b"k"))
                assert s.recv(1) == bytes([112])
            d.wait_for_line("pausing accepts", 10)
            cpu_before = d.cpu_seconds()
            time.sleep(1.0)
            cpu_used = d.cpu_seconds() - cpu_before
            # Re-arming at once after EMFILE would spin a core.
            assert cpu_used < 0.3, "daemon used %.2f s of CPU while out of fds" % cpu_used
            for s in socks[:40]:
                s.close()
            # Connections that waited in the backlog are served once fds are free.
            for s in socks[-10:]:
                s.sendall(get_frame(b"k"))
                assert s.recv(1) == bytes([112])
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    run_tests(globals())
