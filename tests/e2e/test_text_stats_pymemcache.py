"""pymemcache (Debian's python3-pymemcache) reads the text port's `stats` of
two meshed nodes, as memcached tools and exporters do: the replication
fields arrive as ordinary STAT lines (repl_*), and repl_applied on one node
counts the sets made through pymemcache on the other. Run by Debian's
/usr/bin/python3, where the package installs."""

import time

from harness import SkipTest, run_tests
from replication_cluster import Cluster

try:
    from pymemcache.client.base import Client as MemcacheClient
except ImportError:
    MemcacheClient = None

TIMEOUT_S = 10
CONVERGE_WITHIN_S = 5


def client_of(node):
    return MemcacheClient(("127.0.0.1", node.text_port), connect_timeout=TIMEOUT_S, timeout=TIMEOUT_S)


def test_pymemcache_reads_replication_stats(exe):
    if MemcacheClient is None:
        raise SkipTest("pymemcache is not installed (Debian package python3-pymemcache)")
    with Cluster(exe, 2, args=["-t", "2"], text=True) as cluster:
        cluster.wait_connected()
        a, b = cluster.nodes
        reader, writer = client_of(a), client_of(b)
        try:
            stats = reader.stats()
            assert stats[b"repl_peers"] == 1 and stats[b"repl_connected"] == 1, stats
            applied_before = stats[b"repl_applied"]
            keys = ["pymemcache-stats-%d" % i for i in range(20)]
            for key in keys:
                assert writer.set(key, b"v", noreply=False) is True
            deadline = time.monotonic() + CONVERGE_WITHIN_S
            while reader.stats()[b"repl_applied"] < applied_before + len(keys):
                assert time.monotonic() < deadline, "repl_applied did not count B's writes: %r" % reader.stats()
                time.sleep(0.05)
            assert reader.get(keys[-1]) == b"v"
        finally:
            reader.close()
            writer.close()


if __name__ == "__main__":
    run_tests(globals())
