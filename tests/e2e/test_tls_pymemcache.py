"""pymemcache (Debian's python3-pymemcache) with a TLS context on the text
port of a daemon with --tls-cert: without and with client certificates
(--tls-verify-clients). Run by Debian's /usr/bin/python3, where the package
installs; certificates are made at test time (tls_certs.py)."""

import ssl

from daemon import Daemon
from harness import SkipTest, run_tests
from tls_certs import Certificates

try:
    from pymemcache.client.base import Client as MemcacheClient
except ImportError:
    MemcacheClient = None

TIMEOUT_S = 10


def with_tls_daemon(exe, body, verify_clients=False):
    if MemcacheClient is None:
        raise SkipTest("pymemcache is not installed (Debian package python3-pymemcache)")
    with Certificates() as certs:
        args = ["-t", "2", "--tls-cert", certs.path("server.pem"), "--tls-key", certs.path("server.key")]
        if verify_clients:
            args += ["--tls-ca", certs.path("ca.pem"), "--tls-verify-clients"]
        with Daemon(exe, *args, text="bind") as d:
            body(d, certs)


def client(d, ctx):
    return MemcacheClient(("127.0.0.1", d.text_port), connect_timeout=TIMEOUT_S, timeout=TIMEOUT_S, tls_context=ctx)


def exercise(c):
    assert c.set("k", b"v", noreply=False) is True
    assert c.get("k") == b"v"
    big = bytes(range(256)) * 4096  # 1 MiB: several rounds of encryption
    assert c.set("big", big, noreply=False) is True
    assert c.get("big") == big
    assert c.get_many(["k", "absent"]) == {"k": b"v"}
    assert c.incr("n", 1) is None
    assert c.add("n", b"5", noreply=False) is True
    assert c.incr("n", 2) == 7
    assert c.delete("k", noreply=False) is True
    stats = c.stats()
    assert int(stats[b"ssl_handshakes_tls13"]) >= 1, stats
    assert int(stats[b"ssl_handshake_errors"]) == 0, stats


def test_pymemcache_over_tls(exe):
    def body(d, certs):
        c = client(d, ssl.create_default_context(cafile=certs.path("ca.pem")))
        try:
            exercise(c)
        finally:
            c.close()
    with_tls_daemon(exe, body)


def test_pymemcache_with_a_client_certificate(exe):
    def body(d, certs):
        ctx = ssl.create_default_context(cafile=certs.path("ca.pem"))
        ctx.load_cert_chain(certs.path("client.pem"), certs.path("client.key"))
        c = client(d, ctx)
        try:
            exercise(c)
        finally:
            c.close()
        refused = client(d, ssl.create_default_context(cafile=certs.path("ca.pem")))
        try:
            refused.get("k")
        except (ssl.SSLError, ConnectionError, OSError):
            pass
        else:
            raise AssertionError("a client without a certificate was served")
        finally:
            refused.close()
    with_tls_daemon(exe, body, verify_clients=True)


if __name__ == "__main__":
    run_tests(globals())
