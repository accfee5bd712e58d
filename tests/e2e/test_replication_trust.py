"""The replication trust boundary (docs/replication.md, "Trust") with real
daemons on loopback: each probe that used to lose acknowledged data or let
a stranger write now fails, is counted and logged.

- A forged far-future PUT or FLUSH on an admitted stream changes no
  acknowledged write: refused before the clock or the store sees it, the
  stream closed, REPL_SKEW_REFUSED counted, the offset logged.
- With a secret: the v1 hello, a wrong secret, a replayed proof are refused
  with EINVAL and closed before a frame is read (REPL_AUTH_FAILURES, a log
  line with the address).
- Without a secret: hellos from addresses that are not a peer's are refused
  (REPL_ADDRESS_REFUSED); the start-up log says replication is
  unauthenticated.
- A real node whose clock runs 60 s ahead (under faketime) gets nothing
  applied on its peer, which counts and logs it.
- Bad secret files stop the daemon at start-up with a reason.
"""

import os
import shutil
import socket
import struct
import tempfile
import time

from clients import EINVAL, OK
from daemon import run_to_exit, write_secret_file
from harness import SkipTest, run_tests, stat, wait_for
from replication_cluster import (AUTH_REFUSED, Cluster, make_version, open_replication_stream, read_challenge,
                                 read_exact, repl_hello_frame, repl_hello_v2_frame, repl_put_frame, auth_mac)

REPL_FLUSH = 207
TOP_OF_CLOCK = (1 << 64) - 1 - 4095 + 7  # the largest HLC, tag 7


def repl_flush_frame(version, at_s=0):
    return bytes([REPL_FLUSH]) + struct.pack(">QI", version, at_s)


def now_version(tag=4000, ahead_ms=0):
    return make_version(int(time.time() * 1000) + ahead_ms, tag)


def get(node, key):
    with node.client() as c:
        return c.get(key)


def expect_closed(sock, first=None, timeout=10):
    """The node answers `first` (a byte value, or nothing) and closes."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    expected = b"" if first is None else bytes([first])
    assert data == expected, "expected %r then EOF, got %r" % (expected, data)


def overwrite_twenty_times(node, key):
    """The issue's probe: 20 acknowledged overwrites; the last must be read back."""
    with node.client() as c:
        for i in range(20):
            assert c.put(key, b"v%d" % i) == OK
            assert c.get(key) == b"v%d" % i, "acknowledged overwrite %d of %r lost" % (i, key)


def test_a_forged_far_future_put_changes_no_acknowledged_write(exe):
    for secret in (False, True):
        with Cluster(exe, 2, args=["-t", "2"], secret=secret) as cluster:
            cluster.wait_connected()
            a, b = cluster.nodes
            with a.client() as c:
                assert c.put(b"probe", b"before") == OK
            with cluster.open_stream(a, b"forger") as peer:
                peer.sendall(repl_put_frame(b"probe", b"forged", TOP_OF_CLOCK) +
                             repl_put_frame(b"after-forgery", b"x", now_version()))
                expect_closed(peer)
            assert stat(a, "REPL_SKEW_REFUSED") == 1
            wait_for(lambda: a.log_count("its clock is ") == 1, a.log())
            overwrite_twenty_times(a, b"probe")
            with a.client() as c:
                assert c.get(b"after-forgery") is None, "a frame after the refused one was applied"
            # The node's clock was not dragged: its writes still win on the peer.
            wait_for(lambda: get(b, b"probe") == b"v19", b.log())


def test_a_forged_flush_leaves_later_writes_visible(exe):
    with Cluster(exe, 2, args=["-t", "1"]) as cluster:
        cluster.wait_connected()
        a = cluster.nodes[0]
        with cluster.open_stream(a, b"forger") as peer:
            peer.sendall(repl_flush_frame(TOP_OF_CLOCK))
            expect_closed(peer)
        with a.client() as c:
            assert c.put(b"z", b"visible") == OK
            assert c.get(b"z") == b"visible"
        assert stat(a, "REPL_SKEW_REFUSED") == 1
        assert stat(a, "REPL_FLUSHES_RECEIVED") == 0


def test_with_a_secret_v1_wrong_secret_and_replayed_proofs_are_refused_before_any_frame(exe):
    with Cluster(exe, 2, args=["-t", "2"]) as cluster:
        cluster.wait_connected()
        a = cluster.nodes[0]
        failures = stat(a, "REPL_AUTH_FAILURES")

        # Today's unauthenticated hello, with a frame right behind it.
        with socket.create_connection(("127.0.0.1", a.port), timeout=10) as s:
            s.sendall(repl_hello_frame(b"intruder") + repl_put_frame(b"v1-forged", b"x", now_version()))
            expect_closed(s, EINVAL)
        failures += 1
        assert stat(a, "REPL_AUTH_FAILURES") == failures

        # A wrong secret: the node's challenge does not verify with it, and
        # a proof made with it is refused.
        nonce = os.urandom(32)
        with socket.create_connection(("127.0.0.1", a.port), timeout=10) as s:
            s.sendall(repl_hello_v2_frame(b"intruder", nonce))
            acceptor_id, their_nonce, their_mac = read_challenge(s)
            assert acceptor_id == b"1"
            assert auth_mac(b"w" * 32, b"acceptor", b"intruder", acceptor_id, nonce, their_nonce) != their_mac
            proof = auth_mac(b"w" * 32, b"initiator", b"intruder", acceptor_id, nonce, their_nonce)
            s.sendall(bytes([209]) + proof + repl_put_frame(b"wrong-secret", b"x", now_version()))
            expect_closed(s, AUTH_REFUSED)
        failures += 1
        assert stat(a, "REPL_AUTH_FAILURES") == failures

        # A replayed handshake: the proof of a good connection, sent again
        # with the same hello on a new one, meets a fresh nonce.
        secret = cluster.secret
        with socket.create_connection(("127.0.0.1", a.port), timeout=10) as s:
            s.sendall(repl_hello_v2_frame(b"peer-x", nonce))
            acceptor_id, their_nonce, _ = read_challenge(s)
            recorded = bytes([209]) + auth_mac(secret, b"initiator", b"peer-x", acceptor_id, nonce, their_nonce)
            s.sendall(recorded)
            assert read_exact(s, 1) == bytes([OK])
        with socket.create_connection(("127.0.0.1", a.port), timeout=10) as s:
            s.sendall(repl_hello_v2_frame(b"peer-x", nonce))
            read_challenge(s)
            s.sendall(recorded + repl_put_frame(b"replayed", b"x", now_version()))
            expect_closed(s, AUTH_REFUSED)
        failures += 1
        assert stat(a, "REPL_AUTH_FAILURES") == failures

        with a.client() as c:
            for key in (b"v1-forged", b"wrong-secret", b"replayed"):
                assert c.get(key) is None, key
        log = a.log()
        assert "unauthenticated RINGCACHE-REPL/1 hello" in log
        assert "wrong authentication proof" in log
        assert "127.0.0.1:" in log
        assert "RINGCACHE-REPL/2 initiator" not in log and secret.hex() not in log
        # The real peer was never disturbed.
        assert stat(a, "REPL_CONNECTED") == 1 and stat(a, "REPL_INCOMING") == 1


def test_a_stalled_handshake_holds_no_stream_slot_and_is_closed(exe):
    with Cluster(exe, 2, args=["-t", "1", "--upload-timeout", "2"]) as cluster:
        cluster.wait_connected()
        a = cluster.nodes[0]
        stalled = []
        for i in range(80):  # more than incoming_streams_max (64)
            s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
            s.sendall(repl_hello_v2_frame(b"staller-%d" % i, os.urandom(32)))
            read_challenge(s)
            stalled.append(s)
        # Stalled handshakes take no stream slot: a real peer still gets in.
        with cluster.open_stream(a, b"latecomer") as peer:
            peer.sendall(repl_put_frame(b"late", b"1", now_version()))
            wait_for(lambda: get(a, b"late") == b"1", a.log())
        started = time.monotonic()
        for s in stalled:
            expect_closed(s)
            s.close()
        assert time.monotonic() - started < 8
        assert stat(a, "UPLOAD_ABORTS") >= 80


def test_a_node_with_another_secret_or_none_never_streams(exe):
    directory = tempfile.mkdtemp(prefix="ringcache-trust-")
    try:
        with Cluster(exe, 3, args=["-t", "1"], start=False) as cluster:
            a, b, c = cluster.nodes
            b.secret_file = write_secret_file(directory)  # not the others' secret
            c.secret_file = None
            for node in cluster.nodes:
                node.start()
            wait_for(lambda: stat(a, "REPL_AUTH_FAILURES") >= 2 and stat(b, "REPL_AUTH_FAILURES") >= 2,
                     a.log() + b.log())
            wait_for(lambda: c.log_count("refused our hello") >= 1, c.log())
            with a.client() as client:
                assert client.put(b"from-a", b"1") == OK
            time.sleep(0.5)
            for node in (b, c):
                assert stat(node, "REPL_APPLIED") == 0
                with node.client() as client:
                    assert client.get(b"from-a") is None
            assert stat(a, "REPL_CONNECTED") == 0
            assert "it failed to prove the peer secret" in a.log() + b.log()
            assert "asks for authentication and this node has no --peer-secret-file" in c.log()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_without_a_secret_only_peer_addresses_may_stream(exe):
    with Cluster(exe, 2, args=["-t", "1"], secret=False) as cluster:
        cluster.wait_connected()
        a = cluster.nodes[0]
        assert "replication: UNAUTHENTICATED" in a.log()
        assert "--peer-secret-file PATH" in a.log()
        # 127.0.0.2 is loopback too, but no --peer name resolves to it.
        stranger = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stranger.settimeout(10)
        stranger.bind(("127.0.0.2", 0))
        stranger.connect(("127.0.0.1", a.port))
        stranger.sendall(repl_hello_frame(b"stranger") + repl_put_frame(b"strange", b"x", now_version()))
        expect_closed(stranger, EINVAL)
        stranger.close()
        assert stat(a, "REPL_ADDRESS_REFUSED") == 1
        wait_for(lambda: a.log_count("hello from 127.0.0.2:") == 1, a.log())
        # From a peer's address the v1 hello still works, as before.
        with open_replication_stream("127.0.0.1", a.port, b"peer-like") as peer:
            peer.sendall(repl_put_frame(b"from-peer-address", b"1", now_version()))
            wait_for(lambda: get(a, b"from-peer-address") == b"1", a.log())
        with a.client() as c:
            assert c.get(b"strange") is None


def test_a_peer_whose_clock_is_60_s_ahead_is_refused(exe):
    libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
    if not os.path.exists(libfaketime):
        raise SkipTest("libfaketime is not installed (Debian package faketime)")
    with Cluster(exe, 2, args=["-t", "1"], start=False) as cluster:
        a, ahead = cluster.nodes
        # env execs the daemon itself, so it gets the test's signals.
        ahead.prefix = ["env", "LD_PRELOAD=" + libfaketime, "FAKETIME=+60s"]
        env_asan = os.environ.get("ASAN_OPTIONS")
        # An ASan build wants its runtime first; libfaketime is preloaded before it.
        ahead.env = dict(os.environ, ASAN_OPTIONS=(env_asan + ":" if env_asan else "") + "verify_asan_link_order=0")
        a.start()
        ahead.start()
        with ahead.client() as c:
            assert c.put(b"from-the-future", b"1") == OK
        wait_for(lambda: stat(a, "REPL_SKEW_REFUSED") >= 1, a.log())
        wait_for(lambda: a.log_count("its clock is ") == 1, a.log())
        line = [l for l in a.log().splitlines() if "its clock is " in l][0]
        seconds = float(line.split("its clock is ")[1].split(" s ahead")[0])
        assert 55 < seconds < 70, line
        assert "node 2" in line
        with a.client() as c:
            assert c.get(b"from-the-future") is None
        # It keeps trying and keeps being refused, and logged once a minute only.
        wait_for(lambda: stat(a, "REPL_SKEW_REFUSED") >= 2, a.log())
        assert a.log_count("its clock is ") == 1
        # The other direction works: a's writes are in the past for it.
        with a.client() as c:
            assert c.put(b"from-now", b"1") == OK
        wait_for(lambda: get(ahead, b"from-now") == b"1", ahead.log())


def start_failure(exe, args):
    proc = run_to_exit(exe, "-p", "0", "--text-port", "0", "-t", "1", *args)
    return proc.returncode, proc.stderr


def test_bad_secret_files_are_refused_at_start_up(exe):
    directory = tempfile.mkdtemp(prefix="ringcache-secret-")
    try:
        path = write_secret_file(directory)
        peer = ["--peer", "127.0.0.1:1"]
        os.chmod(path, 0o644)
        code, err = start_failure(exe, peer + ["--peer-secret-file", path])
        assert code == 2 and "readable or writable by others" in err and "chmod 600" in err, err
        os.chmod(path, 0o600)
        with open(path, "wb") as f:
            f.write(b"short")
        code, err = start_failure(exe, peer + ["--peer-secret-file", path])
        assert code == 2 and "at least 32" in err, err
        code, err = start_failure(exe, peer + ["--peer-secret-file", path + "-missing"])
        assert code == 2 and "No such file" in err, err
        code, err = start_failure(exe, ["--peer-secret-file", path])
        assert code == 2 and "needs --peer" in err, err
        code, err = start_failure(exe, peer + ["--max-clock-skew", "0"])
        assert code == 2 and "--max-clock-skew" in err, err
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
