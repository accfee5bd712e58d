"""Chaos test of replication (issue 11): three ringcached nodes in a full
mesh take PUTs and DELs on every node while a driver kills (-9) and
restarts nodes, freezes them (SIGSTOP) and thaws them (SIGCONT), and, in
network namespaces, cuts links and heals them. At the end every fault is
healed and every node must hold the same contents for the whole key space,
the contents the acknowledged operations imply, and there must be exactly
one stream each way between every two nodes (a stream left behind by a
sender that vanished during a cut is closed, docs/replication.md §7).

As root the nodes live in three network namespaces joined pairwise by veth
pairs (replication_cluster.Namespaces) and links are cut too: set down (both
ends lose carrier) or blackholed in one namespace (packets to the peer
vanish silently). Without root they share loopback and only kills and
stops happen; the namespace part is then skipped (and says so).

    test_chaos.py RINGCACHED [--duration SECONDS] [--seed N] [--loopback]

--duration (or RINGCACHE_CHAOS_SECONDS) is how long load and faults last,
60 s by default; meson's timeout covers that, so run longer ones with e.g.
`RINGCACHE_CHAOS_SECONDS=600 meson test -C build --timeout-multiplier 0
e2e_chaos`. The seed (printed; RINGCACHE_CHAOS_SEED) fixes which faults are
chosen and when, not how the processes interleave.

What the checker may expect, and why (docs/replication.md):

- Replication is asynchronous: a node acknowledges a write at once and
  streams it to its peers afterwards. A write acknowledged by a node killed
  with -9 before it streamed the write is lost by design, and one it had
  sent to some peers only stays on those (docs/replication.md §12). So
  before a kill the driver quiesces the node: load threads stop sending it
  requests, the driver waits for the ones in flight to be answered, then
  (bounded) for its STATS to show every peer connected (REPL_CONNECTED =
  REPL_PEERS), no copy under way (REPL_RESYNCING = 0: a copy may carry
  writes of this node that a peer missed while cut off) and nothing queued
  (REPL_QUEUED_BYTES = 0), all three holding for QUIESCE_STABLE_S: the
  fields are sampled once per turn of the replication thread, which turns
  at least every heartbeat (100 ms), so a sample older than the last
  acknowledgement cannot last that long. Only then is it killed; if it does
  not get there, the kill is skipped (and reported). A node whose links are
  cut or whose peers are stopped could not get its bytes across (its STATS
  may still say all is sent: the bytes wait in its kernel), so no kill is
  chosen then. What a dead process had written into a loopback or veth
  socket is still delivered by the kernel.
- A node that is killed may hold writes of its peers that it had not yet
  applied; they are not lost, since their origin resyncs it on reconnecting.
  A node stopped or cut off loses nothing: its peers' writes wait in the
  socket buffers and logs or it gets a resync (a peer that falls too far
  behind is cut and resynced in full).
- "Later" must mean the same for the checker and the nodes. Newest wins by
  hybrid logical clock version (docs/replication.md §3: milliseconds, a
  logical counter, the node tag). All nodes and namespaces share this
  machine's wall clock and this load never makes 1024 writes in one
  millisecond, so a version's milliseconds are the wall-clock millisecond
  at which its node handled the request: a clock moves past the wall clock
  only by the versions it sees from peers, which were made earlier on the
  same wall clock. Hence two operations on one key handled more than a
  millisecond apart are ordered by the clock, whichever nodes handled them.
  So every key belongs to one load thread (keys[i::LOAD_THREADS]), which
  waits for each answer and leaves at least SAME_KEY_GAP_S between an
  answer and its next request on that key: the expected final state of a
  key is its last acknowledged operation (a PUT: that value; a DEL:
  absent).
- A DEL answers OK when the key was there and ENOTFOUND when not; both leave
  a tombstone with a fresh version (client_writes.h) and both count as
  acknowledged deletes. Tombstones live 600 s, far longer than this test.
- An operation without an answer (connection reset, timeout) is unknown:
  it may take effect or not, and may still take effect later (a request in
  a frozen node's socket buffer is served when it thaws). Its key is not
  checked against expectations (but still must be identical everywhere)
  unless a later acknowledged operation started after the process that got
  the unknown one died. Load connections are re-opened after every restart
  and kills happen with nothing in flight, so unknown operations should be
  rare; they are counted and printed.
- Nodes run with -m 128 and the live data stays far below: eviction (local
  to a node, not replicated) would lose acknowledged writes, so the test
  fails if any node evicted.
"""

import argparse
import os
import random
import signal
import sys
import threading
import time

from chaos_load import ACKED, CLIENT_TIMEOUT_S, UNKNOWN, Gate, LoadThread, expectation, short
from harness import SkipTest, run_tests
from replication_cluster import Cluster, Namespaces, require_netns

DEFAULT_DURATION_S = 60
NODES = 3
NODE_ARGS = ["-t", "2", "-m", "128"]
PORT_IN_NAMESPACE = 8889
KEY_COUNT = 3000
LOAD_THREADS = 6
FAULT_GAP_S = (0.2, 2.0)
# How often each kind of fault is chosen among those possible at the time.
FAULT_WEIGHTS = {"kill": 4, "stop": 3, "down": 2, "blackhole": 2}
PAUSE_S = (0.3, 4.0)
CUT_S = (0.3, 4.0)
# Some cuts outlast tcp_user_timeout_ms (10 s): the sender drops the link.
LONG_CUT_SHARE = 0.2
LONG_CUT_S = (10.5, 13.0)
DOWN_S = (0.2, 2.0)
PAUSED_NODES_MAX = 1
CUT_LINKS_MAX = 2
QUIESCE_TIMEOUT_S = 10
QUIESCE_STABLE_S = 0.5
QUIESCE_POLL_S = 0.05
CONVERGE_TIMEOUT_S = 45
# Identical everywhere, all connected, nothing queued for this long: done
# waiting, whatever the expectations say.
SETTLED_S = 3
# A stream whose sender dropped it during a cut is closed by keepalive
# about 10 s after its last byte (docs/replication.md §7).
STREAMS_SETTLE_S = 15
MISMATCHES_SHOWN = 10
LOG_TAIL_LINES = 40

class Driver:
    """Injects faults at random (seeded) and heals them when due."""

    def __init__(self, cluster, ns, gate, rng, t0):
        self.cluster = cluster
        self.nodes = cluster.nodes
        self.ns = ns
        self.gate = gate
        self.rng = rng
        self.t0 = t0
        self.paused = {}   # node -> when to resume
        self.cuts = {}     # (i, j), i < j -> (kind, when to heal)
        self.deaths = {}   # (node, generation) -> when it died
        self.down = set()  # killed, not restarted yet
        self.events = []
        self.counts = {}

    def note(self, text):
        line = "%7.2fs  %s" % (time.monotonic() - self.t0, text)
        self.events.append(line)
        print(line, flush=True)

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def check_alive(self):
        for i, node in enumerate(self.nodes):
            if i not in self.down and not node.alive():
                raise AssertionError("node %d died by itself (exit %s):\n%s" % (
                    i + 1, node.proc.returncode, "\n".join(node.log().splitlines()[-LOG_TAIL_LINES:])))

    def heal_due(self, everything=False):
        self.check_alive()
        now = time.monotonic()
        for node, when in sorted(self.paused.items()):
            if everything or now >= when:
                self.nodes[node].resume()
                del self.paused[node]
                self.note("node %d continued (SIGCONT)" % (node + 1))
        for link, (kind, when) in sorted(self.cuts.items()):
            if everything or now >= when:
                self.set_cut(link, kind, False)
                del self.cuts[link]
                self.note("link %d-%d healed (%s)" % (link[0] + 1, link[1] + 1, kind))

    def set_cut(self, link, kind, cut):
        i, j = link[0] + 1, link[1] + 1
        if kind == "down":
            self.ns.set_link(i, j, up=not cut)
        else:
            self.ns.set_blackhole(i, j, on=cut)

    def sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            self.heal_due()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def run(self, until):
        while True:
            self.sleep(max(0.0, min(self.rng.uniform(*FAULT_GAP_S), until - time.monotonic())))
            if time.monotonic() >= until:
                break
            self.inject(until)
        self.heal_due(everything=True)

    def killable(self):
        """Nodes whose writes can reach every peer now."""
        if self.paused:
            return []
        return [node for node in range(NODES) if not any(node in link for link in self.cuts)]

    def choices(self):
        """Faults compatible with the current state; a kill always is, after
        waiting for the faults in its way to heal (kill_and_restart)."""
        out = [("kill", None)]
        if len(self.paused) < PAUSED_NODES_MAX:
            out += [("stop", node) for node in range(NODES) if node not in self.paused]
        if self.ns is not None and len(self.cuts) < CUT_LINKS_MAX:
            for i in range(NODES):
                for j in range(i + 1, NODES):
                    if (i, j) not in self.cuts:
                        out += [("down", (i, j)), ("blackhole", (i, j))]
        return out

    def inject(self, until):
        options = self.choices()
        kinds = sorted({kind for kind, _ in options})
        kind = self.rng.choices(kinds, weights=[FAULT_WEIGHTS[k] for k in kinds])[0]
        target = self.rng.choice([t for k, t in options if k == kind])
        if kind == "kill":
            self.kill_and_restart(until)
        elif kind == "stop":
            self.nodes[target].pause()
            self.paused[target] = time.monotonic() + self.rng.uniform(*PAUSE_S)
            self.count("stop")
            self.note("node %d stopped (SIGSTOP) for %.1fs" % (target + 1, self.paused[target] - time.monotonic()))
        else:
            self.set_cut(target, kind, True)
            lasts = LONG_CUT_S if self.rng.random() < LONG_CUT_SHARE else CUT_S
            self.cuts[target] = (kind, time.monotonic() + self.rng.uniform(*lasts))
            self.count("cut (%s)" % kind)
            self.note("link %d-%d cut (%s) for %.1fs" % (target[0] + 1, target[1] + 1, kind,
                                                          self.cuts[target][1] - time.monotonic()))

    def kill_and_restart(self, until):
        while not self.killable():
            if time.monotonic() >= until:
                return
            self.sleep(0.05)
        node = self.rng.choice(self.killable())
        victim = self.nodes[node]
        started = time.monotonic()
        self.gate.close(node)
        quiet, why = self.quiesce(node)
        if not quiet:
            self.gate.reopen(node)
            self.count("kill skipped")
            self.note("kill of node %d skipped: not quiesced in %ds (%s)" % (node + 1, QUIESCE_TIMEOUT_S, why))
            return
        generation = self.gate.generation[node]
        self.down.add(node)
        victim.kill()
        self.deaths[(node, generation)] = time.monotonic()
        self.count("kill -9")
        self.note("node %d killed (-9) after %.2fs of quiescing" % (node + 1, time.monotonic() - started))
        self.sleep(self.rng.uniform(*DOWN_S))
        victim.start()
        self.down.discard(node)
        self.gate.reopen(node, restarted=True)
        self.note("node %d restarted" % (node + 1))

    def quiesce(self, index):
        """Waits until nothing is in flight to the node and its acknowledged
        writes are all in its sockets towards every peer (see the module
        docstring)."""
        deadline = time.monotonic() + QUIESCE_TIMEOUT_S
        while not self.gate.idle(index, QUIESCE_POLL_S):
            self.heal_due()
            if time.monotonic() > deadline:
                return False, "requests still in flight"
        node = self.nodes[index]
        since = None
        last = "no STATS yet"
        with node.client(timeout=CLIENT_TIMEOUT_S) as c:
            while time.monotonic() < deadline:
                s = c.stats()
                quiet = (s["REPL_CONNECTED"] == s["REPL_PEERS"] and s["REPL_RESYNCING"] == "0" and
                         s["REPL_QUEUED_BYTES"] == "0")
                last = "CONNECTED=%s/%s RESYNCING=%s QUEUED_BYTES=%s" % (
                    s["REPL_CONNECTED"], s["REPL_PEERS"], s["REPL_RESYNCING"], s["REPL_QUEUED_BYTES"])
                now = time.monotonic()
                if not quiet:
                    since = None
                elif since is None:
                    since = now
                elif now - since >= QUIESCE_STABLE_S:
                    return True, last
                self.heal_due()
                time.sleep(QUIESCE_POLL_S)
        return False, last


def read_all(nodes, keys):
    out = []
    for node in nodes:
        with node.client(timeout=CLIENT_TIMEOUT_S) as c:
            out.append(c.get_many(keys, batch=200))
    return out


def all_settled(nodes):
    for node in nodes:
        s = node.stats()
        if (s["REPL_CONNECTED"] != s["REPL_PEERS"] or s["REPL_RESYNCING"] != "0" or
                s["REPL_QUEUED_BYTES"] != "0"):
            return False
    return True


def converge(nodes, keys, expected, checked):
    """Polls until every node matches the expectations and the others; or,
    bounded, until the nodes are identical and settled. Returns (seconds,
    the last answers)."""
    start = time.monotonic()
    settled_since = None
    while True:
        answers = read_all(nodes, keys)
        identical = all(a == answers[0] for a in answers[1:])
        matches = identical and all(not c or a == e for a, e, c in zip(answers[0], expected, checked))
        now = time.monotonic()
        if matches:
            return now - start, answers
        if identical and all_settled(nodes):
            settled_since = settled_since or now
            if now - settled_since >= SETTLED_S:
                return now - start, answers
        else:
            settled_since = None
        if now - start > CONVERGE_TIMEOUT_S:
            return now - start, answers
        time.sleep(0.2)


def wait_one_stream_per_peer(nodes):
    """Seconds until every node streams to each peer and receives one
    stream from each; raises after STREAMS_SETTLE_S."""
    start = time.monotonic()
    while True:
        stats = [n.stats() for n in nodes]
        links = ["node %s: CONNECTED=%s INCOMING=%s PEERS=%s" % (n.node_id, s["REPL_CONNECTED"], s["REPL_INCOMING"],
                                                                s["REPL_PEERS"]) for n, s in zip(nodes, stats)]
        if all(s["REPL_CONNECTED"] == s["REPL_PEERS"] == s["REPL_INCOMING"] for s in stats):
            return time.monotonic() - start
        assert time.monotonic() - start < STREAMS_SETTLE_S, (
            "streams left over or missing %ds after the end:\n%s" % (STREAMS_SETTLE_S, "\n".join(links)))
        time.sleep(0.2)


def report_failure(nodes, keys, histories, expected, checked, answers, t0):
    lines = []
    bad = 0
    for i, key in enumerate(keys):
        per_node = [a[i] for a in answers]
        bad_identity = any(v != per_node[0] for v in per_node[1:])
        bad_value = checked[i] and per_node[0] != expected[i]
        if not (bad_identity or bad_value):
            continue
        bad += 1
        if bad > MISMATCHES_SHOWN:
            continue
        ops = histories[key]
        last = ops[-1].describe(t0) if ops else "never written"
        acked = [op for op in ops if op.outcome == ACKED]
        lines.append("key %r: expected %s; last op: %s; last acked: %s" % (
            key, "unchecked" if not checked[i] else ("absent" if expected[i] is None else repr(short(expected[i]))),
            last, acked[-1].describe(t0) if acked else "none"))
        for n, v in zip(nodes, per_node):
            lines.append("    node %s: %r" % (n.node_id, short(v)))
        for op in ops:
            lines.append("    recent op %s" % op.describe(t0))
    lines.insert(0, "%d keys differ between nodes or from their last acknowledged operation" % bad)
    for node in nodes:
        with node.lock:
            tail = node.lines[-LOG_TAIL_LINES:]
        lines.append("--- node %s log (last %d lines)" % (node.node_id, len(tail)))
        lines.extend(tail)
    return "\n".join(lines)


def parse_options():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--duration", type=float,
                        default=float(os.environ.get("RINGCACHE_CHAOS_SECONDS", DEFAULT_DURATION_S)))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--loopback", action="store_true")
    options, rest = parser.parse_known_args()
    if options.seed is None:
        env = os.environ.get("RINGCACHE_CHAOS_SEED")
        options.seed = int(env) if env else random.SystemRandom().randrange(1 << 31)
    sys.argv = [sys.argv[0]] + rest
    return options


OPTIONS = None


def chaos(exe, ns):
    rng = random.Random(OPTIONS.seed)
    keys = [b"chaos-%05d" % i for i in range(KEY_COUNT)]
    if ns is None:
        cluster = Cluster(exe, NODES, args=NODE_ARGS)
    else:
        cluster = Cluster.in_namespaces(exe, ns, args=NODE_ARGS, port=PORT_IN_NAMESPACE)
    with cluster:
        if ns is not None:
            for node in cluster.nodes:
                node.start()
        cluster.wait_connected()
        t0 = time.monotonic()
        gate = Gate(NODES)
        stopping = threading.Event()
        loads = [LoadThread(i, keys[i::LOAD_THREADS], cluster.nodes, gate, OPTIONS.seed * 100 + i, stopping)
                 for i in range(LOAD_THREADS)]
        for t in loads:
            t.start()
        driver = Driver(cluster, ns, gate, rng, t0)
        try:
            driver.run(t0 + OPTIONS.duration)
        finally:
            driver.heal_due(everything=True)
            stopping.set()
            for t in loads:
                t.join(CLIENT_TIMEOUT_S + 10)
        load_s = time.monotonic() - t0
        errors = [t.error for t in loads if t.error] + ["%s did not stop" % t.name for t in loads if t.is_alive()]
        assert not errors, "\n".join(errors)

        histories = {}
        for t in loads:
            histories.update(t.history)
        acked_puts = sum(t.counts["put"] for t in loads)
        acked_dels = sum(t.counts["del"] for t in loads)
        unknown = sum(t.counts[UNKNOWN] for t in loads)
        results = [expectation(histories[k], driver.deaths) for k in keys]
        checked = [c for c, _ in results]
        expected = [v for _, v in results]

        took, answers = converge(cluster.nodes, keys, expected, checked)
        identical = all(a == answers[0] for a in answers[1:])
        matches = identical and all(not c or a == e for a, e, c in zip(answers[0], expected, checked))
        stats = [n.stats() for n in cluster.nodes]

        print("seed %d, %s, %.1fs of load and faults" % (
            OPTIONS.seed, "3 network namespaces" if ns else "loopback", load_s))
        print("faults: " + (", ".join("%s %d" % (k, v) for k, v in sorted(driver.counts.items())) or "none"))
        print("operations: %d PUTs and %d DELs acknowledged, %d unknown, %d connection attempts refused "
              "(%.0f ops/s)" % (acked_puts, acked_dels, unknown, sum(t.connect_failures for t in loads),
                                (acked_puts + acked_dels) / load_s))
        print("keys: %d checked against their last acknowledged operation (%d present, %d absent), "
              "%d unchecked (an unknown operation), identical on all nodes: %s; converged %.2fs after the load "
              "stopped" % (sum(checked), sum(c and e is not None for c, e in zip(checked, expected)),
                           sum(c and e is None for c, e in zip(checked, expected)), len(keys) - sum(checked),
                           identical, took))
        for node, s in zip(cluster.nodes, stats):
            print("node %s: EVICTIONS=%s REPL_RESYNCS_RECEIVED=%s REPL_QUEUE_OVERFLOWS=%s "
                  "REPL_HANDOFF_OVERFLOWS=%s REPL_APPLY_FAILED=%s" % (
                      node.node_id, s["EVICTIONS"], s["REPL_RESYNCS_RECEIVED"], s["REPL_QUEUE_OVERFLOWS"],
                      s["REPL_HANDOFF_OVERFLOWS"], s["REPL_APPLY_FAILED"]))
        lossy = not all(s["EVICTIONS"] == "0" and s["REPL_APPLY_FAILED"] == "0" for s in stats)
        if not matches:
            raise AssertionError(("a node evicted or could not apply (the test's data is too large for -m): "
                                  if lossy else "") +
                                 report_failure(cluster.nodes, keys, histories, expected, checked, answers, t0))
        assert not lossy, "a node evicted or could not apply: the test's data is too large for -m"
        took = wait_one_stream_per_peer(cluster.nodes)
        print("one stream each way between every two nodes %.1fs after the contents matched" % took)
        assert sum(checked) > len(keys) // 2, "too few keys checked to mean anything"
        assert driver.counts.get("kill -9", 0) > 0 or OPTIONS.duration < 20, "no kill in %.0fs" % load_s


def test_chaos(exe):
    print("seed %d (--seed %d repeats the choice of faults)" % (OPTIONS.seed, OPTIONS.seed), flush=True)
    if OPTIONS.loopback:
        print("network namespaces: not asked for (--loopback); loopback, no link cuts")
        chaos(exe, None)
        return
    try:
        require_netns()
    except SkipTest as why:
        print("network namespaces: skipped (%s); loopback, no link cuts" % why)
        chaos(exe, None)
        return
    with Namespaces(NODES, letter="c", link_net=203, host_net=204) as ns:
        chaos(exe, ns)


if __name__ == "__main__":
    # Killed by meson's timeout: unwind, so nodes stop and namespaces go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM"))
    OPTIONS = parse_options()
    run_tests(globals())
