"""Replication (docs/replication.md) with real daemons on loopback, every
node authenticated with the same --peer-secret-file: full meshes of 3 and 5
nodes converge, concurrent writes to one key agree everywhere, deletes stay
deleted, a node killed with -9 and restarted catches up, and a peer that is
down at start-up joins later. Where Repcached's ring of three never
converged. (test_replication_trust.py covers the trust boundary.)"""

import os
import threading
import time

from clients import EINVAL, OK, Client, TextClient, field
from daemon import Daemon, bind_socket, run_to_exit
from harness import run_tests
from replication_cluster import (Cluster, LinkCutter, identical_everywhere, make_version, repl_hello_v2_frame,
                                 repl_put_frame, wait_until_all)

CONVERGE_WITHIN_S = 5
# A delayed flush_all takes effect on each node at the first expiry pass
# (every second) or write at or after its time.
FLUSH_DELAY_S = 3
FLUSH_DONE_WITHIN_S = FLUSH_DELAY_S + 5


def spread_writes(cluster, keys, values):
    """PUTs key i on node i % n, every node's share pipelined in parallel."""
    nodes = cluster.nodes
    errors = []

    def write(index):
        try:
            mine = [(k, v) for i, (k, v) in enumerate(zip(keys, values)) if i % len(nodes) == index]
            with nodes[index].client() as c:
                assert set(c.put_many(mine)) == {OK}
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def converge_10000_writes(exe, count, threads):
    with Cluster(exe, count, args=["-t", str(threads)]) as cluster:
        cluster.wait_connected()
        keys = [b"key-%05d" % i for i in range(10000)]
        values = [b"value %d from node %d " % (i, i % count) + b"x" * (i % 200) for i in range(10000)]
        start = time.monotonic()
        spread_writes(cluster, keys, values)
        took = wait_until_all(cluster.nodes, keys, values, timeout=30)
        total = time.monotonic() - start
        print("%d nodes: 10000 writes spread over all, identical everywhere %.2fs after the last ack "
              "(%.2fs from the first write)" % (count, took, total))
        assert took < CONVERGE_WITHIN_S, took
        stats = [n.stats() for n in cluster.nodes]
        assert len({s["KEYS"] for s in stats}) == 1, [s["KEYS"] for s in stats]
        assert int(stats[0]["KEYS"]) == 10000
        for s in stats:
            # Each node applied the others' writes once and forwarded none of them.
            assert int(s["REPL_APPLIED"]) >= 10000 - 10000 // count - 1, s
            assert int(s["REPL_SENT"]) <= (10000 // count + 1) * (count - 1), s
            assert int(s["REPL_QUEUE_OVERFLOWS"]) == 0 and int(s["REPL_HANDOFF_OVERFLOWS"]) == 0, s


def test_three_nodes_converge(exe):
    converge_10000_writes(exe, 3, 2)


def test_five_nodes_converge(exe):
    converge_10000_writes(exe, 5, 1)


def test_same_key_written_concurrently_on_two_nodes(exe):
    with Cluster(exe, 3, args=["-t", "2"]) as cluster:
        cluster.wait_connected()
        keys = [b"contended-%d" % i for i in range(200)]
        written = {0: set(), 1: set()}
        together = threading.Barrier(2)

        def hammer(index):
            with cluster.nodes[index].client() as c:
                together.wait(10)
                # Opposite orders, so the two writers cross on every key.
                order = keys if index == 0 else keys[::-1]
                for round_ in range(40):
                    pairs = [(k, b"node %d round %d" % (index, round_)) for k in order]
                    assert set(c.put_many(pairs)) == {OK}
                    written[index].update(v for _, v in pairs)

        threads = [threading.Thread(target=hammer, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        deadline = time.monotonic() + 15
        while True:
            try:
                final = identical_everywhere(cluster.nodes, keys)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert all(v in written[0] | written[1] for v in final)
        winners = {v.split(b" ")[1] for v in final}
        print("200 keys written 40 times each on nodes 1 and 2 at once: every node agrees; "
              "winners by node: %r" % sorted(winners))


def test_deletes_propagate_and_are_not_undone_by_late_writes(exe):
    with Cluster(exe, 3, args=["-t", "2"]) as cluster:
        cluster.wait_connected()
        a, b, c = cluster.nodes
        keys = [b"doomed-%d" % i for i in range(500)]
        with a.client() as client:
            assert set(client.put_many([(k, b"alive") for k in keys])) == {OK}
        wait_until_all(cluster.nodes, keys, [b"alive"] * len(keys))
        with b.client() as client:
            for k in keys:
                assert client.delete(k) == OK
        took = wait_until_all(cluster.nodes, keys, [None] * len(keys))
        print("500 deletes on node 2 reached every node in %.2fs" % took)

        # A write older than the delete arrives late: the tombstone wins.
        # (Sent the way a slow peer would, on a replication connection.)
        long_ago = make_version(int(time.time() * 1000) - 60000, 4000)
        # (Within --max-clock-skew: a peer's clock may run a little ahead.)
        with cluster.open_stream(c, b"late-peer") as peer:
            peer.sendall(b"".join(repl_put_frame(k, b"zombie", long_ago) for k in keys))
            # A newer write of one key is applied, proving the stream was read.
            fresh = make_version(int(time.time() * 1000) + 1000, 4000)
            peer.sendall(repl_put_frame(b"fresh-key", b"applied", fresh))
            with c.client() as client:
                deadline = time.monotonic() + 10
                while client.get(b"fresh-key") != b"applied":
                    assert time.monotonic() < deadline, c.log()
                    time.sleep(0.05)
        identical = identical_everywhere([c], keys)
        assert identical == [None] * len(keys), "a late, older PUT resurrected a deleted key"
        assert int(c.stats()["REPL_IGNORED_OLDER"]) >= len(keys)
        # Deleted on one node, still deleted everywhere after more traffic.
        with a.client() as client:
            assert client.put(b"after", b"1") == OK
        wait_until_all(cluster.nodes, [b"after"] + keys, [b"1"] + [None] * len(keys))


def test_node_killed_under_load_and_restarted_converges(exe):
    with Cluster(exe, 3, args=["-t", "2"]) as cluster:
        cluster.wait_connected()
        a, b, victim = cluster.nodes
        acked = {}  # key -> last value a writer got OK for (disjoint keys per writer)
        stop = threading.Event()
        errors = []

        def writer(node, prefix):
            try:
                with node.client() as c:
                    i = 0
                    while not stop.is_set():
                        pairs = [(b"%s-%d" % (prefix, (i + j) % 3000), b"%s v%d" % (prefix, i + j))
                                 for j in range(100)]
                        statuses = c.put_many(pairs)
                        for (k, v), s in zip(pairs, statuses):
                            if s == OK:
                                acked[k] = v
                        i += 100
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(n, p)) for n, p in ((a, b"from-a"), (b, b"from-b"))]
        for t in threads:
            t.start()
        time.sleep(0.7)
        victim.kill()
        assert victim.proc.returncode == -9
        time.sleep(1.0)  # the others keep taking writes while it is gone
        victim.start()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors
        keys = sorted(acked)
        took = wait_until_all(cluster.nodes, keys, [acked[k] for k in keys], timeout=20)
        s = victim.stats()
        print("%d keys acknowledged by the two survivors under load; the restarted node had every "
              "one %.2fs after the load stopped (it received %s resyncs)" %
              (len(keys), took, s["REPL_RESYNCS_RECEIVED"]))
        assert int(s["REPL_RESYNCS_RECEIVED"]) >= 2
        assert a.log_count("dropped") >= 1 and b.log_count("dropped") >= 1
        assert victim.exit_codes == [] and victim.alive()


def test_peer_unreachable_at_start_up_joins_later(exe):
    # Peers named "localhost": resolved at every attempt, ::1 refused, 127.0.0.1 taken.
    with Cluster(exe, 3, args=["-t", "2"], not_listening=(2,), peer_host="localhost") as cluster:
        a, b, late = cluster.nodes
        keys = [b"early-%d" % i for i in range(2000)]
        with a.client() as c:
            assert set(c.put_many([(k, b"written before node 3 existed") for k in keys])) == {OK}
        deadline = time.monotonic() + 10
        while a.log_count("unreachable") == 0:
            assert time.monotonic() < deadline, a.log()
            time.sleep(0.05)
        # Node 2's link may still be connecting: it must come up while node 3 stays away.
        while a.stats()["REPL_CONNECTED"] != "1":
            assert time.monotonic() < deadline, a.stats()
            time.sleep(0.05)
        late.listen.listen(128)  # the socket it is passed
        late.start()
        took = wait_until_all(cluster.nodes, keys, [b"written before node 3 existed"] * len(keys))
        print("node 3, down at start-up, had all 2000 earlier writes %.2fs after it started" % took)
        cluster.wait_connected()


def text_command(port, lines):
    """Sends memcached text commands; returns their reply lines (one per
    command here)."""
    with TextClient(port, timeout=10) as t:
        t.send(b"".join(lines))
        return b"".join(t.read_line() + b"\r\n" for _ in lines)


def test_text_port_writes_replicate(exe):
    with Cluster(exe, 3, args=["-t", "2"], text=True) as cluster:
        cluster.wait_connected()
        a, b, c = cluster.nodes
        keys = [b"text-%d" % i for i in range(300)]
        sets = [b"set %s 7 0 %d\r\n%s\r\n" % (k, len(k) + 4, k + b"-val") for k in keys]
        assert text_command(a.text_port, sets) == b"STORED\r\n" * len(keys)
        wait_until_all(cluster.nodes, keys, [k + b"-val" for k in keys])
        # add/replace/delete through the text port of another node.
        replies = text_command(b.text_port, [b"add new-key 0 0 1\r\nn\r\n", b"replace text-0 0 0 3\r\nnew\r\n",
                                             b"delete text-1\r\n"])
        assert replies == b"STORED\r\nSTORED\r\nDELETED\r\n", replies
        wait_until_all(cluster.nodes, [b"new-key", b"text-0", b"text-1"], [b"n", b"new", None])
        # A large value streams in and is sent from the store.
        big = bytes(range(256)) * 1024
        assert text_command(c.text_port, [b"set big 0 0 %d\r\n%s\r\n" % (len(big), big)]) == b"STORED\r\n"
        wait_until_all(cluster.nodes, [b"big"], [big])
        # Replicated items keep their client flags (a memcached get shows them).
        reply = text_command(c.text_port, [b"get text-5\r\n"])
        assert reply.startswith(b"VALUE text-5 7 10\r\n"), reply
        # Read-modify-write commands rewrite the item with a newer version,
        # so peers apply the result instead of ignoring it as not newer.
        replies = text_command(a.text_port, [b"set n 0 0 1\r\n5\r\n", b"incr n 10\r\n",
                                             b"append n 0 0 1\r\n7\r\n", b"prepend n 0 0 1\r\n1\r\n"])
        assert replies == b"STORED\r\n15\r\nSTORED\r\nSTORED\r\n", replies
        wait_until_all(cluster.nodes, [b"n"], [b"1157"])
        assert text_command(b.text_port, [b"decr n 1000\r\n"]) == b"157\r\n"
        wait_until_all(cluster.nodes, [b"n"], [b"157"])


def text_stats(node):
    with TextClient(node.text_port, timeout=10) as t:
        return t.stats()


def test_text_stats_show_replication(exe):
    # memcached tools read the text port's stats: its repl_* lines are the
    # binary STATS' REPL_* fields, lower case, in the same order, last.
    with Cluster(exe, 2, args=["-t", "2"], text=True) as cluster:
        cluster.wait_connected()
        a, b = cluster.nodes
        binary = a.stats()
        text = text_stats(a)
        repl_binary = [name.lower() for name in binary if name.startswith("REPL_")]
        repl_text = [name for name in text if name.startswith("repl_")]
        assert repl_text == repl_binary and len(repl_text) >= 20, (repl_text, repl_binary)
        assert list(text)[-len(repl_text):] == repl_text, "repl_* lines are not last: %r" % list(text)
        assert text["repl_node_tag"] == binary["REPL_NODE_TAG"]
        assert text["repl_peers"] == "1" and text["repl_connected"] == "1", text
        applied_before = int(text["repl_applied"])
        keys = [b"text-stats-%d" % i for i in range(20)]
        text_set_all(b, keys, b"-v")
        deadline = time.monotonic() + CONVERGE_WITHIN_S
        while int(text_stats(a)["repl_applied"]) < applied_before + len(keys):
            assert time.monotonic() < deadline, "repl_applied did not count B's writes: %r" % text_stats(a)
            time.sleep(0.05)
    # Without --peer, no repl_* line (as the binary STATS has no REPL_*).
    with Daemon(exe, "-t", "1", text="bind") as node:
        assert not [name for name in text_stats(node) if name.startswith("repl_")]
        assert not [name for name in node.stats() if name.startswith("REPL_")]


def text_set_all(node, keys, tag):
    """Sets every key to key + tag on the node's text port."""
    sets = [b"set %s 0 0 %d\r\n%s\r\n" % (k, len(k + tag), k + tag) for k in keys]
    assert text_command(node.text_port, sets) == b"STORED\r\n" * len(keys)


def flushes_received(node):
    return int(node.stats()["REPL_FLUSHES_RECEIVED"])


def test_text_flush_all_replicates(exe):
    with Cluster(exe, 3, args=["-t", "2"], text=True) as cluster:
        cluster.wait_connected()
        a, b, c = cluster.nodes
        keys = {node.node_id: [b"flush-%s-%d" % (node.node_id.encode(), i) for i in range(100)] for node in cluster.nodes}
        every = sum(keys.values(), [])
        for node in cluster.nodes:
            text_set_all(node, keys[node.node_id], b"-1")
        wait_until_all(cluster.nodes, every, [k + b"-1" for k in every])

        # flush_all now on A: gone on every node.
        assert text_command(a.text_port, [b"flush_all\r\n"]) == b"OK\r\n"
        took = wait_until_all(cluster.nodes, every, [None] * len(every), timeout=CONVERGE_WITHIN_S)
        print("flush_all on one node: every key gone on all 3 nodes %.2fs after OK" % took)
        assert flushes_received(b) >= 1 and flushes_received(c) >= 1
        # A set after the flush, on another node, stays everywhere.
        text_set_all(b, [b"after-flush"], b"-kept")
        wait_until_all(cluster.nodes, [b"after-flush"], [b"after-flush-kept"])

        # flush_all noreply replicates too (nothing is answered to it).
        reply = text_command(c.text_port, [b"flush_all noreply\r\nversion\r\n"])
        assert reply.startswith(b"VERSION "), reply
        wait_until_all(cluster.nodes, [b"after-flush"], [None], timeout=CONVERGE_WITHIN_S)

        # A delayed flush: nothing goes before its time; then every write made
        # before it goes on every node, one made during the delay included.
        for node in cluster.nodes:
            text_set_all(node, keys[node.node_id], b"-2")
        wait_until_all(cluster.nodes, every, [k + b"-2" for k in every])
        asked = time.monotonic()
        assert text_command(b.text_port, [b"flush_all %d\r\n" % FLUSH_DELAY_S]) == b"OK\r\n"
        text_set_all(c, [b"during-delay"], b"-d")
        wait_until_all(cluster.nodes, every + [b"during-delay"], [k + b"-2" for k in every] + [b"during-delay-d"],
                       timeout=1)
        assert time.monotonic() - asked < FLUSH_DELAY_S - 1, "too slow to see the keys before the flush"
        wait_until_all(cluster.nodes, every + [b"during-delay"], [None] * (len(every) + 1),
                       timeout=FLUSH_DONE_WITHIN_S)
        gone = time.monotonic() - asked
        print("flush_all %d: every key gone on all 3 nodes %.2fs after OK" % (FLUSH_DELAY_S, gone))
        assert gone >= FLUSH_DELAY_S - 1, gone
        text_set_all(a, [b"after-delayed"], b"-kept")
        wait_until_all(cluster.nodes, [b"after-delayed"], [b"after-delayed-kept"])


def test_a_node_cut_off_during_flush_all_does_not_bring_flushed_keys_back(exe):
    cluster = Cluster(exe, 3, args=["-t", "2"], start=False, text=True)
    a, b, c = cluster.nodes
    # Every link to or from C goes through a cutter.
    cutters = {node.node_id: LinkCutter(node.port) for node in cluster.nodes}
    try:
        with cluster:
            a.peers = ["127.0.0.1:%d" % b.port, "127.0.0.1:%d" % cutters["3"].port]
            b.peers = ["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % cutters["3"].port]
            c.peers = ["127.0.0.1:%d" % cutters["1"].port, "127.0.0.1:%d" % cutters["2"].port]
            for node in cluster.nodes:
                node.start()
            cluster.wait_connected()
            keys = [b"cut-%d" % i for i in range(300)]
            for i, node in enumerate(cluster.nodes):
                text_set_all(node, keys[i::3], b"-old")
            wait_until_all(cluster.nodes, keys, [k + b"-old" for k in keys])

            for cutter in cutters.values():
                cutter.cut()
            deadline = time.monotonic() + 10
            while int(c.stats()["REPL_INCOMING"]) != 0 or int(a.stats()["REPL_CONNECTED"]) != 1:
                assert time.monotonic() < deadline, "the cut did not take:\n" + c.log()
                time.sleep(0.05)
            assert text_command(a.text_port, [b"flush_all\r\n"]) == b"OK\r\n"
            wait_until_all([a, b], keys, [None] * len(keys))
            # C missed it: it still serves the old keys.
            assert identical_everywhere([c], keys) == [k + b"-old" for k in keys]
            text_set_all(b, [b"after-flush"], b"-b")
            text_set_all(c, [b"c-after-flush"], b"-c")

            for cutter in cutters.values():
                cutter.heal()
            # Reconnected (backoff up to 2 s), C learns the flush from its
            # peers' resyncs, and its own resync cannot revive what it missed.
            took = wait_until_all(cluster.nodes, keys + [b"after-flush", b"c-after-flush"],
                                  [None] * len(keys) + [b"after-flush-b", b"c-after-flush-c"], timeout=15)
            print("a node cut off during flush_all: identical everywhere %.2fs after the links healed" % took)
            assert flushes_received(c) >= 1
            cluster.wait_connected()
            identical_everywhere(cluster.nodes, keys + [b"after-flush"])

            # Restarted empty, C gets the flush threshold before any copy.
            c.kill()
            c.start()
            cluster.wait_connected()
            wait_until_all(cluster.nodes, keys + [b"after-flush", b"c-after-flush"],
                           [None] * len(keys) + [b"after-flush-b", b"c-after-flush-c"])
            assert flushes_received(c) == 2, c.stats()
    finally:
        for cutter in cutters.values():
            cutter.close()


def test_replication_hello_is_checked(exe):
    with Cluster(exe, 2, args=["-t", "1"]) as cluster:
        cluster.wait_connected()
        a = cluster.nodes[0]
        for hello, why in ((repl_hello_v2_frame(b"1", os.urandom(32)), "own node id"),
                           (bytes([200]) + field(b"RINGCACHE-REPL/9 x"), "neither RINGCACHE-REPL/1")):
            with Client(a.port) as c:
                c.sock.sendall(hello)
                assert c.read_status() == EINVAL, why
                assert c.sock.recv(1) == b"", why
        deadline = time.monotonic() + 5
        while a.log_count("replication: hello from 127.0.0.1:") < 2:
            assert time.monotonic() < deadline, a.log()
            time.sleep(0.02)
        assert "own node id" in a.log() and "neither RINGCACHE-REPL/1" in a.log()
        # An admitted stream that sends a byte where an opcode belongs is closed.
        with cluster.open_stream(a, b"intruder") as peer:
            peer.sendall(repl_put_frame(b"ok", b"1", make_version(int(time.time() * 1000), 4000)) +
                         bytes([250]) + repl_put_frame(b"after", b"2", 1))
            peer.settimeout(10)
            assert peer.recv(1) == b""
        with a.client() as c:
            assert c.get(b"ok") == b"1" and c.get(b"after") is None
        # Bytes 200-255 are opcodes of replication connections only.
        with Client(a.port) as c:
            assert c.put(b"k", b"v") == OK
            c.sock.sendall(bytes([201]))
            assert c.read_status() == EINVAL
            assert c.get(b"k") == b"v"


def test_a_node_listed_as_its_own_peer_is_refused_at_start_up(exe):
    sock = bind_socket()
    try:
        port = sock.getsockname()[1]
        proc = run_to_exit(exe, "--listen-fd", str(sock.fileno()), "--text-port", "0",
                           "--peer", "127.0.0.1:%d" % port, pass_fds=(sock.fileno(),))
        assert proc.returncode == 2, proc
        assert "is this node itself" in proc.stderr, proc.stderr
    finally:
        sock.close()


if __name__ == "__main__":
    run_tests(globals())
