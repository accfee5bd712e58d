"""Replication across network namespaces (issue 6): three nodes, each in its
own namespace, joined pairwise by veth pairs, each pair its own subnet, so
nothing rests on loopback. A link is cut and restored: the two nodes it
joins catch up. Needs root (exit 77 = skipped otherwise)."""

import os
import shutil
import subprocess
import time

from harness import OK, SkipTest, run_tests
from replication_cluster import Cluster, Node, wait_until_all

PORT = 8889
NODES = 3


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)


class Namespaces:
    """ns-1..ns-3; node i and j share link 10.201.<ij>.0/24 (addresses .i
    and .j); the test reaches node i over 10.202.<i>.0/24 from the root
    namespace. Everything is removed on exit."""

    def __init__(self):
        tag = "%d" % (os.getpid() % 100000)
        self.names = ["rcr%s-%d" % (tag, i) for i in range(1, NODES + 1)]
        self.root_links = []
        self.tag = tag

    def __enter__(self):
        try:
            for name in self.names:
                ip("netns", "add", name)
                ip("-n", name, "link", "set", "lo", "up")
            for i in range(1, NODES + 1):
                for j in range(i + 1, NODES + 1):
                    a, b = "r%s%d%da" % (self.tag, i, j), "r%s%d%db" % (self.tag, i, j)
                    ip("link", "add", a, "netns", self.names[i - 1], "type", "veth", "peer", "name", b,
                       "netns", self.names[j - 1])
                    ip("-n", self.names[i - 1], "addr", "add", "%s/24" % self.link_address(i, j, i), "dev", a)
                    ip("-n", self.names[j - 1], "addr", "add", "%s/24" % self.link_address(i, j, j), "dev", b)
                    ip("-n", self.names[i - 1], "link", "set", a, "up")
                    ip("-n", self.names[j - 1], "link", "set", b, "up")
                host, inner = "r%sh%d" % (self.tag, i), "r%sn%d" % (self.tag, i)
                ip("link", "add", host, "type", "veth", "peer", "name", inner, "netns", self.names[i - 1])
                self.root_links.append(host)
                ip("addr", "add", "10.202.%d.254/24" % i, "dev", host)
                ip("link", "set", host, "up")
                ip("-n", self.names[i - 1], "addr", "add", "10.202.%d.1/24" % i, "dev", inner)
                ip("-n", self.names[i - 1], "link", "set", inner, "up")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for host in self.root_links:
            ip("link", "del", host, check=False)
        for name in self.names:
            ip("netns", "del", name, check=False)
        return False

    @staticmethod
    def link_address(i, j, who):
        return "10.201.%d%d.%d" % (i, j, who)

    def link_device(self, i, j):
        return "r%s%d%da" % (self.tag, min(i, j), max(i, j))

    def set_link(self, i, j, up):
        lo, hi = min(i, j), max(i, j)
        ip("-n", self.names[lo - 1], "link", "set", self.link_device(lo, hi), "up" if up else "down")


def require_root():
    if os.geteuid() != 0:
        raise SkipTest("needs root for network namespaces")
    if shutil.which("ip") is None:
        raise SkipTest("needs iproute2 (ip)")
    probe = "rcr-probe-%d" % os.getpid()
    if ip("netns", "add", probe, check=False).returncode != 0:
        raise SkipTest("cannot create network namespaces here")
    ip("netns", "del", probe, check=False)


def test_mesh_across_network_namespaces(exe):
    require_root()
    with Namespaces() as ns:
        nodes = []
        for i in range(1, NODES + 1):
            node = Node(exe, str(i), None, client_host="10.202.%d.1" % i, port=PORT,
                        prefix=["ip", "netns", "exec", ns.names[i - 1]], args=["-t", "1"])
            node.peers = ["%s:%d" % (ns.link_address(min(i, j), max(i, j), j), PORT)
                          for j in range(1, NODES + 1) if j != i]
            nodes.append(node)
        with Cluster.of(nodes) as cluster:
            for node in nodes:
                node.start()
            cluster.wait_connected()
            keys = [b"netns-%d" % k for k in range(3000)]
            values = [b"from node %d" % (k % NODES + 1) for k in range(3000)]
            for index, node in enumerate(nodes):
                with node.client() as c:
                    mine = [(k, v) for n, (k, v) in enumerate(zip(keys, values)) if n % NODES == index]
                    assert set(c.put_many(mine)) == {OK}
            took = wait_until_all(nodes, keys, values)
            print("3 namespaces joined by veth pairs: 3000 writes identical everywhere in %.2fs" % took)

            # Cut the 1-2 link: node 3 still gets node 1's writes, node 2 does not.
            ns.set_link(1, 2, up=False)
            cut = [b"during-cut-%d" % k for k in range(200)]
            with nodes[0].client() as c:
                assert set(c.put_many([(k, b"x") for k in cut])) == {OK}
            wait_until_all([nodes[0], nodes[2]], cut, [b"x"] * len(cut))
            with nodes[1].client() as c:
                assert c.get_many(cut) == [None] * len(cut), "node 2 got writes over a cut link?"
            ns.set_link(1, 2, up=True)
            took = wait_until_all(nodes, cut, [b"x"] * len(cut), timeout=30)
            print("link 1-2 cut for a while and restored: node 2 caught up %.2fs later" % took)


if __name__ == "__main__":
    run_tests(globals())
