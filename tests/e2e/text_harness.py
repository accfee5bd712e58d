"""Helpers for the text-port end-to-end tests (memcached text protocol, issue 7).

The daemon gets a text listening socket that the test bound itself on
127.0.0.1 port 0 (--text-listen-fd), so no test ever depends on 11211 being
free. TextClient speaks the memcached text protocol with nothing but the
standard library.
"""

import socket
import time

from harness import Daemon, SOCKET_TIMEOUT_S


def start_text_daemon(exe, *args):
    """A Daemon serving the text protocol on an ephemeral port (daemon.text_port)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        daemon = Daemon(exe, "--text-listen-fd", str(fd), *args, pass_fds=(fd,))
    finally:
        listener.close()  # the daemon holds its own copy
    daemon.text_port = port
    assert ("text=127.0.0.1:%d" % port) in daemon.log(), daemon.log()
    return daemon


class TextClient:
    def __init__(self, port, timeout=SOCKET_TIMEOUT_S):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise AssertionError("connection closed; unread: %r" % self.pending[:200])
        self.pending += chunk

    def read_line(self):
        """One reply line, without its \\r\\n (which must be there)."""
        while b"\r\n" not in self.pending:
            self._fill()
        line, _, self.pending = self.pending.partition(b"\r\n")
        return line

    def read_exact(self, n):
        while len(self.pending) < n:
            self._fill()
        data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def call(self, line):
        """Sends one command line, returns the reply line."""
        self.send(line + b"\r\n")
        return self.read_line()

    def store(self, command, key, value, flags=0, exptime=0, cas=None, noreply=False):
        line = b"%s %s %d %d %d" % (command, key, flags, exptime, len(value))
        if cas is not None:
            line += b" %d" % cas
        if noreply:
            line += b" noreply"
        self.send(line + b"\r\n" + value + b"\r\n")
        return None if noreply else self.read_line()

    def read_values(self):
        """VALUE blocks up to END: {key: (flags, value, cas or None)}."""
        found = {}
        while True:
            line = self.read_line()
            if line == b"END":
                return found
            parts = line.split(b" ")
            assert parts[0] == b"VALUE" and len(parts) in (4, 5), line
            value = self.read_exact(int(parts[3]))
            assert self.read_exact(2) == b"\r\n"
            found[parts[1]] = (int(parts[2]), value, int(parts[4]) if len(parts) == 5 else None)

    def get(self, *keys, command=b"get"):
        self.send(command + b" " + b" ".join(keys) + b"\r\n")
        return self.read_values()

    def value(self, key):
        found = self.get(key)
        return found[key][1] if key in found else None

    def stats(self, args=b""):
        self.send(b"stats" + (b" " + args if args else b"") + b"\r\n")
        out = {}
        while True:
            line = self.read_line()
            if line == b"END":
                return out
            parts = line.split(b" ", 2)
            assert parts[0] == b"STAT" and len(parts) == 3, line
            out[parts[1].decode()] = parts[2].decode()

    def expect_eof(self, timeout=10):
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                return self.pending
            self.pending += data
        raise AssertionError("the server did not close the connection")
