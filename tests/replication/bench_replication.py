"""Replication benchmark (issue 6): write throughput of one node and how far
its peers trail it, with 0, 1, 2 and 4 peers (meshes of 1, 2, 3, 5 nodes).

    python3 tests/replication/bench_replication.py BUILD_DIR [--duration S] [--connections 0] [--no-secret]
        [--tls] [--resync ITEMS [--value-size BYTES]]

For each mesh size: every node starts with -t 1 and connects to all others;
ringcache-loadgen (benchmarks/loadgen) sends PUT-only load to node 1; while
it runs, a probe writes a fresh key on node 1 every 50 ms and polls the
first peer with GETs until the value shows up there (write acknowledged ->
readable on the peer), and samples REPL_LAG_US (heartbeat delay) on every
peer. Prints one markdown table row per mesh. Not a test: nothing asserts;
all processes are stopped at the end.

--tls: the mesh's links (and the load and probes) over mutually
authenticated TLS, with node certificates made for the run (tests/e2e/tls_certs.py).
--resync ITEMS: instead, the throughput of one link: two nodes, node 1
filled with ITEMS values of --value-size bytes, node 2 killed and started
again; node 1's resync to it (its log's "resync ... done: N items in T ms")
and the bytes it sent meanwhile (REPL_BYTES_SENT: ciphertext with TLS).
"""

import argparse
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

from clients import OK  # noqa: E402
from figure_table import print_header, print_row  # noqa: E402
from replication_cluster import Cluster  # noqa: E402
from tls_certs import Certificates, client_context, tls_args  # noqa: E402

RESYNC_DONE_RE = re.compile(r"resync to peer \S+ done: (\d+) items in (\d+) ms")
FILL_BATCH = 500

PROBE_INTERVAL_S = 0.05
PROBE_TIMEOUT_S = 5.0


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def probe_lag(cluster, stop, lags_ms, missed):
    """Write-to-visible delay from node 1 to node 2, in ms."""
    origin, peer = cluster.nodes[0], cluster.nodes[1]
    with origin.client() as w, peer.client() as r:
        n = 0
        while not stop.is_set():
            key = b"probe-%d" % n
            value = b"%d" % time.monotonic_ns()
            assert w.put(key, value) == OK
            acked = time.monotonic()
            while r.get(key) != value:
                if time.monotonic() - acked > PROBE_TIMEOUT_S:
                    missed.append(key)
                    break
            else:
                lags_ms.append((time.monotonic() - acked) * 1000)
            n += 1
            stop.wait(PROBE_INTERVAL_S)


def sample_heartbeat_lag(cluster, stop, samples_us):
    clients = [n.client() for n in cluster.nodes[1:]]
    try:
        while not stop.wait(0.1):
            for c in clients:
                samples_us.append(int(c.stats()["REPL_LAG_US"]))
    finally:
        for c in clients:
            c.close()


def tls_cluster(exe, nodes, args, secret, certs):
    """A Cluster, started; with certs, every node on TLS with its own certificate."""
    cluster = Cluster(exe, nodes, args=args, secret=secret, start=certs is None)
    if certs is not None:
        for i, node in enumerate(cluster.nodes):
            node.args += tls_args(certs, "node%d" % (i + 1))
            node.client_tls = client_context(certs)
            node.start()
    return cluster


def run_resync(build, items, value_size, secret, certs):
    exe = os.path.join(build, "server", "ringcached")
    with tls_cluster(exe, 2, ["-t", "1", "-m", "512"], secret, certs) as cluster:
        cluster.wait_connected()
        origin, peer = cluster.nodes
        value = b"v" * value_size
        with origin.client() as c:
            for start in range(0, items, FILL_BATCH):
                pairs = [(b"key-%d" % i, value) for i in range(start, min(items, start + FILL_BATCH))]
                assert c.put_many(pairs) == [OK] * len(pairs)
        deadline = time.monotonic() + 120

        def settled():
            s = origin.stats()
            return (int(peer.stats()["KEYS"]) >= items and s["REPL_RESYNCING"] == "0" and
                    s["REPL_QUEUED_BYTES"] == "0")

        # (A peer too slow for the fill is cut and resynced: that copy must be over.)
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.05)
        before = int(origin.stats()["REPL_BYTES_SENT"])
        done_lines = len(RESYNC_DONE_RE.findall(origin.log()))
        peer.kill()
        peer.start()
        while ((len(RESYNC_DONE_RE.findall(origin.log())) <= done_lines or not settled()) and
               time.monotonic() < deadline):
            time.sleep(0.05)
        got_items, ms = RESYNC_DONE_RE.findall(origin.log())[done_lines]
        sent = int(origin.stats()["REPL_BYTES_SENT"]) - before
        return int(got_items), int(ms), sent


def run(build, peers, duration, connections, pipeline, secret=True, certs=None):
    exe = os.path.join(build, "server", "ringcached")
    loadgen = os.path.join(build, "benchmarks", "loadgen", "ringcache-loadgen")
    # (A lone node may not have --peer-secret-file.)
    with tls_cluster(exe, peers + 1, ["-t", "1", "-m", "256"], secret and peers > 0, certs) as cluster:
        if peers:
            cluster.wait_connected()
        stop = threading.Event()
        lags_ms, missed, heartbeat_us = [], [], []
        workers = []
        if peers:
            workers = [threading.Thread(target=probe_lag, args=(cluster, stop, lags_ms, missed)),
                       threading.Thread(target=sample_heartbeat_lag, args=(cluster, stop, heartbeat_us))]
        for t in workers:
            t.start()
        origin = cluster.nodes[0]
        if connections == 0:
            # No load: only the probes run, for the idle write-to-visible delay.
            time.sleep(duration)
            out = subprocess.CompletedProcess([], 0, "RESULT status=ok ops_per_s=0", "")
        else:
            out = subprocess.run([loadgen, "--port", str(origin.port), "--threads", "1", "--connections",
                                  str(connections), "--pipeline", str(pipeline), "--get-ratio", "0",
                                  "--keys", "100000", "--value-size", "100", "--duration", str(duration),
                                  "--warmup", "1", "--server-pid", str(origin.pid)] +
                                 (["--tls"] if certs is not None else []),
                                 capture_output=True, text=True, timeout=duration + 60)
        stop.set()
        for t in workers:
            t.join(30)
        result = dict(re.findall(r"(\w+)=(\S+)", out.stdout.split("RESULT", 1)[1])) if "RESULT" in out.stdout else {}
        # Every peer must end with what node 1 has.
        converge_s = 0.0
        if peers:
            start = time.monotonic()
            keys_origin = origin.stats()["KEYS"]
            while any(n.stats()["KEYS"] != keys_origin for n in cluster.nodes[1:]):
                if time.monotonic() - start > 30:
                    break
                time.sleep(0.05)
            converge_s = time.monotonic() - start
        s = origin.stats()
        return {
            "peers": peers,
            "ops": float(result.get("ops_per_s", "nan")),
            "p99_us": result.get("p99_us", "?"),
            "server_cpu": result.get("server_cpu_s_per_mreq", "?"),
            "lag_p50": percentile(lags_ms, 50),
            "lag_p99": percentile(lags_ms, 99),
            "lag_max": max(lags_ms) if lags_ms else float("nan"),
            "probes": len(lags_ms),
            "missed": len(missed),
            "hb_p50_ms": percentile(heartbeat_us, 50) / 1000.0 if heartbeat_us else float("nan"),
            "hb_ms_max": max(heartbeat_us) / 1000.0 if heartbeat_us else float("nan"),
            "overflows": "%s / %s" % (s.get("REPL_QUEUE_OVERFLOWS", "0"), s.get("REPL_HANDOFF_OVERFLOWS", "0")),
            "resyncs": s.get("REPL_RESYNCS", "0"),
            "converge_s": converge_s,
            "status": result.get("status", "no RESULT line: " + out.stderr[-300:]),
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=20, help="0: no load, probes only")
    parser.add_argument("--pipeline", type=int, default=8)
    parser.add_argument("--peers", default="0,1,2,4")
    parser.add_argument("--no-secret", action="store_true",
                        help="replicate unauthenticated (default: every node gets the same --peer-secret-file)")
    parser.add_argument("--tls", action="store_true", help="links, load and probes over TLS")
    parser.add_argument("--resync", type=int, default=0, help="measure one link's resync of this many items")
    parser.add_argument("--value-size", type=int, default=1000, help="with --resync")
    args = parser.parse_args()
    certs = Certificates(nodes=5) if args.tls else None
    try:
        if args.resync:
            items, ms, sent = run_resync(args.build, args.resync, args.value_size, not args.no_secret, certs)
            print("| %s | %d items of %d B | %d ms | %.0f items/s | %.1f MB/s sent |" % (
                "TLS" if certs else "plaintext", items, args.value_size, ms, items / (ms / 1000.0),
                sent / (ms / 1000.0) / 1e6), flush=True)
        else:
            bench_meshes(args, certs)
    finally:
        if certs is not None:
            certs.close()


def bench_meshes(args, certs):
    print_header(["peers", "PUT ops/s", "PUT p99 µs", "server CPU s/Mreq",
                  "write→visible on a peer p50 / p99 / max ms (probes)", "heartbeat lag p50 / max ms",
                  "overflows: log / handoff", "resyncs sent", "peers equal after"])
    for peers in [int(p) for p in args.peers.split(",")]:
        r = run(args.build, peers, args.duration, args.connections, args.pipeline, not args.no_secret, certs)
        if peers == 0:
            lag = heartbeat = "—"
            converge = "—"
        else:
            lag = "%.2f / %.2f / %.2f (%d, %d missed)" % (r["lag_p50"], r["lag_p99"], r["lag_max"], r["probes"],
                                                          r["missed"])
            heartbeat = "%.2f / %.2f" % (r["hb_p50_ms"], r["hb_ms_max"])
            converge = "%.2f s" % r["converge_s"]
        print_row([peers, "%.0f" % r["ops"], r["p99_us"], r["server_cpu"], lag, heartbeat, r["overflows"],
                   r["resyncs"], converge])
        if r["status"] != "ok":
            print("  (loadgen: %s)" % r["status"], flush=True)


if __name__ == "__main__":
    main()
