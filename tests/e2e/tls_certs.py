"""Certificates for the TLS tests, made at test time with the openssl
command line (Debian's openssl package) in a temporary directory, never
committed: a CA, a server certificate for 127.0.0.1 / localhost, client
certificates signed by that CA (one of them expired), a second CA with a
client certificate of its own, and a second server certificate (for the
reload test); on request, node certificates for a replication mesh
(node1.pem, ..., each good as server and as client, as a node presents it
both ways), and one from the other CA (other-node.pem). EC P-256 keys: fast
to make and to handshake with. Also the client side the TLS tests share: a
context trusting the test CA and a clients.py connection wrapped in it."""

import os
import shutil
import ssl
import subprocess
import tempfile

OPENSSL_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10
DAYS = "2"


def openssl(*args, cwd):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S)
    if done.returncode != 0:
        raise AssertionError("openssl %s failed:\n%s" % (" ".join(args), done.stderr))


def _key_and_request(name, subject, directory):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", subject, cwd=directory)
    os.chmod(os.path.join(directory, name + ".key"), 0o600)


def _ca(name, directory):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            name + ".key", "-out", name + ".pem", "-days", DAYS, "-subj", "/CN=ringcache test " + name,
            cwd=directory)


def _sign(name, ca, directory, days=DAYS, extensions=None):
    args = ["x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
            "-out", name + ".pem", "-days", days]
    if extensions is not None:
        path = os.path.join(directory, name + ".ext")
        with open(path, "w") as f:
            f.write(extensions + "\n")
        args += ["-extfile", path]
    openssl(*args, cwd=directory)


# A mesh node's certificate: its address, and both uses (docs/replication.md, "TLS").
NODE_EXTENSIONS = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth"


class Certificates:
    """The files, by name: path("ca.pem"), path("server.key"), ...
    nodes: how many node certificates (node1 ... nodeN, and other-node).
    Use as a context manager; the directory goes at the end."""

    def __init__(self, nodes=0):
        if shutil.which("openssl") is None:
            raise AssertionError("the openssl command is missing (Debian package openssl)")
        self.directory = tempfile.mkdtemp(prefix="ringcache-tls-")
        d = self.directory
        _ca("ca", d)
        _ca("other-ca", d)
        server_ext = "subjectAltName=IP:127.0.0.1,DNS:localhost"
        for name in ("server", "server2"):
            _key_and_request(name, "/CN=" + name, d)
            _sign(name, "ca", d, extensions=server_ext)
        for name in ("client", "expired-client", "other-client"):
            _key_and_request(name, "/CN=" + name, d)
        _sign("client", "ca", d)
        # -days -1: notAfter before notBefore, so expired from the start.
        _sign("expired-client", "ca", d, days="-1")
        _sign("other-client", "other-ca", d)
        if nodes > 0:
            for i in range(1, nodes + 1):
                _key_and_request("node%d" % i, "/CN=node%d" % i, d)
                _sign("node%d" % i, "ca", d, extensions=NODE_EXTENSIONS)
            _key_and_request("other-node", "/CN=other-node", d)
            _sign("other-node", "other-ca", d, extensions=NODE_EXTENSIONS)

    def path(self, name):
        return os.path.join(self.directory, name)

    def close(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def client_context(certs, cert=None, version=None, ca="ca.pem"):
    """A client context trusting the test CA (or the CA file `ca`); with
    cert ("client"), that certificate and key; version pins the TLS version
    (ssl.TLSVersion)."""
    ctx = ssl.create_default_context(cafile=certs.path(ca))
    if cert is not None:
        ctx.load_cert_chain(certs.path(cert + ".pem"), certs.path(cert + ".key"))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def tls_args(certs, cert, ca="ca.pem"):
    """The daemon's options to present `cert` (node1, server, ...) and trust `ca`."""
    return ["--tls-cert", certs.path(cert + ".pem"), "--tls-key", certs.path(cert + ".key"), "--tls-ca",
            certs.path(ca)]


def tls_connect(cls, port, ctx, timeout=CONNECT_TIMEOUT_S):
    """A clients.py connection (Client or TextClient) whose socket speaks TLS."""
    c = cls(port, timeout=timeout)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
    return c
