"""Replication links over mutually authenticated TLS (docs/replication.md,
"TLS"): real daemons on 127.0.0.1 with --tls-cert, --tls-key and --tls-ca,
node certificates made for each run by the openssl command line
(tls_certs.py, good for serverAuth and clientAuth). Three replicas converge
over TLS, with and without --peer-secret-file, and a node killed with -9
resyncs over TLS when it comes back; a node whose certificate another CA
signed is refused by the others (its writes never applied there; their logs
and REPL_TLS_FAILURES say why); a plaintext node peering into a TLS node is
refused, and so is a TLS client without a certificate that sends a
replication hello; --peer with TLS but without --tls-ca does not start;
SIGHUP reloads the links' certificate too; a peer holding a mesh
certificate that floods a link with TLS records without data (session
tickets) gets the link dropped, counted in REPL_TLS_FAILURES, while the node
keeps serving its clients and its other peer. Every wait is bounded."""

import functools
import os
import shutil
import signal
import socket
import ssl
import threading
import time

from clients import OK
from daemon import accepted, bind_socket, run_to_exit
from harness import run_tests, stat, wait_for
from replication_cluster import Cluster, repl_hello_frame, wait_until_all
from tls_certs import Certificates, client_context, tls_args

TIMEOUT_S = 20
KEYS_PER_NODE = 50
# Connections the flooding peer may see in its first FLOOD_WINDOW_S.
FLOOD_WINDOW_S = 3.0
FLOOD_WINDOW_CONNECTIONS_MAX = 7
# Session tickets a flooding peer sends after each handshake: with our
# certificate inside, about 690 bytes each, so some 1.4 MB of records without data.
FLOOD_TICKETS = 2000
FLOOD_POLL_S = 0.05
FLOOD_SOCKET_TIMEOUT_S = 5


def tls_cluster(exe, certs, count=3, secret=False, certs_of=None, start=True):
    """A mesh of `count` nodes, node i presenting node<i>.pem (or
    certs_of[i]: (cert, ca) for node i, from 0)."""
    cluster = Cluster(exe, count, args=("-t", "2"), start=False, secret=secret)
    for i, node in enumerate(cluster.nodes):
        cert, ca = (certs_of or {}).get(i, ("node%d" % (i + 1), "ca.pem"))
        node.args += tls_args(certs, cert, ca)
        # The tests' own clients present nothing (asked for, not required).
        node.client_tls = client_context(certs, ca=ca if cert != "other-node" else "other-ca.pem")
        if start:
            node.start()
    return cluster


def put_keys(node, prefix, count=KEYS_PER_NODE):
    keys = [b"%s-%d" % (prefix, i) for i in range(count)]
    with node.client() as c:
        assert c.put_many([(k, k + b"=v") for k in keys]) == [OK] * count
    return keys


def check_mesh_over_tls(exe, secret):
    with Certificates(nodes=3) as certs, tls_cluster(exe, certs, secret=secret) as cluster:
        cluster.wait_connected(TIMEOUT_S)
        for node in cluster.nodes:
            s = node.stats()
            assert int(s["REPL_TLS"]) == 1 and int(s["REPL_TLS_FAILURES"]) == 0, (s, node.log())
            assert node.log_count("replication: connected to peer") == 2, node.log()
            assert node.log_count(", TLSv1.3") == 2, node.log()
            assert node.log_count("TLS client certificate verified" if not secret else "opened, authenticated") == 2
        keys = []
        for i, node in enumerate(cluster.nodes):
            keys += put_keys(node, b"node%d" % (i + 1))
        wait_until_all(cluster.nodes, keys, [k + b"=v" for k in keys], timeout=TIMEOUT_S)

        # Node 3 dies with -9; what nodes 1 and 2 take meanwhile reaches it
        # over TLS when it is back (a resync from each).
        third = cluster.nodes[2]
        third.kill()
        while_down = put_keys(cluster.nodes[0], b"while-down-1") + put_keys(cluster.nodes[1], b"while-down-2")
        third.start()
        wait_until_all([third], while_down, [k + b"=v" for k in while_down], timeout=TIMEOUT_S)
        cluster.wait_connected(TIMEOUT_S)
        # Its own data went with it (no persistence): the others hold it and
        # resynced it back, along with the rest.
        wait_until_all([third], keys, [k + b"=v" for k in keys], timeout=TIMEOUT_S)
        assert third.log_count("replication: resync from node") >= 2, third.log()
        for node in cluster.nodes:
            assert stat(node, "REPL_TLS_FAILURES") == 0, node.log()


test_three_replicas_converge_over_mutual_tls = functools.partial(check_mesh_over_tls, secret=False)
test_three_replicas_over_tls_and_peer_secret = functools.partial(check_mesh_over_tls, secret=True)


def test_node_with_a_certificate_of_another_ca_is_refused(exe):
    # Node 3 trusts the mesh's CA but presents a certificate the other CA
    # signed: nodes 1 and 2 refuse its certificate both ways (as clients,
    # verifying its server certificate; as servers, its client certificate).
    with Certificates(nodes=3) as certs, \
            tls_cluster(exe, certs, certs_of={2: ("other-node", "ca.pem")}) as cluster:
        first, second, third = cluster.nodes
        # Each side counts and logs its own end of a refused handshake, each
        # in its own time: wait for all of them before looking.
        wait_for(lambda: (all(stat(n, "REPL_TLS_FAILURES") >= 1 for n in cluster.nodes) and
                          all(stat(n, "TLS_HANDSHAKE_ERRORS") >= 1 for n in (first, second)) and
                          third.log_count("TLS handshake failed") >= 2),
                 lambda: "\n\n".join(n.log() for n in cluster.nodes), TIMEOUT_S)
        for node in (first, second):
            line = node.line_with("replication: peer 127.0.0.1:%d TLS handshake failed" % third.port)
            assert line is not None and "certificate verify failed" in line, node.log()
            assert node.log_count("TLS handshake failed") == 1, "logged once per streak:\n" + node.log()
            # As a server it refused node 3's client certificate.
            assert stat(node, "TLS_HANDSHAKE_ERRORS") >= 1, node.log()
        # Node 3's links never stream: the TLS 1.3 servers refuse its
        # certificate after its side of the handshake is done, and it waits
        # for their session ticket before it sends anything.
        for node in (first, second):
            line = third.line_with("replication: peer 127.0.0.1:%d TLS handshake failed" % node.port)
            assert line is not None and "alert unknown ca" in line, third.log()
        assert third.log_count("TLS handshake failed") == 2, "logged once per streak:\n" + third.log()
        assert third.log_count("connected to peer") == 0, third.log()

        refused = put_keys(third, b"from-other-ca", 5)
        marker = put_keys(second, b"marker", 1)
        wait_until_all([first], marker, [marker[0] + b"=v"], timeout=TIMEOUT_S)
        # Node 3's writes would have gone out before the marker's if its link were up.
        for node in (first, second):
            with node.client() as c:
                assert c.get_many(refused) == [None] * len(refused), node.log()
            assert stat(node, "REPL_INCOMING") == 1 and stat(node, "REPL_CONNECTED") == 1, node.log()
        assert stat(third, "REPL_INCOMING") == 0 and stat(third, "REPL_CONNECTED") == 0, third.log()


def test_plaintext_node_is_refused_by_a_tls_node(exe):
    with Certificates(nodes=2) as certs, tls_cluster(exe, certs, count=2, start=False) as cluster:
        tls_node, plain = cluster.nodes
        # -v: every retry is logged, so the test sees one after its writes.
        plain.args = ["-t", "2", "-v"]
        plain.client_tls = None
        tls_node.start()
        plain.start()
        # Each side fails the other: no TLS on the plaintext node's port,
        # and nothing but TLS taken on the TLS node's.
        wait_for(lambda: stat(tls_node, "REPL_TLS_FAILURES") >= 1, tls_node.log, TIMEOUT_S)
        line = tls_node.line_with("replication: peer 127.0.0.1:%d TLS handshake failed" % plain.port)
        assert line is not None, tls_node.log()
        # Closed, or reset / broken pipe when the close overtakes the hello
        # (often under ASan): any drop of the link is an attempt refused.
        dropped = "replication: peer 127.0.0.1:%d dropped: " % tls_node.port
        wait_for(lambda: plain.log_count(dropped) >= 1, plain.log, TIMEOUT_S)
        refused = put_keys(plain, b"plaintext", 5)
        # The plaintext node retries with backoff: wait for one more attempt after the writes.
        attempts = plain.log_count(dropped)
        wait_for(lambda: plain.log_count(dropped) > attempts, plain.log, TIMEOUT_S)
        with tls_node.client() as c:
            assert c.get_many(refused) == [None] * len(refused)
        assert stat(tls_node, "REPL_INCOMING") == 0, tls_node.log()
        assert stat(plain, "REPL_INCOMING") == 0, plain.log()


def test_hello_over_tls_without_a_client_certificate_is_refused(exe):
    with Certificates(nodes=2) as certs, tls_cluster(exe, certs, count=2) as cluster:
        node = cluster.nodes[0]
        cluster.wait_connected(TIMEOUT_S)
        # An ordinary client without a certificate is served...
        with node.client() as c:
            assert c.put(b"k", b"v") == OK
        # ... but its replication hello is refused (EINVAL, then the close).
        with node.client() as c:
            c.send(repl_hello_frame(b"7"))
            assert c.read_status() != OK
            c.expect_eof()
        wait_for(lambda: stat(node, "REPL_TLS_FAILURES") == 1, node.log, TIMEOUT_S)
        assert node.line_with("presented no certificate signed by --tls-ca") is not None, node.log()
        assert stat(node, "REPL_INCOMING") == 1, node.log()


def test_sighup_reloads_the_links_certificate(exe):
    with Certificates(nodes=3) as certs, tls_cluster(exe, certs, count=2, start=False) as cluster:
        first, second = cluster.nodes
        # Node 1's files are copies: renewed below with node3's certificate.
        cert, key = certs.path("live.pem"), certs.path("live.key")
        shutil.copyfile(certs.path("node1.pem"), cert)
        shutil.copyfile(certs.path("node1.key"), key)
        first.args = ["-t", "2"] + tls_args(certs, "live")
        first.start()
        second.start()
        cluster.wait_connected(TIMEOUT_S)
        assert second.line_with("stream from node 1 (127.0.0.1:") is not None
        assert "certificate /CN=node1)" in second.line_with("stream from node 1 ("), second.log()
        shutil.copyfile(certs.path("node3.pem"), cert)
        shutil.copyfile(certs.path("node3.key"), key)
        os.kill(first.pid, signal.SIGHUP)
        first.wait_for_line("tls: SIGHUP: reloaded --tls-cert and --tls-key; new connections and replication "
                            "links get certificate /CN=node3", TIMEOUT_S)
        # A new link after the reload: node 2 restarts, node 1 reconnects
        # and presents the new certificate.
        second.kill()
        second.start()
        cluster.wait_connected(TIMEOUT_S)
        opened = [line for line in second.log().splitlines() if "stream from node 1 (" in line]
        assert "certificate /CN=node3)" in opened[-1], second.log()
        keys = put_keys(first, b"after-reload", 5)
        wait_until_all([second], keys, [k + b"=v" for k in keys], timeout=TIMEOUT_S)


class TicketFloodingPeer:
    """A fake mesh member on 127.0.0.1: a TLS 1.3 server with a certificate
    the mesh CA signed, requiring a client certificate from that CA, that
    sends FLOOD_TICKETS session tickets after each handshake (records with
    no data) and then reads and discards until the node hangs up. It never
    answers a hello. Serves one connection at a time; close() stops it."""

    def __init__(self, certs, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(certs.path(cert + ".pem"), certs.path(cert + ".key"))
        self.ctx.load_verify_locations(certs.path("ca.pem"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.num_tickets = FLOOD_TICKETS
        self.listener = bind_socket()
        self.listener.settimeout(FLOOD_POLL_S)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.errors = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for conn in accepted(self.listener, lambda: self.stopping):
            self.connections += 1
            conn.settimeout(FLOOD_SOCKET_TIMEOUT_S)
            try:
                # The handshake returns once every ticket is in the socket
                # (or raises when the node hung up in the middle of them).
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(FLOOD_POLL_S)
                    while not self.stopping:
                        try:
                            if not tls.recv(1 << 16):
                                break
                        except socket.timeout:
                            continue
            except (OSError, ssl.SSLError) as e:
                self.errors.append(repr(e))
            finally:
                conn.close()

    def close(self):
        self.stopping = True
        self.thread.join(FLOOD_SOCKET_TIMEOUT_S + 1)
        assert not self.thread.is_alive(), "the flooding peer did not stop"
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_ticket_flood_drops_the_link(exe, secret):
    # Node 1 links to node 2 and to the flooding peer; node 2 to node 1.
    with Certificates(nodes=3) as certs, TicketFloodingPeer(certs, "node3") as flood, \
            tls_cluster(exe, certs, count=2, secret=secret, start=False) as cluster:
        first, second = cluster.nodes
        flooder = "127.0.0.1:%d" % flood.port
        first.peers.append(flooder)
        first.start()
        started = time.monotonic()
        second.start()
        # Dropped, reconnected with backoff, dropped again: before the bound
        # the link took the whole flood and stayed up (or, with a secret,
        # timed out its authentication, which is no TLS failure).
        wait_for(lambda: stat(first, "REPL_TLS_FAILURES") >= 2 and flood.connections >= 2,
                 lambda: "%d connections, errors %s\n%s" % (flood.connections, flood.errors[-3:], first.log()),
                 TIMEOUT_S)
        # The daemon's log is read by a thread: wait for the line, not just the counter.
        first.wait_for_log("bytes of TLS records after the handshake")
        line = first.line_with("bytes of TLS records after the handshake")
        assert flooder in line, first.log()
        assert ("dropped: TLS: the peer sent" if not secret else "TLS handshake failed (the peer sent") in line, line
        assert "the peer sent more than 65536 bytes of TLS records" in line, line
        if secret:
            # The same reason each time: logged once per streak.
            assert first.log_count("bytes of TLS records after the handshake") == 1, first.log()
        # Meanwhile node 1 serves its clients and streams to and from node 2.
        keys = put_keys(first, b"during-flood-1") + put_keys(second, b"during-flood-2")
        wait_until_all(cluster.nodes, keys, [k + b"=v" for k in keys], timeout=TIMEOUT_S)
        assert stat(first, "REPL_INCOMING") == 1 and stat(second, "REPL_CONNECTED") == 1, first.log()
        assert second.line_with("replication: connected to peer 127.0.0.1:%d" % first.port) is not None
        assert stat(second, "REPL_TLS_FAILURES") == 0, second.log()
        # Each drop doubles the backoff (the links never lasted
        # stable_link_ms_min): 100 ms, 200 ms, ... 2 s, so about five
        # connections in the first 3 s, where a backoff starting over after
        # each (instant) resync made about 24.
        time.sleep(max(0.0, FLOOD_WINDOW_S - (time.monotonic() - started)))
        assert flood.connections <= FLOOD_WINDOW_CONNECTIONS_MAX, (flood.connections, first.log())


test_peer_flooding_tls_records_without_data_is_dropped = functools.partial(check_ticket_flood_drops_the_link,
                                                                            secret=False)
test_peer_flooding_tls_records_during_authentication_is_dropped = functools.partial(
    check_ticket_flood_drops_the_link, secret=True)


def test_peer_with_tls_needs_a_ca(exe):
    with Certificates(nodes=1) as certs:
        done = run_to_exit(exe, "-p", "0", "--text-port", "0", "--tls-cert", certs.path("node1.pem"), "--tls-key",
                           certs.path("node1.key"), "--peer", "127.0.0.1:1")
        assert done.returncode == 2, (done.returncode, done.stderr)
        assert "TLS with --peer needs --tls-ca" in done.stderr, done.stderr
        assert "listening" not in done.stderr, done.stderr


if __name__ == "__main__":
    run_tests(globals())
