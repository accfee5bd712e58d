"""Replication across network namespaces (issue 6): three nodes, each in its
own namespace, joined pairwise by veth pairs, each pair its own subnet, so
nothing rests on loopback. A link is cut and restored: the two nodes it
joins catch up. A stream whose sender is cut off for good is closed.
Needs root (exit 77 = skipped otherwise)."""

import time

from clients import OK
from harness import run_tests
from replication_cluster import Cluster, Namespaces, ip, require_netns, wait_until_all

PORT = 8889
NODES = 3


def test_mesh_across_network_namespaces(exe):
    require_netns()
    with Namespaces(NODES) as ns:
        with Cluster.in_namespaces(exe, ns, args=["-t", "1"], port=PORT) as cluster:
            nodes = cluster.nodes
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


# The receiving side's keepalive (docs/replication.md §7) finds a sender
# that is gone within incoming_keepalive_idle_s + probes x interval = 10 s.
STALE_STREAM_CLOSED_WITHIN_S = 15
GHOST_ADDRESS = "10.202.1.253"


def test_a_stream_whose_sender_is_cut_off_for_good_is_closed(exe):
    # A sender cut off by a partition drops its link (TCP_USER_TIMEOUT, or an
    # unreachable route) and reconnects later, or dies there; whatever it
    # sent to say so never arrives. The stream it left behind must not stay
    # open for ever: each one counts towards incoming_streams_max, and at 64
    # the node refuses every peer.
    require_netns()
    with Namespaces(2) as ns:
        with Cluster.in_namespaces(exe, ns, args=["-t", "1"], port=PORT) as cluster:
            for node in cluster.nodes:
                node.start()
            cluster.wait_connected()
            node = cluster.nodes[0]
            # A third peer, from an address of its own in the root
            # namespace, which node 1's namespace then drops everything to
            # (the test still reaches node 1 from its usual address).
            ip("addr", "add", "%s/32" % GHOST_ADDRESS, "dev", ns.root_links[0])
            ghost = cluster.open_stream(node, b"77", source=GHOST_ADDRESS)
            try:
                deadline = time.monotonic() + 10
                while node.stats()["REPL_INCOMING"] != "2":
                    assert time.monotonic() < deadline, node.log()
                    time.sleep(0.05)
                ip("-n", ns.names[0], "route", "add", "blackhole", "%s/32" % GHOST_ADDRESS)
                cut = time.monotonic()
                while node.stats()["REPL_INCOMING"] != "1":
                    assert time.monotonic() - cut < STALE_STREAM_CLOSED_WITHIN_S, (
                        "a stream from a sender cut off for good is still open:\n" + node.log())
                    time.sleep(0.1)
                took = time.monotonic() - cut
            finally:
                ghost.close()
            assert "stream from node 77 closed" in node.log()
            print("a stream whose sender was cut off for good was closed %.1fs later" % took)


if __name__ == "__main__":
    run_tests(globals())
