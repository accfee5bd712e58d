"""The load of the chaos test (test_chaos.py, whose docstring says why it
is shaped so): threads that PUT and DEL their own keys one at a time on
random nodes and record every operation, the gate through which they reach
the nodes, and what a key's recorded operations say its final state must
be."""

import random
import threading
import time
import traceback

from clients import ENOTFOUND, OK

# Between an answer and the next request on the same key: more than the
# millisecond of a version's clock.
SAME_KEY_GAP_S = 0.005
DEL_SHARE = 0.3
# Values over 16 KiB are sent by lookup from the store, over 64 KiB they
# stream in pieces (docs/replication.md §2, §6): some of each.
BIG_VALUE_SHARE = 0.01
BIG_VALUE_BYTES = (17 * 1024, 100 * 1024)
# Longer than any stop, so a request to a frozen node is answered after it thaws.
CLIENT_TIMEOUT_S = 30
# Operations kept per key besides unknown ones (expectation() needs the
# last acknowledged one and the unknown ones; a failure report shows a few).
HISTORY_KEPT = 4

ACKED, UNKNOWN = "acked", "unknown"


class Op:
    """One request. A PUT's value is `tag` padded with dots to `size` bytes,
    kept as the two (the value itself may be 100 KiB)."""

    __slots__ = ("kind", "tag", "size", "node", "generation", "start", "end", "outcome", "status")

    def __init__(self, kind, tag, size, node, generation, start):
        self.kind, self.tag, self.size = kind, tag, size
        self.node, self.generation, self.start = node, generation, start
        self.end = None
        self.outcome = None
        self.status = None

    def value(self):
        return self.tag + b"." * (self.size - len(self.tag)) if self.kind == "put" else None

    def describe(self, t0):
        what = "DEL" if self.kind == "del" else "PUT %r" % short(self.value())
        return "%s on node %d (start %d) at %.3fs..%.3fs: %s%s" % (
            what, self.node + 1, self.generation, self.start - t0, self.end - t0, self.outcome,
            "" if self.status is None else " (%d)" % self.status)


def short(value):
    if value is None:
        return None
    return value if len(value) <= 40 else value[:32] + b"...(%d bytes)" % len(value)


class Gate:
    """Which nodes load threads may send to, and how many requests are in
    flight to each; generation counts a node's starts, so a load thread
    re-opens its connection after a restart instead of writing into the
    socket of a dead process."""

    def __init__(self, count):
        self.cond = threading.Condition()
        self.open = [True] * count
        self.inflight = [0] * count
        self.generation = [1] * count

    def enter(self, rng):
        with self.cond:
            choices = [i for i, o in enumerate(self.open) if o]
            if not choices:
                return None
            node = rng.choice(choices)
            self.inflight[node] += 1
            return node, self.generation[node]

    def leave(self, node):
        with self.cond:
            self.inflight[node] -= 1
            assert self.inflight[node] >= 0
            self.cond.notify_all()

    def close(self, node):
        with self.cond:
            self.open[node] = False

    def idle(self, node, timeout):
        """True once no request to node is in flight (within timeout)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.inflight[node]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def reopen(self, node, restarted=False):
        with self.cond:
            if restarted:
                self.generation[node] += 1
            self.open[node] = True


class LoadThread(threading.Thread):
    """PUTs and DELs on its own keys, one at a time, on a random open node."""

    def __init__(self, index, keys, nodes, gate, seed, stopping):
        super().__init__(name="load-%d" % index, daemon=True)
        self.index = index
        self.keys = keys
        self.nodes = nodes
        self.gate = gate
        self.rng = random.Random(seed)
        self.stopping = stopping
        self.history = {k: [] for k in keys}
        self.last_answer = {}
        self.sent = 0
        self.counts = {"put": 0, "del": 0, UNKNOWN: 0}
        self.connect_failures = 0
        self.error = None

    def run(self):
        clients = {}
        try:
            while not self.stopping.is_set():
                self.one_op(clients)
        except Exception:
            self.error = traceback.format_exc()
        finally:
            for _, client in clients.values():
                client.close()

    def one_op(self, clients):
        key = self.rng.choice(self.keys)
        wait = self.last_answer.get(key, 0) + SAME_KEY_GAP_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        picked = self.gate.enter(self.rng)
        if picked is None:
            time.sleep(0.01)
            return
        node, generation = picked
        try:
            client = self.client(clients, node, generation)
            if client is None:
                return
            if self.rng.random() < DEL_SHARE:
                op = Op("del", None, 0, node, generation, time.monotonic())
            else:
                self.sent += 1
                tag = b"%s=t%d.%d@n%d" % (key, self.index, self.sent, node + 1)
                size = self.rng.randint(*BIG_VALUE_BYTES) if self.rng.random() < BIG_VALUE_SHARE else len(tag)
                op = Op("put", tag, size, node, generation, time.monotonic())
            self.record(key, op)
            try:
                op.status = client.delete(key) if op.kind == "del" else client.put(key, op.value())
            except (OSError, AssertionError):
                op.outcome = UNKNOWN
                client.close()
                del clients[node]
            else:
                expected = (OK, ENOTFOUND) if op.kind == "del" else (OK,)
                # A write that was not stored never answers OK; here every
                # one must be stored (no memory pressure, valid requests).
                assert op.status in expected, "%s answered %d" % (op.kind.upper(), op.status)
                op.outcome = ACKED
            op.end = time.monotonic()
            self.counts[op.kind if op.outcome == ACKED else UNKNOWN] += 1
            self.last_answer[key] = op.end
        finally:
            self.gate.leave(node)

    def record(self, key, op):
        ops = self.history[key]
        ops.append(op)
        if len(ops) > 2 * HISTORY_KEPT:
            ops[:-HISTORY_KEPT] = [o for o in ops[:-HISTORY_KEPT] if o.outcome == UNKNOWN]

    def client(self, clients, node, generation):
        have = clients.get(node)
        if have is not None and have[0] == generation:
            return have[1]
        if have is not None:
            have[1].close()
            del clients[node]
        try:
            client = self.nodes[node].client(timeout=CLIENT_TIMEOUT_S)
        except OSError:
            # Nothing was sent: no operation to record.
            self.connect_failures += 1
            time.sleep(0.01)
            return None
        clients[node] = (generation, client)
        return client


def expectation(ops, deaths):
    """(checked, value): the state the last acknowledged operation left
    (None = absent), or checked False when an unknown operation may still
    decide it. A key never written is absent. ops: a key's operations in
    order; older acknowledged ones may be missing (LoadThread.record), the
    last one is what counts."""
    value, unresolved = None, []
    for op in ops:
        if op.outcome == UNKNOWN:
            unresolved.append(op)
            continue
        # An unknown operation is settled once the process it went to died
        # before this one started (with the same margin as between answers).
        unresolved = [u for u in unresolved if deaths.get((u.node, u.generation), op.start) + SAME_KEY_GAP_S > op.start]
        value = op.value()
    return not unresolved, value
