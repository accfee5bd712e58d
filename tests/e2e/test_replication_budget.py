"""A peer's streamed value waits for the upload budget instead of being lost
(docs/replication.md §5, "Incoming streams").

Values over 64 KiB arriving on a node, from clients or from a peer, share
UPLOAD_BYTES_MAX (a quarter of -m here). Slow client uploads on node 2 hold
all of it; a large value written on node 1 reaches node 2 meanwhile. It is
not dropped (REPL_APPLY_FAILED stays 0): node 2 stops reading the stream,
retries once a second, and applies the value once the uploads go. A wait
longer than --upload-timeout closes the stream; the peer reconnects and
resyncs, so the value arrives all the same. The first case runs over TLS
links too (the pause sits under the TLS layer's plaintext). Real daemons on
127.0.0.1, every wait bounded.
"""

import socket
import struct
import threading
import time

from clients import MIB, OK, field
from harness import pattern, raise_fd_limit, run_tests, wait_stats
from replication_cluster import Cluster, wait_until_all
from tls_certs import Certificates, client_context, tls_args

# -m 64 with --max-item 4M: UPLOAD_BYTES_MAX is 16 MiB (server/resource_limits.cc).
ARGS = ["-t", "2", "-m", "64", "--max-item", "4M"]
ANNOUNCED_BYTES = 3 * MIB
SENT_BYTES = 64 * 1024
# One block under a value of several: a wait before the first block and one
# between two blocks.
VALUES = {b"repl-one-block": 512 * 1024, b"repl-three-blocks": 3 * MIB}
# Long enough for the housekeeping tick (once a second) to retry at least once.
HELD_S = 1.5


def stall(node, i):
    """A binary PUT announcing ANNOUNCED_BYTES, of which SENT_BYTES are sent:
    it holds one 1 MiB block of the upload budget."""
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    if node.client_tls is not None:
        sock = node.client_tls.wrap_socket(sock, server_hostname="127.0.0.1")
    sock.sendall(bytes([11]) + field(b"stalled-%d" % i) + struct.pack(">I", ANNOUNCED_BYTES) +
                 pattern(SENT_BYTES, i))
    return sock


def hold_budget(node):
    """Stalled uploads until node's UPLOAD_BYTES is within a block of its max."""
    socks = []
    s = node.stats()
    while int(s["UPLOAD_BYTES"]) + MIB <= int(s["UPLOAD_BYTES_MAX"]):
        assert len(socks) < 64, s
        socks.append(stall(node, len(socks)))
        n = len(socks)
        s = wait_stats(node, lambda s: int(s["UPLOAD_BYTES"]) // MIB + int(s["UPLOAD_REFUSED"]) >= n,
                       "the stalled upload was not read")
    return socks


def write_values(node):
    with node.client(timeout=30) as c:
        for key, size in VALUES.items():
            assert c.put(key, pattern(size, size)) == OK


def repl_stats(node):
    s = node.stats()
    return {k: int(v) for k, v in s.items() if k.startswith("REPL_") or k.startswith("UPLOAD_")}


def get_on(node, key):
    with node.client() as c:
        return c.get(key)


def every_value_on_both(a, b, timeout):
    """Waits until both nodes hold every value; none failed on b. Returns
    b's REPL_ and UPLOAD_ stats."""
    keys = list(VALUES)
    wait_until_all([a, b], keys, [pattern(VALUES[k], VALUES[k]) for k in keys], timeout=timeout)
    s = repl_stats(b)
    assert s["REPL_APPLY_FAILED"] == 0, s
    return s


def value_waits_for_the_upload_budget(cluster):
    """Both values wait for their first block; then two freed blocks let the
    small one through and the large one waits for its second block."""
    raise_fd_limit(200)
    with cluster:
        cluster.wait_connected()
        a, b = cluster.nodes
        socks = hold_budget(b)
        small, large = VALUES
        try:
            write_values(a)
            time.sleep(HELD_S)
            s = repl_stats(b)
            assert s["REPL_APPLY_FAILED"] == 0, s
            assert s["REPL_APPLY_WAITS"] == 1, s
            assert s["REPL_INCOMING"] == 1, s
            assert get_on(b, small) is None
            for sock in socks[:2]:
                sock.close()
            wait_until_all([b], [small, large], [pattern(VALUES[small], VALUES[small]), None], timeout=10)
            time.sleep(HELD_S)
            s = repl_stats(b)
            assert s["REPL_APPLY_FAILED"] == 0, s
            assert s["REPL_APPLY_WAITS"] == 2, s
            assert s["UPLOAD_BYTES"] + MIB > s["UPLOAD_BYTES_MAX"], s
            assert get_on(b, large) is None
        finally:
            for sock in socks:
                sock.close()
        s = every_value_on_both(a, b, timeout=15)
        assert s["UPLOAD_ABORTS"] == 0, s
        assert s["UPLOAD_BYTES"] == 0, s
        # One line for the run of values that waited.
        assert b.log().count("waits for the upload budget") == 1, b.log()


def test_a_peer_value_waits_for_the_upload_budget(exe):
    value_waits_for_the_upload_budget(Cluster(exe, 2, args=ARGS))


def test_a_peer_value_waits_for_the_upload_budget_over_tls(exe):
    with Certificates(nodes=2) as certs:
        cluster = Cluster(exe, 2, args=ARGS, start=False, secret=False)
        try:
            for i, node in enumerate(cluster.nodes):
                node.args += tls_args(certs, "node%d" % (i + 1))
                node.client_tls = client_context(certs)
                node.start()
        except BaseException:
            cluster.close()
            raise
        value_waits_for_the_upload_budget(cluster)


def test_a_wait_past_the_upload_timeout_closes_the_stream_and_the_peer_resyncs(exe):
    """The uploads keep sending a byte now and then, so they outlive
    --upload-timeout; the waiting stream does not."""
    raise_fd_limit(200)
    with Cluster(exe, 2, args=ARGS + ["--upload-timeout", "2"]) as cluster:
        cluster.wait_connected()
        a, b = cluster.nodes
        socks = hold_budget(b)
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.5):
                for sock in socks:
                    sock.sendall(b"x")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            resyncs = int(b.stats()["REPL_RESYNCS_RECEIVED"])
            write_values(a)
            wait_stats(b, lambda s: int(s["UPLOAD_ABORTS"]) >= 1, "the waiting stream was not closed",
                       timeout=15)
            s = repl_stats(b)
            assert s["REPL_APPLY_FAILED"] == 0, s
        finally:
            stop.set()
            trickler.join(timeout=5)
            for sock in socks:
                sock.close()
        s = every_value_on_both(a, b, timeout=20)
        assert s["REPL_RESYNCS_RECEIVED"] > resyncs, s


if __name__ == "__main__":
    run_tests(globals())
