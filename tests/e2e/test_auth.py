"""Client authentication (--auth-file) against the real daemon: refused
auth files, the binary port's AUTH (31), the text port's memcached
convention (a `set` of "user password") and SASL PLAIN on memcached's
binary protocol (first byte 0x80), wrong passwords, the connection
closed after too many failures, the stream kept in sync around requests
refused before authentication, and the auth_cmds / auth_errors counters."""

import os
import shutil
import tempfile

from auth_files import PASSWORD, USER, write_auth_file
from clients import (EINVAL, ENOTFOUND, MC_AUTH_ERROR, MC_GET, MC_NOOP, MC_NOT_FOUND, MC_QUIT, MC_SASL_AUTH, MC_SASL_LIST_MECHS,
                     MC_SASL_STEP, MC_SET, MC_SUCCESS, MC_UNKNOWN_COMMAND, MC_VERSION, MIB, OK, STATS_FRAME,
                     McBinaryClient, TextClient, field, get_frame, mc_request, mc_store_extras, put_frame)
from daemon import Daemon, run_to_exit
from harness import pattern, run_tests

OP_AUTH = 31
# The daemon's auth_failures_max (server/process/auth.h).
AUTH_FAILURES_MAX = 3
UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated"
AUTH_FAILURE = b"CLIENT_ERROR authentication failure"


def auth_frame(user, password):
    return bytes([OP_AUTH]) + field(user) + field(password)


def authenticate(client, user=USER, password=PASSWORD):
    client.send(auth_frame(user, password))
    return client.read_status()


def text_auth(client, user=USER, password=PASSWORD, key=b"auth"):
    return client.store(b"set", key, user + b" " + password)


class AuthDaemon:
    """A daemon with --auth-file and both ports, and its temporary directory."""

    def __init__(self, exe, *args):
        self.directory = tempfile.mkdtemp(prefix="ringcache-auth-")
        self.path = write_auth_file(self.directory)
        self.daemon = Daemon(exe, "-t", "2", "-m", "64", "--auth-file", self.path, *args, text="bind")

    def __enter__(self):
        return self.daemon.__enter__()

    def __exit__(self, *exc):
        try:
            return self.daemon.__exit__(*exc)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def sasl_plain(user=USER, password=PASSWORD, authzid=b""):
    return mc_request(MC_SASL_AUTH, b"PLAIN", authzid + b"\0" + user + b"\0" + password)


def authenticated_stats(d):
    with d.client() as c:
        assert authenticate(c) == OK
        return c.stats()


def test_bad_auth_files_are_refused_at_start_up(exe):
    directory = tempfile.mkdtemp(prefix="ringcache-auth-")
    try:
        def refused(path, *expected):
            proc = run_to_exit(exe, "-p", "0", "--text-port", "0", "-t", "1", "--auth-file", path)
            assert proc.returncode == 2, (proc.returncode, proc.stderr)
            for text in expected:
                assert text in proc.stderr, proc.stderr
            assert "s3cret" not in proc.stderr
            return proc.stderr

        refused(write_auth_file(directory, mode=0o644), "readable or writable by others", "chmod 600")
        refused(write_auth_file(directory, mode=0o602), "readable or writable by others")
        refused(write_auth_file(directory, b""), "holds 0 bytes")
        refused(write_auth_file(directory, b"alice:s3cret\nbob\n"), "line 2: no colon")
        refused(write_auth_file(directory, b":s3cret\n"), "line 1: empty user")
        refused(write_auth_file(directory, b"a:s3cret\n" * (256 * 1024 // 9 + 1)), "is larger than 262144 bytes")
        refused(write_auth_file(directory, b"".join(b"u%d:s3cret\n" % i for i in range(4097))),
                "more than 4096 lines")
        refused(directory, "not a regular file")
        refused(os.path.join(directory, "missing"), "No such file")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_binary_port_refuses_requests_until_auth(exe):
    with AuthDaemon(exe) as d:
        assert "auth: clients must authenticate on every client port (2 users" in d.log()
        with d.client() as c:
            c.send(get_frame(b"k") + put_frame(b"k", b"v") + STATS_FRAME + b"\x07")
            assert [c.read_status() for _ in range(4)] == [EINVAL] * 4
            assert authenticate(c, password=b"wrong") == EINVAL
            c.send(get_frame(b"k"))
            assert c.read_status() == EINVAL
        with d.client() as c:
            assert authenticate(c) == OK
            assert c.get(b"k") is None  # the PUT before AUTH was not stored
            assert c.put(b"k", b"v") == OK
            assert c.get(b"k") == b"v"
            # Another entry of the file, a password with colons.
            assert authenticate(c, b"bob", b"other:pw") == OK
        stats = authenticated_stats(d)
        order = stats["_order"]
        assert order.index("AUTH_CMDS") > order.index("UPTIME")
        assert (stats["AUTH_CMDS"], stats["AUTH_ERRORS"]) == ("4", "1"), stats
        log = d.wait_for_log("binary port failed to authenticate")
        assert "auth: client 127.0.0.1:" in log, log
        assert "wrong" not in log and "s3cret" not in log


def test_binary_port_closes_after_too_many_failures(exe):
    with AuthDaemon(exe) as d:
        with d.client() as c:
            for attempt in range(AUTH_FAILURES_MAX):
                assert authenticate(c, password=b"guess%d" % attempt) == EINVAL
            assert c.expect_eof() == b""
        # A field longer than the AUTH limit is a failure too, its bytes read in full.
        with d.client() as c:
            c.send(auth_frame(b"u" * 5000, PASSWORD) + auth_frame(USER, PASSWORD) + get_frame(b"none"))
            assert [c.read_status() for _ in range(3)] == [EINVAL, OK, ENOTFOUND]
        stats = authenticated_stats(d)
        assert (stats["AUTH_CMDS"], stats["AUTH_ERRORS"]) == ("6", "4"), stats
        d.wait_for_log("connection closed")


def test_unauthenticated_big_put_is_drained_and_the_stream_stays_in_sync(exe):
    with AuthDaemon(exe) as d, d.client() as c:
        big = pattern(MIB, 3)
        # One pipelined burst: a 1 MiB PUT refused unread into the store, then AUTH.
        c.send(put_frame(b"big", big) + auth_frame(USER, PASSWORD) + get_frame(b"big") +
               put_frame(b"big", big) + get_frame(b"big"))
        assert c.read_status() == EINVAL
        assert c.read_status() == OK
        assert c.read_value_reply() is None
        assert c.read_status() == OK
        assert c.read_value_reply() == big


def test_text_port_follows_memcacheds_authfile_convention(exe):
    with AuthDaemon(exe) as d:
        with TextClient(d.text_port) as c:
            assert c.call(b"get k") == UNAUTHENTICATED
            assert c.call(b"mn") == UNAUTHENTICATED
            assert c.call(b"version") == UNAUTHENTICATED
            assert c.call(b"mg k v") == UNAUTHENTICATED
            # Other storage commands' data blocks are read and dropped.
            assert c.store(b"add", b"k", USER + b" " + PASSWORD) == UNAUTHENTICATED
            c.send(b"ms k 2 T0\r\nhi\r\n")
            assert c.read_line() == UNAUTHENTICATED
            big = pattern(200 * 1024, 4)
            assert c.store(b"set", b"k", big) == AUTH_FAILURE
            assert c.store(b"set", b"k", b"nospace") == b"CLIENT_ERROR bad authentication token format"
            assert c.store(b"set", b"k", USER + b" wrong") == AUTH_FAILURE
            assert c.expect_eof() == b""
        with TextClient(d.text_port) as c:
            assert text_auth(c, key=b"anything") == b"STORED"
            assert c.get(b"anything") == {}
            assert c.store(b"set", b"k", b"v") == b"STORED"
            assert c.get(b"k") == {b"k": (0, b"v", None)}
            # After authentication, such a set is a set.
            assert text_auth(c, key=b"k2") == b"STORED"
            assert c.value(b"k2") == USER + b" " + PASSWORD
            stats = c.stats()
            assert (stats["auth_cmds"], stats["auth_errors"]) == ("4", "3"), stats
        log = d.wait_for_log("connection closed")
        assert "text port failed to authenticate" in log, log
        # The binary port shares the store, once authenticated.
        with d.client() as c:
            assert authenticate(c) == OK
            assert c.get(b"k") == b"v"


def test_text_port_keeps_the_stream_in_sync_before_auth(exe):
    with AuthDaemon(exe) as d, TextClient(d.text_port) as c:
        big = pattern(MIB, 5)
        c.send(b"append k 0 0 %d\r\n%s\r\nget k\r\nset a 0 0 %d\r\n%s %s\r\nset k 0 0 3\r\nabc\r\nget k\r\n"
               % (len(big), big, len(USER) + 1 + len(PASSWORD), USER, PASSWORD))
        assert c.read_line() == UNAUTHENTICATED
        assert c.read_line() == UNAUTHENTICATED
        assert c.read_line() == b"STORED"
        assert c.read_line() == b"STORED"
        assert c.read_values() == {b"k": (0, b"abc", None)}


def test_memcached_binary_protocol_authenticates_with_sasl_plain(exe):
    with AuthDaemon(exe) as d:
        with McBinaryClient(d.text_port) as c:
            mechs = c.call(MC_SASL_LIST_MECHS)
            assert (mechs["status"], mechs["value"]) == (MC_SUCCESS, b"PLAIN"), mechs
            assert c.call(MC_VERSION)["status"] == MC_SUCCESS
            refused = c.call(MC_GET, b"big", opaque=4)
            assert (refused["status"], refused["value"], refused["opaque"]) == (MC_AUTH_ERROR, b"Auth failure.", 4)
            # One pipelined burst: a 1 MiB set drained unstored, then SASL_AUTH, then served.
            big = pattern(MIB, 6)
            c.send(mc_request(MC_SET, b"big", big, mc_store_extras()) + sasl_plain() +
                   mc_request(MC_GET, b"big") + mc_request(MC_SET, b"big", big, mc_store_extras()) +
                   mc_request(MC_GET, b"big"))
            assert c.response()["status"] == MC_AUTH_ERROR
            accepted = c.response()
            assert (accepted["status"], accepted["value"]) == (MC_SUCCESS, b"Authenticated"), accepted
            assert c.response()["status"] == MC_NOT_FOUND
            assert c.response()["status"] == MC_SUCCESS
            assert c.response()["value"] == big
        with McBinaryClient(d.text_port) as c:
            assert c.call(MC_SASL_STEP, b"PLAIN", b"\0alice\0" + PASSWORD)["status"] == MC_AUTH_ERROR
            assert c.call(MC_SASL_AUTH, b"CRAM-MD5", b"alice 0123")["status"] == MC_AUTH_ERROR
            c.send(sasl_plain(password=b"wrong"))
            assert c.response()["status"] == MC_AUTH_ERROR
            assert c.expect_eof() == b""
        with McBinaryClient(d.text_port) as c:
            assert c.call(MC_NOOP)["status"] == MC_AUTH_ERROR
            c.send(mc_request(MC_QUIT))
            assert c.response()["status"] == MC_AUTH_ERROR
            assert c.expect_eof() == b""
        with TextClient(d.text_port) as c:
            assert text_auth(c) == b"STORED"
            stats = c.stats()
            assert (stats["auth_cmds"], stats["auth_errors"]) == ("5", "3"), stats
        log = d.wait_for_log("text port failed to authenticate (failure 3 of 3, connection closed)")
        assert "wrong" not in log and "s3cret" not in log


def test_without_auth_file_nothing_changes(exe):
    with Daemon(exe, "-t", "1", text="bind") as d:
        with d.client() as c:
            frame = auth_frame(USER, PASSWORD)
            # 31 costs one byte, and so does every byte of its fields: none is an opcode.
            assert not set(frame) & {11, 12, 13, 21}
            c.send(frame)
            assert c.read_exact(len(frame)) == bytes([EINVAL]) * len(frame)
        with d.client() as c:
            assert c.put(b"k", b"v") == OK
            stats = c.stats()
            assert (stats["AUTH_CMDS"], stats["AUTH_ERRORS"]) == ("0", "0")
        with TextClient(d.text_port) as c:
            assert text_auth(c) == b"STORED"
            assert c.value(b"auth") == USER + b" " + PASSWORD
        with McBinaryClient(d.text_port) as c:
            assert c.call(MC_SASL_LIST_MECHS)["status"] == MC_UNKNOWN_COMMAND
            assert c.call(MC_SASL_AUTH, b"PLAIN", b"\0alice\0" + PASSWORD)["status"] == MC_UNKNOWN_COMMAND
            assert c.call(MC_GET, b"auth")["value"] == USER + b" " + PASSWORD


if __name__ == "__main__":
    run_tests(globals())
