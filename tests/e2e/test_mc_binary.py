"""memcached's binary protocol on the text port (issue 14), against the real
daemon: a connection whose first byte is 0x80 speaks it, as on memcached.

- memccapable with no protocol flag (Debian's libmemcached-tools) must pass
  every test, ASCII and binary (memcached 1.6.18 passes all 54);
- pylibmc (Debian's python3-pylibmc) with binary=True: set/get, get_multi,
  incr/decr, add/replace, gets/cas, append, delete, a 1 MiB value, flush_all;
  and with a username and password against --auth-file: libmemcached's SASL
  PLAIN (libsasl2) accepted, and refused for a wrong password;
- by hand: opaque echo and quiet batching, a value over --max-item answered
  0x0003 with the stream still in sync, bad magic closing the connection, a
  first byte no protocol accepts answered at once, and binary writes
  replicating to a peer.

Both tools are optional: a test whose tool is missing is skipped (77);
scripts/lib.sh installs them.
"""

import os
import shutil
import subprocess
import sys
import tempfile

# python3-pylibmc installs into Debian's own interpreter; when another
# python3 runs this script, run it again under Debian's.
DEBIAN_PYTHON = "/usr/bin/python3"
try:
    import pylibmc
except ImportError:
    pylibmc = None
    if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) and os.path.exists(DEBIAN_PYTHON):
        probe = subprocess.run([DEBIAN_PYTHON, "-c", "import pylibmc"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])

from clients import (MC_APPEND, MC_GET, MC_GETK, MC_GETKQ, MC_GETQ, MC_INVALID, MC_NOOP, MC_NOT_FOUND, MC_QUIT,
                     MC_RESPONSE, MC_SET, MC_SETQ, MC_STAT, MC_SUCCESS, MC_TOO_LARGE, MC_UNKNOWN_COMMAND, MIB,
                     McBinaryClient, TextClient, mc_request, mc_store_extras)
from auth_files import PASSWORD, USER, write_auth_file
from daemon import Daemon
from harness import SkipTest, pattern, run_tests
from replication_cluster import Cluster, wait_until_all

TOOL_TIMEOUT_S = 120
MEMCCAPABLE_TESTS = 54  # 27 ASCII and 27 binary


def test_memccapable_every_test_passes(exe):
    tool = shutil.which("memccapable") or shutil.which("memcapable")
    if tool is None:
        raise SkipTest("memccapable (libmemcached-tools) is not installed")
    with Daemon(exe, "-t", "2", "-m", "16", text="bind") as d:
        result = subprocess.run([tool, "-h", "127.0.0.1", "-p", str(d.text_port), "-v"],
                                capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
        output = result.stdout + result.stderr
        passed = [line for line in result.stdout.splitlines() if line.endswith("[pass]")]
        print("%d passed: %s" % (len(passed), result.stdout.strip().splitlines()[-1] if result.stdout.strip()
                                 else "(no output)"))
        assert result.returncode == 0 and "All tests passed" in result.stdout, output
        assert len(passed) == MEMCCAPABLE_TESTS, output
        assert sum(line.startswith("binary ") for line in passed) == MEMCCAPABLE_TESTS // 2, output


def test_pylibmc_binary(exe):
    if pylibmc is None:
        raise SkipTest("pylibmc (python3-pylibmc) is not installed")
    with Daemon(exe, "-t", "2", "-m", "64", text="bind") as d:
        client = pylibmc.Client(["127.0.0.1:%d" % d.text_port], binary=True,
                                behaviors={"cas": True, "connect_timeout": 5000, "receive_timeout": 10000000,
                                           "send_timeout": 10000000})
        assert client.set("a", b"1")
        assert client.get("a") == b"1"
        assert client.set_multi({"x": b"10", "y": b"20"}) == []
        assert client.get_multi(["x", "y", "missing"]) == {"x": b"10", "y": b"20"}
        assert client.incr("x", 5) == 15
        assert client.decr("x", 20) == 0
        try:
            client.incr("no-such-counter")
            raise AssertionError("incr of a missing key succeeded")
        except pylibmc.NotFound:
            pass
        assert client.add("a", b"z") is False
        assert client.add("new", b"n") is True
        assert client.replace("a", b"r") is True
        try:
            client.replace("absent", b"r")
            raise AssertionError("replace of a missing key succeeded")
        except pylibmc.NotFound:
            pass
        value, cas = client.gets("a")
        assert value == b"r" and cas
        with TextClient(d.text_port) as text:
            # The binary protocol's cas is the text protocol's.
            assert text.get(b"a", command=b"gets")[b"a"][2] == cas
        assert client.cas("a", b"c1", cas) is True
        assert client.cas("a", b"c2", cas) is False
        assert client.get("a") == b"c1"
        assert client.set("s", b"hello")
        assert client.append("s", b" world")
        assert client.prepend("s", b">")
        assert client.get("s") == b">hello world"
        assert client.delete("s") is True
        assert client.delete("s") is False
        big = pattern(MIB, 7)
        assert client.set("big", big)
        assert client.get("big") == big
        assert client.flush_all()
        assert client.get("a") is None and client.get("big") is None
        stats = client.get_stats()
        assert stats and "cmd_get" in stats[0][1], stats
        print("pylibmc binary=True: every call answered as on memcached")


def test_pylibmc_sasl(exe):
    if pylibmc is None:
        raise SkipTest("pylibmc (python3-pylibmc) is not installed")
    directory = tempfile.mkdtemp(prefix="ringcache-auth-")
    try:
        path = write_auth_file(directory)
        with Daemon(exe, "-t", "1", "-m", "16", "--auth-file", path, text="bind") as d:
            def client(password):
                return pylibmc.Client(["127.0.0.1:%d" % d.text_port], binary=True, username=USER.decode(),
                                      password=password, behaviors={"connect_timeout": 5000,
                                                                    "receive_timeout": 10000000,
                                                                    "send_timeout": 10000000})
            good = client(PASSWORD.decode())
            assert good.set("k", b"v")
            assert good.get("k") == b"v"
            assert good.delete("k") is True
            assert good.get("k") is None
            wrong = client("wrong")
            for call in (lambda: wrong.set("k2", b"v"), lambda: wrong.get("k")):
                try:
                    call()
                    raise AssertionError("a call with a wrong password succeeded")
                except pylibmc.Error:
                    pass
            assert good.get("k2") is None
            # libmemcached's stats know only memcached's fixed list: read the counters as text.
            with TextClient(d.text_port) as text:
                assert text.store(b"set", b"auth", USER + b" " + PASSWORD) == b"STORED"
                stats = text.stats()
            attempts, failures = int(stats["auth_cmds"]), int(stats["auth_errors"])
            assert failures >= 1 and attempts == failures + 2, stats
            print("pylibmc SASL: accepted with the password, refused without (%d attempts, %d failed)"
                  % (attempts, failures))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_opaque_echo_and_quiet_batching(exe):
    with Daemon(exe, "-t", "1", "-m", "16", text="bind") as d, McBinaryClient(d.text_port) as c:
        assert c.call(MC_SET, b"a", b"1", mc_store_extras(5), opaque=1)["status"] == MC_SUCCESS
        # A multi-get as libmemcached sends it: getkq for each key, then a noop.
        c.send(mc_request(MC_GETKQ, b"a", opaque=10) + mc_request(MC_GETKQ, b"b", opaque=11) +
               mc_request(MC_GETQ, b"a", opaque=12) + mc_request(MC_SETQ, b"c", b"3", mc_store_extras(), opaque=13) +
               mc_request(MC_NOOP, opaque=14))
        replies = [c.response() for _ in range(3)]
        assert [r["opaque"] for r in replies] == [10, 12, 14], replies
        assert replies[0]["key"] == b"a" and replies[0]["value"] == b"1" and replies[0]["extras"] == b"\0\0\0\5"
        assert replies[1]["key"] == b"" and replies[1]["value"] == b"1"
        assert all(r["magic"] == MC_RESPONSE for r in replies)
        miss = c.call(MC_GETK, b"b", opaque=15)
        assert (miss["status"], miss["key"], miss["opaque"]) == (MC_NOT_FOUND, b"b", 15), miss
        assert c.call(MC_GET, b"c")["value"] == b"3"
        assert c.call(MC_APPEND, b"nope", b"x")["status"] == 0x05
        assert c.call(0xEE, b"k", b"v", b"e", opaque=16)["status"] == MC_UNKNOWN_COMMAND
        assert c.call(MC_GET, b"k", extras=b"xx")["status"] == MC_INVALID
        stats = []
        c.send(mc_request(MC_STAT))
        while True:
            r = c.response()
            assert r["status"] == MC_SUCCESS
            if not r["key"]:
                break
            stats.append(r["key"])
        assert b"curr_connections" in stats and b"cmd_get" in stats, stats
        quit_reply = c.call(MC_QUIT, opaque=17)
        assert quit_reply["opaque"] == 17
        assert c.expect_eof() == b""


def test_too_large_value_keeps_the_stream(exe):
    with Daemon(exe, "-t", "1", "-m", "16", "--max-item", "1M", text="bind") as d, McBinaryClient(d.text_port) as c:
        assert c.call(MC_SET, b"k", b"old", mc_store_extras())["status"] == MC_SUCCESS
        c.send(mc_request(MC_SET, b"k", b"x" * (2 * MIB), mc_store_extras(), opaque=7) + mc_request(MC_NOOP, opaque=8))
        refused = c.response()
        assert (refused["status"], refused["opaque"]) == (MC_TOO_LARGE, 7), refused
        assert c.response()["opaque"] == 8
        # As memcached: a set refused as too large drops the old value.
        assert c.call(MC_GET, b"k")["status"] == MC_NOT_FOUND
        big = pattern(MIB - 64, 3)
        assert c.call(MC_SET, b"k", big, mc_store_extras())["status"] == MC_SUCCESS
        assert c.call(MC_GET, b"k")["value"] == big


def test_bad_magic_and_unknown_first_bytes_close_at_once(exe):
    with Daemon(exe, "-t", "1", "-m", "16", text="bind") as d:
        with McBinaryClient(d.text_port) as c:
            c.send(mc_request(MC_NOOP, opaque=1) + b"\x81" + mc_request(MC_NOOP, opaque=2))
            assert c.response()["opaque"] == 1
            assert c.expect_eof(timeout=5) == b""
        for first in (b"\x00", b"\x01", b"\x7f", b"\x81", b"\xff"):
            with TextClient(d.text_port) as c:
                c.send(first + b"get k\r\n")
                line = c.read_line()
                assert line.startswith(b"CLIENT_ERROR"), (first, line)
                assert c.expect_eof(timeout=5) == b""
        with TextClient(d.text_port) as c:
            assert c.call(b"version").startswith(b"VERSION ")


def test_binary_writes_replicate(exe):
    with Cluster(exe, 2, args=["-t", "2"], text=True) as cluster:
        cluster.wait_connected()
        a = cluster.nodes[0]
        keys = [b"mcb-%d" % i for i in range(50)]
        with McBinaryClient(a.text_port) as c:
            c.send(b"".join(mc_request(MC_SETQ, k, b"v" + k, mc_store_extras()) for k in keys) +
                   mc_request(MC_NOOP, opaque=99))
            assert c.response()["opaque"] == 99
            assert c.call(0x04, keys[0])["status"] == MC_SUCCESS  # delete
        wait_until_all(cluster.nodes, keys, [None] + [b"v" + k for k in keys[1:]])


if __name__ == "__main__":
    run_tests(globals())
