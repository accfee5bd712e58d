"""Replication across network namespaces (issue 6): three nodes, each in its
own namespace, joined pairwise by veth pairs, each pair its own subnet, so
nothing rests on loopback. A link is cut and restored: the two nodes it
joins catch up. Needs root (exit 77 = skipped otherwise)."""

from harness import OK, run_tests
from replication_cluster import Cluster, Namespaces, require_netns, wait_until_all

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


if __name__ == "__main__":
    run_tests(globals())
