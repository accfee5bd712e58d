"""twemproxy (Debian's nutcracker) in front of three ringcached nodes: their
text ports on 127.0.0.1, a nutcracker.yml written at test time (ketama over
fnv1a_64, auto_eject_hosts) and pymemcache through the proxy.

What the README's "Behind twemproxy" section claims is asserted here: which
commands pass through the proxy to ringcached and which make the proxy close
the connection; that keys spread over all three nodes; that a killed node is
ejected after server_failure_limit failures and every key can be read and
written again (the dead node's keys remapped, the others' untouched); and
that ringcache-loadgen's text load through the proxy runs without an error.

Run by Debian's /usr/bin/python3 (pymemcache and nutcracker are Debian
packages; the test is skipped, 77, without them). ringcache-loadgen comes
from RINGCACHE_LOADGEN (meson sets it when the benchmarks are built).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import ExitStack, contextmanager

from daemon import Daemon, Server
from harness import SkipTest, run_tests

try:
    from pymemcache.client.base import Client as MemcacheClient
    from pymemcache.exceptions import MemcacheError
except ImportError:
    MemcacheClient = None

NODES = 3
KEYS = 300
# nutcracker's pool settings: a node is ejected after this many failed
# requests in a row and tried again after the retry timeout, which is longer
# than any test here runs after a kill.
SERVER_FAILURE_LIMIT = 2
SERVER_RETRY_TIMEOUT_MS = 30000
SERVER_TIMEOUT_MS = 1000
# How often nutcracker refreshes what its stats port reports.
STATS_INTERVAL_MS = 100
PROXY_START_TIMEOUT_S = 10
PROXY_START_ATTEMPTS = 3
CLIENT_TIMEOUT_S = 5
EJECT_TIMEOUT_S = 10
STATS_TIMEOUT_S = 5
# A command the proxy does not know: it closes the client's connection.
CLOSE_TIMEOUT_S = 5
LOADGEN_SECONDS = 1
LOADGEN_TIMEOUT_S = 60

NUTCRACKER_YML = """\
ringcache:
  listen: 127.0.0.1:{port}
  hash: md5
  distribution: ketama
  timeout: {timeout_ms}
  auto_eject_hosts: true
  server_failure_limit: {failure_limit}
  server_retry_timeout: {retry_timeout_ms}
  servers:
{servers}
"""

# Commands that reach ringcached through the proxy (asserted in
# test_commands_pass_through) and commands the proxy refuses by closing the
# connection (test_commands_the_proxy_refuses).
REFUSED_COMMANDS = [
    b"gat 100 k\r\n",
    b"gats 100 k\r\n",
    b"mg k v\r\n",
    b"ms k 1\r\nx\r\n",
    b"md k\r\n",
    b"ma k\r\n",
    b"mn\r\n",
    b"stats\r\n",
    b"flush_all\r\n",
    b"verbosity 1\r\n",
    # memcached's binary protocol: a get of "k".
    b"\x80\x00\x00\x01" + bytes(4) + b"\x00\x00\x00\x01" + bytes(12) + b"k",
]


def free_port():
    """A port nobody listens on now (nutcracker cannot take a bound socket;
    the start is retried if another process takes it meanwhile)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memcache_client(port):
    return MemcacheClient(("127.0.0.1", port), connect_timeout=CLIENT_TIMEOUT_S, timeout=CLIENT_TIMEOUT_S)


class Nutcracker(Server):
    """nutcracker with its configuration in `directory`, logging to stderr
    (kept by Server); ready once its client port accepts connections."""

    label = "nutcracker"

    def __init__(self, directory, nodes):
        self.directory = directory
        self.nodes = nodes
        super().__init__()

    def command(self):
        self.port = free_port()
        self.stats_port = free_port()
        servers = "\n".join("    - 127.0.0.1:%d:1 node%d" % (node.text_port, i + 1)
                            for i, node in enumerate(self.nodes))
        path = os.path.join(self.directory, "nutcracker.yml")
        with open(path, "w") as f:
            f.write(NUTCRACKER_YML.format(port=self.port, timeout_ms=SERVER_TIMEOUT_MS,
                                          failure_limit=SERVER_FAILURE_LIMIT,
                                          retry_timeout_ms=SERVER_RETRY_TIMEOUT_MS, servers=servers))
        return ["nutcracker", "-c", path, "-s", str(self.stats_port), "-a", "127.0.0.1",
                "-i", str(STATS_INTERVAL_MS), "-p", os.path.join(self.directory, "nutcracker.pid"),
                "-o", "/dev/stderr"], ()

    def start(self):
        for _ in range(PROXY_START_ATTEMPTS):
            super().start()
            deadline = time.monotonic() + PROXY_START_TIMEOUT_S
            while self.alive() and time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.02)
            if self.alive():
                self.kill()
                raise AssertionError("nutcracker did not listen within %ss:\n%s" % (PROXY_START_TIMEOUT_S,
                                                                                   self.log()))
            self.wait(PROXY_START_TIMEOUT_S)
        raise AssertionError("nutcracker did not start (a port taken?):\n%s" % self.log())

    def stats(self):
        """The stats port's JSON: {"ringcache": {"server_ejects": ..., "node1": {...}}, ...}."""
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=CLIENT_TIMEOUT_S) as s:
            with s.makefile("rb") as stream:
                return json.loads(stream.read())

    def wait_stats(self, predicate, what):
        deadline = time.monotonic() + STATS_TIMEOUT_S
        while True:
            stats = self.stats()
            if predicate(stats["ringcache"]):
                return stats["ringcache"]
            assert time.monotonic() < deadline, "%s: %s" % (what, stats)
            time.sleep(STATS_INTERVAL_MS / 1000)

    def check_clean_exit(self, code):
        # nutcracker has no clean shutdown: SIGTERM ends it.
        assert code in (0, -15), "nutcracker exited with %s:\n%s" % (code, self.log())


@contextmanager
def proxied_cluster(exe):
    """Three ringcached nodes and nutcracker in front; all stopped (killed if
    need be) on the way out, whatever happened."""
    if MemcacheClient is None:
        raise SkipTest("pymemcache is not installed (Debian package python3-pymemcache)")
    if shutil.which("nutcracker") is None:
        raise SkipTest("nutcracker is not installed (Debian package nutcracker)")
    directory = tempfile.mkdtemp(prefix="ringcache-twemproxy-")
    try:
        with ExitStack() as stack:
            nodes = []
            for i in range(NODES):
                nodes.append(Daemon(exe, "-t", "1", "-m", "64", text="bind", label="node%d" % (i + 1)))
                stack.callback(nodes[-1].close)
            proxy = Nutcracker(directory, nodes)
            stack.callback(proxy.close)
            proxy.start()
            yield nodes, proxy
            proxy.check_clean_exit(proxy.stop())
            for node in nodes:
                if node.alive():
                    node.check_clean_exit(node.stop())
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def node_items(node):
    client = memcache_client(node.text_port)
    try:
        return int(client.stats()[b"curr_items"])
    finally:
        client.close()


def keys_on(node, keys):
    client = memcache_client(node.text_port)
    try:
        return set(client.get_many(keys))
    finally:
        client.close()


def value_of(key):
    return ("value of " + key).encode()


def write_keys(client):
    keys = ["key-%03d" % i for i in range(KEYS)]
    for key in keys:
        assert client.set(key, value_of(key), noreply=False) is True
    return keys


def closes_connection(port, request):
    """Whether the proxy closes the connection after `request` without an
    answer (what nutcracker does with a command it cannot route)."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT_S) as s:
        s.sendall(request)
        try:
            return s.recv(4096) == b""
        except ConnectionResetError:
            return True


def test_commands_pass_through(exe):
    with proxied_cluster(exe) as (nodes, proxy):
        client = memcache_client(proxy.port)
        try:
            assert client.set("a", b"1", noreply=False) is True
            assert client.get("a") == b"1"
            assert client.add("a", b"x", noreply=False) is False
            assert client.add("b", b"2", noreply=False) is True
            assert client.replace("a", b"one", noreply=False) is True
            assert client.replace("absent", b"x", noreply=False) is False
            assert client.append("a", b"+", noreply=False) is True
            assert client.prepend("a", b"=", noreply=False) is True
            assert client.get("a") == b"=one+"
            value, cas = client.gets("a")
            assert value == b"=one+"
            assert client.cas("a", b"swapped", cas, noreply=False) is True
            assert client.cas("a", b"stale", cas, noreply=False) is False
            assert client.get("a") == b"swapped"
            assert client.set("n", b"10", noreply=False) is True
            assert client.incr("n", 5) == 15
            assert client.decr("n", 3) == 12
            assert client.incr("absent", 1) is None
            assert client.touch("n", 100, noreply=False) is True
            assert client.touch("absent", 100, noreply=False) is False
            assert client.delete("b", noreply=False) is True
            assert client.delete("b", noreply=False) is False
            # A multi-key get is split over the nodes and the answers joined.
            keys = write_keys(client)
            assert client.get_many(keys) == {key: value_of(key) for key in keys}
            assert client.gets_many(keys[:10]).keys() == set(keys[:10])
            # noreply writes go through too.
            client.set("quiet", b"q", noreply=True)
            assert client.get("quiet") == b"q"
            client.delete("quiet", noreply=True)
            assert client.get("quiet") is None
            assert client.version().startswith(b"1.6")
        finally:
            client.close()


def test_commands_the_proxy_refuses(exe):
    with proxied_cluster(exe) as (nodes, proxy):
        for request in REFUSED_COMMANDS:
            assert closes_connection(proxy.port, request), request
        # ringcached itself answers them; the proxy is what refuses.
        for request, answer in ((b"mn\r\n", b"MN\r\n"), (b"gat 100 k\r\n", b"END\r\n")):
            with socket.create_connection(("127.0.0.1", nodes[0].text_port), timeout=CLIENT_TIMEOUT_S) as s:
                s.sendall(request)
                assert s.recv(4096) == answer, request
        # The proxy still serves other connections.
        client = memcache_client(proxy.port)
        try:
            assert client.set("after", b"ok", noreply=False) is True
            assert client.get("after") == b"ok"
        finally:
            client.close()


def test_keys_spread_over_the_nodes(exe):
    with proxied_cluster(exe) as (nodes, proxy):
        client = memcache_client(proxy.port)
        try:
            keys = write_keys(client)
        finally:
            client.close()
        items = [node_items(node) for node in nodes]
        print("  curr_items per node: %s" % items, flush=True)
        assert all(count > 0 for count in items), items
        assert sum(items) == KEYS, items
        held = [keys_on(node, keys) for node in nodes]
        assert set().union(*held) == set(keys)
        assert sum(len(h) for h in held) == KEYS, "a key on two nodes"


def test_a_killed_node_is_ejected_and_its_keys_remapped(exe):
    with proxied_cluster(exe) as (nodes, proxy):
        client = memcache_client(proxy.port)
        try:
            keys = write_keys(client)
            held = [keys_on(node, keys) for node in nodes]
            victim = 1
            lost = sorted(held[victim])
            assert lost, "no key on node2"
            nodes[victim].kill()

            # Requests for the dead node's keys fail until the proxy has
            # counted server_failure_limit failures and ejected it.
            failures = 0
            deadline = time.monotonic() + EJECT_TIMEOUT_S
            while True:
                try:
                    assert client.get(lost[0]) is None, "a value from a dead node"
                    break
                except MemcacheError as e:
                    failures += 1
                    print("  while node2 is not ejected yet: %s: %s" % (type(e).__name__, e), flush=True)
                    assert time.monotonic() < deadline, "node2 not ejected after %d failures" % failures
            assert 1 <= failures <= SERVER_FAILURE_LIMIT, failures
            pool = proxy.wait_stats(lambda pool: pool["server_ejects"] >= 1 and pool["node2"]["server_ejected_at"] > 0,
                                    "node2 ejected")
            assert pool["node1"]["server_ejected_at"] == 0 and pool["node3"]["server_ejected_at"] == 0, pool

            # Every key works again: the survivors' keys kept their nodes and
            # values (ketama moves only the dead node's), the dead node's keys
            # are misses on their new nodes until written again.
            survivors = set(keys) - set(lost)
            assert client.get_many(sorted(survivors)) == {key: value_of(key) for key in survivors}
            assert client.get_many(lost) == {}
            for key in lost:
                assert client.set(key, value_of(key), noreply=False) is True
            assert client.get_many(keys) == {key: value_of(key) for key in keys}
            items = [node_items(node) for i, node in enumerate(nodes) if i != victim]
            assert sum(items) == KEYS, items
            print("  %d keys of node2 remapped after %d failures; survivors hold %s" % (len(lost), failures, items),
                  flush=True)
        finally:
            client.close()


RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def test_loadgen_through_the_proxy(exe):
    loadgen = os.environ.get("RINGCACHE_LOADGEN")
    if not loadgen:
        raise SkipTest("RINGCACHE_LOADGEN is not set (a build without the benchmarks)")
    with proxied_cluster(exe) as (nodes, proxy):
        run = subprocess.run([loadgen, "--protocol", "text", "--port", str(proxy.port), "--threads", "1",
                              "--connections", "8", "--pipeline", "8", "--keys", "3000", "--prefill",
                              "--duration", str(LOADGEN_SECONDS), "--warmup", "0"],
                             capture_output=True, text=True, timeout=LOADGEN_TIMEOUT_S)
        assert run.returncode == 0, run.stdout + run.stderr
        result = dict(pair.split("=", 1) for pair in RESULT_RE.search(run.stdout).group(1).split())
        print("  through nutcracker: %s ops/s, p99 %s us" % (result["ops_per_s"], result["p99_us"]), flush=True)
        assert result["status"] == "ok" and result["errors"] == "0", result
        assert int(result["ops"]) > 0 and int(result["hits"]) > 0 and result["misses"] == "0", result
        items = [node_items(node) for node in nodes]
        assert all(count > 0 for count in items) and sum(items) == 3000, items


if __name__ == "__main__":
    run_tests(globals())
