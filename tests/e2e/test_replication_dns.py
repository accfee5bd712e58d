"""A --peer whose name the DNS never answers for holds up neither the
replication to the other peers nor the node's stop (docs/replication.md,
"Peers by name"): names are resolved off the replication thread.

The test runs itself again in new user, network and mount namespaces
(unshare -rnm: no root needed where user namespaces are allowed; skipped,
77, where they are not), where /etc/resolv.conf names a DNS server on
127.0.0.1:53 that this process binds and that takes every query and
answers none, so that every lookup of a name outside /etc/hosts lasts the
resolver's whole timeout (DNS_TIMEOUT_S). Every wait is bounded."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from clients import OK
from harness import run_tests, stat, wait_for
from replication_cluster import Cluster

IN_NAMESPACE_ENV = "RINGCACHE_TEST_DNS_NAMESPACE"
NAMESPACE_TIMEOUT_S = 150
# How long the resolver waits for the silent server: longer than the links'
# whole backoff (backoff_ms_max, 2 s, server/replication/replication_config.h),
# so that a lookup run on the replication thread would stall it most of the time.
DNS_TIMEOUT_S = 4
SILENT_PEER = "silent-peer.test:9"
# Writes made on node 1, one at a time, each read back from node 2.
WINDOW_S = 8
WRITE_GAP_S = 0.05
# A write reaches the other node in milliseconds when nothing holds the
# replication thread up; a lookup on it held it DNS_TIMEOUT_S at least once
# in the window (the margin is for a loaded machine and sanitizer builds).
LAG_MAX_S = 2.0
LAG_WAIT_S = 15
# A stop with no peer streaming takes well under a second; one waiting for a
# lookup on the replication thread took what was left of DNS_TIMEOUT_S
# (the test stops the node as soon as the query arrives).
STOP_MAX_S = 2.5


def run_in_namespaces():
    """Runs this script again inside the namespaces; its exit status."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        print("SKIP: needs unshare (util-linux) and ip (iproute2)", flush=True)
        return 77
    probe = subprocess.run(["unshare", "-r", "-n", "-m", "true"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
    if probe.returncode != 0:
        print("SKIP: cannot create user namespaces here: %s" % probe.stdout.decode().strip(), flush=True)
        return 77
    env = dict(os.environ)
    env[IN_NAMESPACE_ENV] = "1"
    return subprocess.run(["unshare", "-r", "-n", "-m", sys.executable] + sys.argv, env=env,
                          timeout=NAMESPACE_TIMEOUT_S).returncode


class SilentDns:
    """127.0.0.1:53 (UDP and TCP), taking every query and answering none."""

    def __init__(self):
        self.queries = 0
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 53))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 53))
        self.tcp.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            self.udp.recv(4096)
            self.queries += 1


def set_up_namespace():
    """Loopback up, the silent server listening, resolv.conf naming it."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    with open("/etc/nsswitch.conf") as f:
        hosts = [line for line in f if line.startswith("hosts:")]
    if not hosts or "dns" not in hosts[0]:
        print("SKIP: /etc/nsswitch.conf does not ask the DNS for hosts", flush=True)
        sys.exit(77)
    dns = SilentDns()
    directory = tempfile.mkdtemp(prefix="ringcache-dns-")
    resolv_conf = os.path.join(directory, "resolv.conf")
    with open(resolv_conf, "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:%d attempts:1\n" % DNS_TIMEOUT_S)
    subprocess.run(["mount", "--bind", resolv_conf, "/etc/resolv.conf"], check=True, timeout=10)
    return dns


def lookup_seconds(name):
    """How long this process's own lookup of `name` takes here."""
    start = time.monotonic()
    try:
        socket.getaddrinfo(name, 9, type=socket.SOCK_STREAM)
    except socket.gaierror:
        pass
    return time.monotonic() - start


def test_a_silent_dns_does_not_hold_up_the_other_peers(exe):
    before = DNS.queries
    assert lookup_seconds("probe.test") >= DNS_TIMEOUT_S - 0.5, "the silent server did not hold the lookup"
    assert DNS.queries > before
    with Cluster(exe, 2, start=False) as cluster:
        one, two = cluster.nodes
        # Listed after node 2: a lookup on the replication thread held the
        # links that were already streaming.
        one.peers.append(SILENT_PEER)
        one.start()
        two.start()
        wait_for(lambda: stat(one, "REPL_CONNECTED") == 1, "node 1 does not stream to node 2", timeout=20)
        queries_before = DNS.queries
        lags = []
        with one.client() as writer, two.client() as reader:
            end = time.monotonic() + WINDOW_S
            i = 0
            while time.monotonic() < end:
                key = b"key-%d" % i
                assert writer.put(key, b"value %d" % i) == OK
                written = time.monotonic()
                deadline = written + LAG_WAIT_S
                while reader.get(key) is None:
                    assert time.monotonic() < deadline, "key %d never reached node 2" % i
                    time.sleep(0.005)
                lags.append(time.monotonic() - written)
                i += 1
                time.sleep(WRITE_GAP_S)
        lags.sort()
        print("  %d writes: lag median %.3f s, max %.3f s; %d DNS queries meanwhile" %
              (len(lags), lags[len(lags) // 2], lags[-1], DNS.queries - queries_before), flush=True)
        # The silent peer was being looked up all along.
        assert DNS.queries - queries_before >= 2
        # The link gave up waiting after connect_timeout_ms (3 s), before
        # the resolver's own timeout; the resolver's failure came later.
        one.wait_for_log("peer %s unreachable (cannot resolve: no answer within 3000 ms, still asking)" %
                         SILENT_PEER)
        one.wait_for_log("peer %s unreachable (cannot resolve: Temporary failure in name resolution)" %
                         SILENT_PEER)
        assert lags[-1] < LAG_MAX_S, "a write took %.3f s to reach node 2" % lags[-1]


def test_a_lookup_in_progress_does_not_hold_up_the_stop(exe):
    with Cluster(exe, 1, start=False) as cluster:
        (node,) = cluster.nodes
        node.peers = [SILENT_PEER]
        queries_before = DNS.queries
        node.start()
        wait_for(lambda: DNS.queries > queries_before, "the node did not look its peer up")
        start = time.monotonic()
        code = node.stop()
        took = time.monotonic() - start
        print("  stopped in %.3f s while its peer's lookup was waiting for the DNS" % took, flush=True)
        assert code == 0, node.log()
        assert took < STOP_MAX_S, "the stop took %.3f s:\n%s" % (took, node.log())


if __name__ == "__main__":
    if os.environ.get(IN_NAMESPACE_ENV) != "1":
        sys.exit(run_in_namespaces())
    DNS = set_up_namespace()
    run_tests(globals())
