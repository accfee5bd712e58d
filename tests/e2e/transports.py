"""Both ports over plain TCP and over TLS, for tests that must hold on
both (test_hostile.py for the binary port, test_text_robustness.py for the
text port): a transport starts the daemon and makes its connections, so one
test body runs once per transport.

  transport.daemon(exe, *args)  a Daemon; with TLS it gets --tls-cert and
                                --tls-key (for both ports), and its client()
                                speaks TLS
  transport.text_client(d)      a TextClient on d.text_port (the daemon
                                started with text="bind"), TLS or not
  transport.raw(d)              a RawConnection: a socket that sends what the
                                test chooses, through .wire(plaintext); with
                                text=True to the text port

A RawConnection over TLS has done a genuine handshake on memory buffers
(ssl.SSLObject), so what the test sends arrives as valid records whose
plaintext is the hostile bytes, and what the daemon answers is read, if at
all, as ciphertext: one thread may send while another drains, which an
ssl.SSLSocket does not allow.

over_transports() turns test functions taking (exe, transport) into one
test per transport for harness.run_tests, named test_x[tcp] and test_x[tls].
"""

import functools
import socket
import ssl

from clients import SOCKET_TIMEOUT_S, TextClient
from daemon import Daemon
from tls_certs import tls_connect

TLS_HANDSHAKE_TIMEOUT_S = 10


class MemoryTls:
    """A TLS client on memory buffers (ssl.SSLObject) over a plain socket,
    so a test can send what a real client would not: records forged,
    truncated or corrupted after a genuine handshake."""

    def __init__(self, port, ctx, timeout=TLS_HANDSHAKE_TIMEOUT_S):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                data = self.sock.recv(65536)
                assert data, "closed during the handshake"
                self.incoming.write(data)
        self.flush()

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def records(self, plaintext):
        """The ciphertext records of plaintext, not sent."""
        self.tls.write(plaintext)
        return self.outgoing.read()

    def read_plaintext(self, n):
        got = b""
        while len(got) < n:
            try:
                got += self.tls.read(n - len(got))
            except ssl.SSLWantReadError:
                data = self.sock.recv(65536)
                assert data, "closed"
                self.incoming.write(data)
        return got

    def close(self):
        self.sock.close()


class RawConnection:
    """.sock, and .wire(plaintext): the bytes to put on the socket for it."""

    def __init__(self, sock, wire):
        self.sock = sock
        self.wire = wire

    def sendall(self, plaintext):
        self.sock.sendall(self.wire(plaintext))

    def close(self):
        self.sock.close()


class Plain:
    name = "tcp"

    def daemon(self, exe, *args, **kwargs):
        return Daemon(exe, *args, **kwargs)

    def text_client(self, d, timeout=SOCKET_TIMEOUT_S):
        return TextClient(d.text_port, timeout=timeout)

    def raw(self, d, timeout=SOCKET_TIMEOUT_S, text=False):
        port = d.text_port if text else d.port
        return RawConnection(socket.create_connection(("127.0.0.1", port), timeout=timeout), bytes)


class Tls:
    """certs: a tls_certs.Certificates; ctx: a client context trusting its CA."""

    name = "tls"

    def __init__(self, certs, ctx):
        self.certs = certs
        self.ctx = ctx

    def daemon(self, exe, *args, **kwargs):
        # client() and stats() then speak TLS (daemon.py's client_tls).
        return Daemon(exe, "--tls-cert", self.certs.path("server.pem"), "--tls-key", self.certs.path("server.key"),
                      *args, client_tls=self.ctx, **kwargs)

    def text_client(self, d, timeout=SOCKET_TIMEOUT_S):
        return tls_connect(TextClient, d.text_port, self.ctx, timeout=timeout)

    def raw(self, d, timeout=SOCKET_TIMEOUT_S, text=False):
        m = MemoryTls(d.text_port if text else d.port, self.ctx, timeout=timeout)
        return RawConnection(m.sock, m.records)


def over_transports(namespace, transports):
    """namespace's test_* functions, one per transport each."""
    tests = {}
    for name, fn in namespace.items():
        if not name.startswith("test_") or not callable(fn):
            continue
        for transport in transports:
            tests["%s[%s]" % (name, transport.name)] = functools.partial(fn, transport=transport)
    return tests
