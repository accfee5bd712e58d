"""Helpers for the replication end-to-end tests (docs/replication.md): a mesh
of real ringcached processes (daemon.Daemon), each serving a listening
socket this test process binds and keeps (so a node killed with -9 comes
back on the same port, and a node not started yet refuses connections until
its socket listens), or, as root, a mesh across network namespaces joined by
veth pairs (Namespaces, Cluster.in_namespaces); and the initiator's side of
the replication handshake (v1, or v2 authenticated with Python's own hmac
module), to send a node frames the way a peer would.

A Cluster gives every node the same --peer-secret-file unless told not to.

Every wait is bounded; every process started is stopped by Cluster.close().
"""

import hashlib
import hmac
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

from clients import SOCKET_TIMEOUT_S, field
from daemon import Daemon, accepted, bind_socket, write_secret_file
from harness import SkipTest

REPL_HELLO, REPL_PUT, REPL_DEL = 200, 201, 202

# Version layout (server/replication/version_clock.h): 42 bits of
# milliseconds since 2020-01-01, 10 logical bits, a 12-bit node tag.
VERSION_EPOCH_MS = 1577836800000


def make_version(unix_ms, tag, logical=0):
    return ((unix_ms - VERSION_EPOCH_MS) << 22) | (logical << 12) | tag


def repl_put_frame(key, value, version, flags=0, expires_at=0):
    return (bytes([REPL_PUT]) + struct.pack(">QII", version, flags, expires_at) + field(key) +
            field(value))


def repl_del_frame(key, version):
    return bytes([REPL_DEL]) + struct.pack(">Q", version) + field(key)


def repl_hello_frame(node_id):
    return bytes([REPL_HELLO]) + field(b"RINGCACHE-REPL/1 " + node_id)


# The authenticated handshake (server/replication/handshake.h).
AUTH_CHALLENGE, AUTH_RESPONSE, AUTH_OK, AUTH_REFUSED = 208, 209, 101, 111


def auth_mac(secret, role, initiator_id, acceptor_id, initiator_nonce, acceptor_nonce):
    message = (b"RINGCACHE-REPL/2 " + role + bytes([len(initiator_id)]) + initiator_id +
               bytes([len(acceptor_id)]) + acceptor_id + initiator_nonce + acceptor_nonce)
    return hmac.new(secret, message, hashlib.sha256).digest()


def repl_hello_v2_frame(node_id, nonce):
    return bytes([REPL_HELLO]) + field(b"RINGCACHE-REPL/2 " + node_id + b" " + nonce.hex().encode())


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def read_challenge(sock):
    """(acceptor id, nonce, mac) of a CHALLENGE, or raises with what came instead."""
    head = read_exact(sock, 1)
    if head[0] != AUTH_CHALLENGE:
        raise ConnectionRefusedError("no challenge: byte %d" % head[0])
    (length,) = struct.unpack(">I", read_exact(sock, 4))
    acceptor_id = read_exact(sock, length)
    return acceptor_id, read_exact(sock, 32), read_exact(sock, 32)


def open_replication_stream(host, port, node_id, secret=None, timeout=SOCKET_TIMEOUT_S, source=None):
    """A socket on which `node_id` may send frames: the v1 hello without a
    secret; with one, the v2 handshake (our proof checked against theirs).
    source: the local address to connect from (None: any). Raises
    ConnectionRefusedError when the node refuses."""
    sock = socket.create_connection((host, port), timeout=timeout,
                                    source_address=None if source is None else (source, 0))
    if secret is None:
        sock.sendall(repl_hello_frame(node_id))
        return sock
    nonce = os.urandom(32)
    sock.sendall(repl_hello_v2_frame(node_id, nonce))
    acceptor_id, their_nonce, their_mac = read_challenge(sock)
    expected = auth_mac(secret, b"acceptor", node_id, acceptor_id, nonce, their_nonce)
    assert hmac.compare_digest(expected, their_mac), "the node did not prove the secret"
    sock.sendall(bytes([AUTH_RESPONSE]) + auth_mac(secret, b"initiator", node_id, acceptor_id, nonce,
                                                   their_nonce))
    answer = read_exact(sock, 1)
    if answer[0] != AUTH_OK:
        sock.close()
        raise ConnectionRefusedError("proof refused: byte %d" % answer[0])
    return sock


class Cluster:
    """A full mesh: every node lists every other. Node i (from 1) is a
    daemon.Daemon with --node-id i, not started when start is False. Use as
    a context manager; on a clean exit every node must stop with status 0
    and no sanitizer report."""

    def __init__(self, exe, count, args=(), start=True, not_listening=(), peer_host="127.0.0.1", text=False,
                 secret=True):
        self.directory = tempfile.mkdtemp(prefix="ringcache-cluster-")
        self.secret_file = write_secret_file(self.directory) if secret else None
        self.nodes = [Daemon(exe, *args, listen=bind_socket(listen=i not in not_listening),
                             text=bind_socket() if text else "off", node_id=str(i + 1), label="node %d" % (i + 1),
                             secret_file=self.secret_file, start=False)
                      for i in range(count)]
        for node in self.nodes:
            node.peers = ["%s:%d" % (peer_host, other.port) for other in self.nodes if other is not node]
        if start:
            for i, node in enumerate(self.nodes):
                if i not in not_listening:
                    node.start()

    @classmethod
    def in_namespaces(cls, exe, ns, args=(), port=8889, secret=True):
        """Node i in namespace i of `ns` (Namespaces), listening on `port`
        there (bound by the daemon: this process is not in that namespace),
        its peers named by their addresses on the veth links; the test
        reaches it from the root namespace. Not started."""
        cluster = cls(exe, 0, secret=secret)
        for i in range(1, ns.count + 1):
            peers = ["%s:%d" % (ns.peer_address(i, j), port) for j in range(1, ns.count + 1) if j != i]
            cluster.nodes.append(Daemon(exe, *args, listen=("0.0.0.0", port), client_host=ns.host_side_address(i),
                                        prefix=["ip", "netns", "exec", ns.names[i - 1]], node_id=str(i),
                                        label="node %d" % i, peers=peers, secret_file=cluster.secret_file,
                                        start=False))
        return cluster

    @property
    def secret(self):
        if self.secret_file is None:
            return None
        with open(self.secret_file, "rb") as f:
            return f.read()

    def open_stream(self, node, node_id, source=None):
        """A replication stream into `node`, as peer `node_id` (authenticated
        with the cluster's secret when it has one), from address `source`."""
        return open_replication_stream(node.client_host, node.port, node_id, self.secret, source=source)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        codes = self.close()
        if exc_type is None:
            for node, code in zip(self.nodes, codes):
                node.check_clean_exit(code)
        return False

    def close(self):
        codes = []
        for node in self.nodes:
            try:
                codes.append(node.close())
            finally:
                for sock in (node.listen, node.text):
                    if isinstance(sock, socket.socket):
                        sock.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        return codes

    def wait_connected(self, timeout=15):
        """Until every node streams to all its peers and every first resync is done."""
        want = len(self.nodes) - 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = True
            for node in self.nodes:
                s = node.stats()
                if (int(s["REPL_CONNECTED"]) != want or int(s["REPL_INCOMING"]) < want or
                        int(s["REPL_RESYNCS_DONE"]) < want):
                    ready = False
                    break
            if ready:
                return
            time.sleep(0.05)
        raise AssertionError("mesh not connected:\n" + "\n\n".join(n.log() for n in self.nodes))


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)


def require_netns():
    """Raises SkipTest unless this process may create network namespaces."""
    if os.geteuid() != 0:
        raise SkipTest("needs root for network namespaces")
    if shutil.which("ip") is None:
        raise SkipTest("needs iproute2 (ip)")
    probe = "rc-probe-%d" % os.getpid()
    if ip("netns", "add", probe, check=False).returncode != 0:
        raise SkipTest("cannot create network namespaces here")
    ip("netns", "del", probe, check=False)


class Namespaces:
    """count network namespaces; namespaces i and j share a veth link, subnet
    10.<link_net>.<ij>.0/24 (addresses .i and .j), and the test reaches
    namespace i over 10.<host_net>.<i>.0/24 from the root namespace. Tests
    that may run at the same time pick distinct letters and nets (the host
    side addresses live in the root namespace). Everything is removed on
    exit, also when setting up fails half-way."""

    def __init__(self, count=3, letter="r", link_net=201, host_net=202):
        assert count <= 9 and len(letter) == 1
        self.count = count
        self.letter = letter
        self.link_net = link_net
        self.host_net = host_net
        self.tag = "%d" % (os.getpid() % 100000)
        self.names = ["rc%s%s-%d" % (letter, self.tag, i) for i in range(1, count + 1)]
        self.root_links = []
        self.created = []

    def __enter__(self):
        try:
            for name in self.names:
                ip("netns", "add", name)
                self.created.append(name)
                ip("-n", name, "link", "set", "lo", "up")
            for i in range(1, self.count + 1):
                for j in range(i + 1, self.count + 1):
                    a, b = self.link_device(i, j), self.link_device(i, j)[:-1] + "b"
                    ip("link", "add", a, "netns", self.names[i - 1], "type", "veth", "peer", "name", b,
                       "netns", self.names[j - 1])
                    ip("-n", self.names[i - 1], "addr", "add", "%s/24" % self.link_address(i, j, i), "dev", a)
                    ip("-n", self.names[j - 1], "addr", "add", "%s/24" % self.link_address(i, j, j), "dev", b)
                    ip("-n", self.names[i - 1], "link", "set", a, "up")
                    ip("-n", self.names[j - 1], "link", "set", b, "up")
                host, inner = "%s%sh%d" % (self.letter, self.tag, i), "%s%sn%d" % (self.letter, self.tag, i)
                ip("link", "add", host, "type", "veth", "peer", "name", inner, "netns", self.names[i - 1])
                self.root_links.append(host)
                ip("addr", "add", "10.%d.%d.254/24" % (self.host_net, i), "dev", host)
                ip("link", "set", host, "up")
                ip("-n", self.names[i - 1], "addr", "add", "%s/24" % self.host_side_address(i), "dev", inner)
                ip("-n", self.names[i - 1], "link", "set", inner, "up")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        # Deleting a namespace deletes the veth ends in it, and their peers.
        for host in self.root_links:
            ip("link", "del", host, check=False)
        for name in self.created:
            ip("netns", "del", name, check=False)
        self.root_links, self.created = [], []
        return False

    def link_address(self, i, j, who):
        return "10.%d.%d%d.%d" % (self.link_net, min(i, j), max(i, j), who)

    def peer_address(self, i, j):
        """Node j's address as node i reaches it (on their link)."""
        return self.link_address(i, j, j)

    def host_side_address(self, i):
        return "10.%d.%d.1" % (self.host_net, i)

    def link_device(self, i, j):
        """The end of link i-j in the lower-numbered namespace."""
        return "%s%s%d%da" % (self.letter, self.tag, min(i, j), max(i, j))

    def set_link(self, i, j, up):
        """Both ends lose carrier: packets in flight are dropped, connects
        fail at once (no route), until it is up again."""
        lo, hi = min(i, j), max(i, j)
        ip("-n", self.names[lo - 1], "link", "set", self.link_device(lo, hi), "up" if up else "down")

    def set_blackhole(self, i, j, on):
        """In namespace i, drop every packet to j (and so the acknowledgements
        of what j sends): a silent partition, the links stay up, j's
        connects to i hang instead of failing."""
        ip("-n", self.names[i - 1], "route", "add" if on else "del", "blackhole",
           "%s/32" % self.peer_address(i, j))


class LinkCutter:
    """A TCP forwarder on a port of its own to 127.0.0.1:target_port, to put
    between nodes whose links a test cuts: cut() closes every connection
    through it and then accepts and closes new ones at once (a node sees its
    peer hang up and retries with backoff) until heal(). close() stops it."""

    ACCEPT_POLL_S = 0.05

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = bind_socket()
        self.listener.settimeout(self.ACCEPT_POLL_S)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets = []
        self.threads = []
        self.is_cut = False
        self.stopping = False
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        for down in accepted(self.listener, lambda: self.stopping):
            with self.lock:
                refuse = self.is_cut or self.stopping
            if refuse:
                down.close()
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                down.close()
                continue
            for s in (down, up):
                s.settimeout(None)
            with self.lock:
                self.sockets += [down, up]
                for src, dst in ((down, up), (up, down)):
                    t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                    self.threads.append(t)
                    t.start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _close_all(self):
        with self.lock:
            sockets, self.sockets = self.sockets, []
            threads, self.threads = self.threads, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)
        for s in sockets:
            s.close()

    def cut(self):
        with self.lock:
            self.is_cut = True
        self._close_all()

    def heal(self):
        with self.lock:
            self.is_cut = False

    def close(self):
        with self.lock:
            self.stopping = True
        self.acceptor.join(5)
        self.listener.close()
        self._close_all()


def wait_until_all(nodes, keys, expected, timeout=15):
    """Polls every node until GET of every key gives expected[i] (None =
    ENOTFOUND). Returns the seconds it took; raises with a diff otherwise."""
    start = time.monotonic()
    deadline = start + timeout
    clients = [n.client() for n in nodes]
    try:
        while True:
            mismatch = None
            for node, c in zip(nodes, clients):
                got = c.get_many(keys)
                if got != expected:
                    bad = [(k, g, e) for k, g, e in zip(keys, got, expected) if g != e]
                    mismatch = (node.node_id, len(bad), bad[:3])
                    break
            if mismatch is None:
                return time.monotonic() - start
            if time.monotonic() > deadline:
                raise AssertionError("node %s still differs on %d keys after %ss, e.g. %r" %
                                     (mismatch[0], mismatch[1], timeout, mismatch[2]))
            time.sleep(0.1)
    finally:
        for c in clients:
            c.close()


def identical_everywhere(nodes, keys):
    """GET of every key on every node; returns the common answers or raises."""
    answers = []
    for node in nodes:
        with node.client() as c:
            answers.append(c.get_many(keys))
    for node, got in zip(nodes[1:], answers[1:]):
        diff = [(k, a, b) for k, a, b in zip(keys, answers[0], got) if a != b]
        assert not diff, "node %s differs from node %s on %d keys, e.g. %r" % (
            node.node_id, nodes[0].node_id, len(diff), diff[:3])
    return answers[0]
