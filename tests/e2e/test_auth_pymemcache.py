"""pymemcache (Debian's python3-pymemcache, a client with no authentication
of its own) on the text port of a daemon with --auth-file, following
memcached's authfile convention: the first command is a `set` whose value is
"user password", sent with noreply=False since the daemon answers it even
with noreply, as memcached does. Run by Debian's /usr/bin/python3, where
the package installs."""

import shutil
import tempfile

from auth_files import PASSWORD, USER, write_auth_file
from daemon import Daemon
from harness import SkipTest, run_tests

try:
    from pymemcache.client.base import Client as MemcacheClient
    from pymemcache.exceptions import MemcacheClientError
except ImportError:
    MemcacheClient = None

TIMEOUT_S = 10


def with_auth_daemon(exe, body):
    if MemcacheClient is None:
        raise SkipTest("pymemcache is not installed (Debian package python3-pymemcache)")
    directory = tempfile.mkdtemp(prefix="ringcache-auth-")
    try:
        path = write_auth_file(directory)
        with Daemon(exe, "-t", "1", "--auth-file", path, text="bind") as d:
            client = MemcacheClient(("127.0.0.1", d.text_port), connect_timeout=TIMEOUT_S, timeout=TIMEOUT_S)
            try:
                body(client)
            finally:
                client.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def client_error(call):
    """The message of the MemcacheClientError that `call` raises."""
    try:
        call()
    except MemcacheClientError as e:
        return str(e)
    raise AssertionError("no CLIENT_ERROR")


def test_pymemcache_authenticates_with_a_set(exe):
    def body(client):
        assert "unauthenticated" in client_error(lambda: client.get("k"))
        assert client.set("auth", USER + b" " + PASSWORD, noreply=False) is True
        assert client.set("k", b"v", noreply=False) is True
        assert client.get("k") == b"v"
        assert client.get_many(["k", "absent"]) == {"k": b"v"}
        assert client.incr("n", 1) is None
        assert client.delete("k", noreply=False) is True
        assert int(client.stats()[b"auth_cmds"]) == 1
    with_auth_daemon(exe, body)


def test_pymemcache_with_a_bad_password(exe):
    def body(client):
        message = client_error(lambda: client.set("auth", USER + b" wrong", noreply=False))
        assert "authentication failure" in message, message
        # pymemcache closes its socket after an error; the next call reconnects, still refused.
        assert "unauthenticated" in client_error(lambda: client.get("k"))
        assert client.set("auth", USER + b" " + PASSWORD, noreply=False) is True
        stats = client.stats()
        assert (int(stats[b"auth_cmds"]), int(stats[b"auth_errors"])) == (2, 1), stats
    with_auth_daemon(exe, body)


if __name__ == "__main__":
    run_tests(globals())
