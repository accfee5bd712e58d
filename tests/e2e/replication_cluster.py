"""Helpers for the replication end-to-end tests (docs/replication.md): a mesh
of real ringcached processes, each serving a listening socket this test
process binds and keeps (so a node killed with -9 comes back on the same
port, and a node not started yet refuses connections until its socket
listens), or, as root, a mesh across network namespaces joined by veth
pairs (Namespaces, Cluster.in_namespaces); a pipelined binary-protocol
client, and the initiator's side of the replication handshake (v1, or v2
authenticated with Python's own hmac module), to send a node frames the
way a peer would.

A Cluster gives every node the same --peer-secret-file unless told not to.

Every wait is bounded; every process started is stopped by Cluster.close().
"""

import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from harness import OK, ENOTFOUND, EINVAL, SkipTest, check_no_sanitizer_report, field

START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 20
IO_TIMEOUT_S = 30
RECV_BYTES_MIN = 64 * 1024
RECV_BYTES_MAX = 1 << 20
LISTENING_RE = re.compile(r"listening binary=(\S+):(\d+) ")

OP_PUT, OP_DEL, OP_GET, OP_STATS = 11, 12, 13, 21
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


def open_replication_stream(host, port, node_id, secret=None, timeout=IO_TIMEOUT_S, source=None):
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


def write_secret_file(directory, data=None):
    """A peer secret file as the daemon wants it: 32 random bytes, mode 600."""
    path = os.path.join(directory, "peer-secret")
    with open(path, "wb") as f:
        f.write(os.urandom(32) if data is None else data)
    os.chmod(path, 0o600)
    return path


def bind_socket(host="127.0.0.1", listen=True):
    """A TCP socket bound to a free port; listening unless told otherwise
    (then connections to the port are refused until listen())."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    if listen:
        s.listen(128)
    s.set_inheritable(True)
    return s


class Client:
    """Binary protocol over TCP with pipelined batches."""

    def __init__(self, host, port, timeout=IO_TIMEOUT_S):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _need(self, n):
        while len(self.buffer) < n:
            # Python allocates the whole size asked for at every recv (and
            # meson's MALLOC_PERTURB_ fills it): ask for what is missing.
            chunk = self.sock.recv(min(max(n - len(self.buffer), RECV_BYTES_MIN), RECV_BYTES_MAX))
            if not chunk:
                raise AssertionError("connection closed with %d bytes expected" % n)
            self.buffer += chunk

    def _take(self, n):
        self._need(n)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def status(self):
        return self._take(1)[0]

    def value_reply(self):
        s = self.status()
        if s == ENOTFOUND:
            return None
        assert s == OK, "GET answered %d" % s
        (length,) = struct.unpack(">I", self._take(4))
        return self._take(length)

    def put_many(self, pairs, batch=500):
        """PUTs every (key, value); returns the statuses."""
        out = []
        for i in range(0, len(pairs), batch):
            chunk = pairs[i:i + batch]
            self.sock.sendall(b"".join(bytes([OP_PUT]) + field(k) + field(v) for k, v in chunk))
            out.extend(self.status() for _ in chunk)
        return out

    def get_many(self, keys, batch=500):
        out = []
        for i in range(0, len(keys), batch):
            chunk = keys[i:i + batch]
            self.sock.sendall(b"".join(bytes([OP_GET]) + field(k) for k in chunk))
            out.extend(self.value_reply() for _ in chunk)
        return out

    def put(self, key, value):
        return self.put_many([(key, value)])[0]

    def get(self, key):
        return self.get_many([key])[0]

    def delete(self, key):
        self.sock.sendall(bytes([OP_DEL]) + field(key))
        return self.status()

    def stats(self):
        self.sock.sendall(bytes([OP_STATS]))
        assert self.status() == OK
        (length,) = struct.unpack(">I", self._take(4))
        return dict(pair.split("=", 1) for pair in self._take(length).decode().split(" "))


class Node:
    """One ringcached of the mesh, serving `sock` through --listen-fd.
    prefix: a command to run it under (ip netns exec NS)."""

    def __init__(self, exe, name, sock, client_host="127.0.0.1", port=None, prefix=(), args=(), text_sock=None,
                 secret_file=None):
        # sock: the listening socket to pass, or None to let the daemon bind
        # (-l 0.0.0.0 -p port), as in a network namespace this process is not in.
        self.exe = exe
        self.name = name
        self.sock = sock
        self.client_host = client_host
        self.port = port if sock is None else sock.getsockname()[1]
        self.text_sock = text_sock
        self.text_port = text_sock.getsockname()[1] if text_sock is not None else None
        self.prefix = list(prefix)
        self.args = list(args)
        self.secret_file = secret_file  # --peer-secret-file, or None: unauthenticated
        self.peers = []
        self.proc = None
        self.lines = []
        self.lock = threading.Lock()
        self.reader = None
        self.exit_codes = []
        self.paused = False

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        self.paused = False
        if self.sock is not None:
            listen = ["--listen-fd", str(self.sock.fileno())]
            fds = (self.sock.fileno(),)
        else:
            listen = ["-l", "0.0.0.0", "-p", str(self.port)]
            fds = ()
        if self.text_sock is not None:
            listen += ["--text-listen-fd", str(self.text_sock.fileno())]
            fds += (self.text_sock.fileno(),)
        cmd = self.prefix + [self.exe] + listen + ["--text-port", "0", "--node-id", self.name] + self.args
        if self.secret_file is not None:
            cmd += ["--peer-secret-file", self.secret_file]
        for peer in self.peers:
            cmd += ["--peer", peer]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, pass_fds=fds)
        listening = threading.Event()
        self.reader = threading.Thread(target=self._read, args=(self.proc, listening), daemon=True)
        self.reader.start()
        if not wait:
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        while not listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("node %s did not start:\n%s" % (self.name, self.log()))

    def _read(self, proc, listening):
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                self.lines.append(line)
            if LISTENING_RE.search(line):
                listening.set()

    def log(self):
        with self.lock:
            return "\n".join(self.lines)

    def log_count(self, text):
        with self.lock:
            return sum(text in line for line in self.lines)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self):
        return Client(self.client_host, self.port)

    def stats(self):
        with self.client() as c:
            return c.stats()

    def kill(self):
        """SIGKILL: no shutdown, no goodbye to the peers."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)
            self.reader.join(5)
        self.paused = False

    def pause(self):
        """SIGSTOP: the process is frozen, its sockets stay open (the kernel
        still accepts connections and buffers what peers and clients send)."""
        assert self.alive() and not self.paused
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.paused and self.alive():
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self):
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.resume()
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("node %s did not stop:\n%s" % (self.name, self.log()))
        self.reader.join(5)
        self.exit_codes.append(code)
        return code


class Cluster:
    """A full mesh: every node lists every other. Use as a context manager;
    on a clean exit every node must stop with status 0 and no sanitizer
    report."""

    def __init__(self, exe, count, args=(), start=True, not_listening=(), peer_host="127.0.0.1", text=False,
                 secret=True):
        self.nodes = []
        self.directory = tempfile.mkdtemp(prefix="ringcache-cluster-")
        self.secret_file = write_secret_file(self.directory) if secret else None
        for i in range(count):
            sock = bind_socket(listen=i not in not_listening)
            text_sock = bind_socket() if text else None
            self.nodes.append(Node(exe, str(i + 1), sock, args=args, text_sock=text_sock,
                                   secret_file=self.secret_file))
        for node in self.nodes:
            node.peers = ["%s:%d" % (peer_host, other.port) for other in self.nodes if other is not node]
        if start:
            for i, node in enumerate(self.nodes):
                if i not in not_listening:
                    node.start()

    @classmethod
    def of(cls, nodes):
        """A cluster of nodes built by the caller (peers set, not started)."""
        cluster = cls.__new__(cls)
        cluster.nodes = nodes
        cluster.directory = None
        cluster.secret_file = None
        return cluster

    @classmethod
    def in_namespaces(cls, exe, ns, args=(), port=8889, secret=True):
        """Node i in namespace i of `ns` (Namespaces), listening on `port`
        there, its peers named by their addresses on the veth links; the
        test reaches it from the root namespace. Not started."""
        directory = tempfile.mkdtemp(prefix="ringcache-cluster-")
        secret_file = write_secret_file(directory) if secret else None
        nodes = []
        for i in range(1, ns.count + 1):
            node = Node(exe, str(i), None, client_host=ns.host_side_address(i), port=port,
                        prefix=["ip", "netns", "exec", ns.names[i - 1]], args=args, secret_file=secret_file)
            node.peers = ["%s:%d" % (ns.peer_address(i, j), port) for j in range(1, ns.count + 1) if j != i]
            nodes.append(node)
        cluster = cls.of(nodes)
        cluster.directory = directory
        cluster.secret_file = secret_file
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
                assert code == 0, "node %s exited with %s:\n%s" % (node.name, code, node.log())
                check_no_sanitizer_report(node.log())
        return False

    def close(self):
        codes = []
        for node in self.nodes:
            try:
                codes.append(node.stop())
            finally:
                node.kill()
                if node.sock is not None:
                    node.sock.close()
                if node.text_sock is not None:
                    node.text_sock.close()
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
        while not self.stopping:
            try:
                down, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
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
                    mismatch = (node.name, len(bad), bad[:3])
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
            node.name, nodes[0].name, len(diff), diff[:3])
    return answers[0]
