"""TLS on both client ports (--tls-cert, --tls-key, --tls-ca,
--tls-verify-clients; docs/command_line.md) with Python's ssl module:
requests on the binary and the text port over TLS 1.3 and 1.2, values
larger than one round of encryption, client certificates refused (none,
another CA's, expired), plaintext clients closed without a reply, garbage
before and inside records (a genuine ClientHello then garbage, records
altered or with garbage between them), truncated records (during and after
the handshake, the client gone or stalled), a handshake larger than the
cap, the key read from a descriptor (--tls-key-fd), and a thousand stalled
handshakes beside a served client until the handshake timeout closes them.
The binary port's hostile-input tests run over TLS too (test_hostile.py).
Certificates are made for each run by the openssl command line in a
temporary directory (tls_certs.py)."""

import os
import re
import shutil
import signal
import socket
import ssl
import struct
import time

from clients import MIB, OK, STATS_FRAME, Client, TextClient, get_frame, put_frame
from daemon import Daemon, run_to_exit
from harness import pattern, raise_fd_limit, run_tests
from tls_certs import Certificates, client_context, tls_connect
from transports import MemoryTls

TIMEOUT_S = 10
STALLED_HANDSHAKES = 1000
# Long enough that the stalled handshakes are all still open while the
# served client works (checked: no handshake timed out by then), short
# enough to keep the test at a few seconds.
STALLED_HANDSHAKE_TIMEOUT_S = 3
# How long a served request may take while the stalled handshakes sit there.
SERVED_REQUEST_S_MAX = 2
# From all stalled handshakes open to the last one closed (the timeout,
# checked once a second); generous for sanitizer builds on a busy machine.
STALLED_CLOSED_S_MAX = 30
# A TLS record's plaintext is at most 2^14 bytes; ciphertext may add 256.
RECORD_PLAINTEXT_BYTES_MAX = 16384


def tls_daemon(exe, certs, *args, text="bind", threads="2"):
    return Daemon(exe, "-t", threads, "--tls-cert", certs.path("server.pem"), "--tls-key", certs.path("server.key"),
                  *args, text=text)


def tls_stats(d, ctx):
    with tls_connect(Client, d.port, ctx) as c:
        return c.stats()


def wait_tls_stats(d, ctx, predicate, what):
    """Polls STATS over TLS until predicate(stats) holds (bounded): a
    refused client may read the alert before the daemon has closed (and
    counted) its connection."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        s = tls_stats(d, ctx)
        if predicate(s):
            return s
        assert time.monotonic() < deadline, "%s: %s" % (what, s)
        time.sleep(0.05)


def expect_closed(sock, what, allow_bytes=False):
    """Reads until the daemon closes sock (bounded); returns what it sent."""
    sock.settimeout(TIMEOUT_S)
    got = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("%s: the daemon did not close the connection" % what)
    if not allow_bytes:
        assert got == b"", "%s: got %r" % (what, got[:64])
    return got


def refused(port, ctx, what):
    """Whether a TLS client with ctx cannot get a request answered. Under
    TLS 1.3 the client finishes its side of the handshake before the server
    has checked its certificate: the refusal arrives as an alert (or a
    closed connection) at the first read."""
    try:
        with tls_connect(Client, port, ctx) as c:
            c.send(put_frame(b"refused", b"x"))
            c.sock.settimeout(TIMEOUT_S)
            data = c.sock.recv(64)
            assert data == b"", "%s: the daemon answered %r" % (what, data)
    except (ssl.SSLError, ConnectionError):
        pass
    return True


def test_both_ports_over_tls(exe):
    with Certificates() as certs, tls_daemon(exe, certs) as d:
        ctx = client_context(certs)
        with tls_connect(Client, d.port, ctx) as c:
            assert c.sock.version() == "TLSv1.3"
            assert c.put(b"k", b"v") == OK
            assert c.get(b"k") == b"v"
            # Larger than one round of encryption (64 KiB) and than the
            # store's inline values: sent from pinned store memory in rounds.
            big = pattern(3 * MIB + 12345, 7)
            assert c.put(b"big", big) == OK
            assert c.get(b"big") == big
            # Pipelined: many replies, the connection pausing and resuming.
            pairs = [(b"p%d" % i, pattern(1000 + i % 100, i)) for i in range(2000)]
            assert c.put_many(pairs) == [OK] * len(pairs)
            assert c.get_many([k for k, _ in pairs]) == [v for _, v in pairs]
            with tls_connect(TextClient, d.text_port, ctx) as t:
                assert t.store(b"set", b"tk", b"text value") == b"STORED"
                assert t.get(b"tk", b"k") == {b"tk": (0, b"text value", None), b"k": (0, b"v", None)}
                t.send(b"stats\r\n")
                lines = [t.read_line()]
                while lines[-1] != b"END":
                    lines.append(t.read_line())
                text_stats = dict(line.split(b" ")[1:3] for line in lines[:-1])
                assert text_stats[b"ssl_handshakes_tls13"] == b"2", text_stats
                assert text_stats[b"ssl_connections_tls13"] == b"2", text_stats
                assert text_stats[b"ssl_handshake_errors"] == b"0", text_stats
                # quit: close_notify, then the connection ends cleanly.
                t.send(b"quit\r\n")
                expect_closed(t.sock, "text quit")
        with tls_connect(Client, d.port, client_context(certs, version=ssl.TLSVersion.TLSv1_2)) as c12:
            assert c12.sock.version() == "TLSv1.2"
            assert c12.get(b"k") == b"v"
            s = c12.stats()
            assert (s["TLS_HANDSHAKES_TLS12"], s["TLS_CONNECTIONS_TLS12"]) == ("1", "1"), s
            assert s["TLS_HANDSHAKES_TLS13"] == "2", s
            assert s["TLS_HANDSHAKE_ERRORS"] == "0", s
        assert "tls: on for every client port; certificate /CN=server" in d.log()


def test_plaintext_client_is_closed_without_a_reply(exe):
    with Certificates() as certs, tls_daemon(exe, certs) as d:
        for port, request in ((d.port, STATS_FRAME), (d.port, put_frame(b"k", b"v")),
                              (d.text_port, b"get k\r\n"), (d.text_port, b"stats\r\n")):
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as s:
                s.sendall(request)
                expect_closed(s, "plaintext %r" % request)
        s = tls_stats(d, client_context(certs))
        assert s["TLS_HANDSHAKE_ERRORS"] == "4", s
        assert s["PUTS"] == "0", s


def test_client_certificates_under_verify_clients(exe):
    with Certificates() as certs, tls_daemon(exe, certs, "--tls-ca", certs.path("ca.pem"), "--tls-verify-clients") as d:
        good = client_context(certs, cert="client")
        with tls_connect(Client, d.port, good) as c:
            assert c.put(b"k", b"v") == OK
        with tls_connect(TextClient, d.text_port, good) as t:
            assert t.get(b"k") == {b"k": (0, b"v", None)}
        for what, ctx in (("no certificate", client_context(certs)),
                          ("another CA's certificate", client_context(certs, cert="other-client")),
                          ("an expired certificate", client_context(certs, cert="expired-client")),
                          ("no certificate, TLS 1.2", client_context(certs, version=ssl.TLSVersion.TLSv1_2))):
            for port in (d.port, d.text_port):
                assert refused(port, ctx, what)
        s = wait_tls_stats(d, good, lambda s: s["TLS_HANDSHAKE_ERRORS"] == "8", "8 refused handshakes")
        assert s["PUTS"] == "1", s
        with tls_connect(Client, d.port, good) as c:
            assert c.get(b"refused") is None
        assert "client certificates required" in d.log()


def test_garbage_and_truncated_records(exe):
    with Certificates() as certs, tls_daemon(exe, certs) as d:
        ctx = client_context(certs)
        # Garbage that starts like a handshake record.
        for junk in (b"\x16\x03\x01\x00\x05hello", b"\x16" + os.urandom(4000), b"\x16\x03\x03\xff\xff" + b"\0" * 100):
            with socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT_S) as s:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                expect_closed(s, "junk handshake", allow_bytes=True)
        # A ClientHello that claims 100000 bytes: closed once more than
        # tls_handshake_bytes_max (64 KiB) arrived, before it is complete.
        with socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT_S) as s:
            first = b"\x01" + (100000).to_bytes(3, "big") + b"\0" * (16384 - 4)
            records = b"\x16\x03\x01" + struct.pack(">H", len(first)) + first
            for _ in range(5):
                records += b"\x16\x03\x01" + struct.pack(">H", 16384) + b"\0" * 16384
            try:
                s.sendall(records)
            except ConnectionError:
                pass
            expect_closed(s, "oversized handshake", allow_bytes=True)
        # After a genuine handshake: a record whose ciphertext was altered.
        m = MemoryTls(d.port, ctx)
        record = bytearray(m.records(put_frame(b"forged", b"x")))
        record[-3] ^= 0x55
        m.sock.sendall(bytes(record))
        expect_closed(m.sock, "altered record", allow_bytes=True)
        m.close()
        # Garbage right after a good record: the good one is served (its
        # reply is lost with the connection, which ends with an alert).
        m = MemoryTls(d.port, ctx)
        m.sock.sendall(m.records(put_frame(b"good", b"1")) + b"\x17\x03\x03\x00\x20" + os.urandom(32))
        expect_closed(m.sock, "garbage record", allow_bytes=True)
        m.close()
        # A truncated record, then the client goes: nothing stored from it.
        m = MemoryTls(d.port, ctx)
        whole = m.records(put_frame(b"truncated", b"y" * 1000))
        m.sock.sendall(whole[:len(whole) // 2])
        m.sock.shutdown(socket.SHUT_WR)
        expect_closed(m.sock, "truncated record", allow_bytes=True)
        m.close()
        with tls_connect(Client, d.port, ctx) as c:
            assert c.get(b"good") == b"1"
            assert c.get(b"forged") is None
            assert c.get(b"truncated") is None
            s = c.stats()
            # The three junk handshakes and the oversized one.
            assert s["TLS_HANDSHAKE_ERRORS"] == "4", s
            assert s["TLS_HANDSHAKES_TLS13"] == "4", s
        assert d.alive()


def test_garbage_behind_requests_waiting_in_a_paused_connection(exe):
    """Requests stashed while the connection is paused (two large values
    pinned in its queue), then garbage: only the alert goes out and the
    connection closes; the stashed requests are not answered later."""
    with Certificates() as certs, tls_daemon(exe, certs, threads="1") as d:
        ctx = client_context(certs)
        with tls_connect(Client, d.port, ctx) as c:
            assert c.put(b"big", pattern(MIB, 3)) == OK
        m = MemoryTls(d.port, ctx)
        m.sock.sendall(m.records(get_frame(b"big") * 50) + b"\x17\x03\x03\x00\x20" + os.urandom(32))
        expect_closed(m.sock, "paused, then garbage", allow_bytes=True)
        m.close()
        with tls_connect(Client, d.port, ctx) as c:
            assert c.get(b"big") == pattern(MIB, 3)
            assert int(c.stats()["READ_PAUSES"]) >= 1


def test_stalled_handshakes_cost_a_served_client_nothing(exe):
    # The stalled sockets, the served client, the daemon's pipe and spares.
    wanted = STALLED_HANDSHAKES + 64
    limit = raise_fd_limit(wanted)
    assert limit >= wanted, "RLIMIT_NOFILE hard limit %d is below the %d descriptors this test needs" % (limit,
                                                                                                        wanted)
    with Certificates() as certs, tls_daemon(exe, certs, "--tls-handshake-timeout", str(STALLED_HANDSHAKE_TIMEOUT_S),
                                             threads="1") as d:
        ctx = client_context(certs)
        hello = client_hello(ctx)
        stalled = []
        try:
            started = time.monotonic()
            for i in range(STALLED_HANDSHAKES):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT_S)
                # A third send nothing, a third the start of a ClientHello,
                # a third all of it but its last byte.
                if i % 3 == 1:
                    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                elif i % 3 == 2:
                    s.sendall(hello[:-1])
                stalled.append(s)
            opened_s = time.monotonic() - started
            with tls_connect(Client, d.port, ctx) as c:
                for i in range(200):
                    t0 = time.monotonic()
                    assert c.put(b"s%d" % i, b"v%d" % i) == OK
                    assert c.get(b"s%d" % i) == b"v%d" % i
                    assert time.monotonic() - t0 < SERVED_REQUEST_S_MAX
                # Served while every stalled handshake was still open.
                s = c.stats()
                assert s["TLS_HANDSHAKE_TIMEOUTS"] == "0", (s, opened_s)
                assert int(s["CONNECTIONS"]) == STALLED_HANDSHAKES + 1, s
            served_s = time.monotonic() - started
            # The timeout (checked once a second) closes every one.
            for s in stalled:
                expect_closed(s, "stalled handshake")
            closed_s = time.monotonic() - started
            assert closed_s < STALLED_CLOSED_S_MAX
            print("  %d stalled handshakes opened in %.2f s, client served by %.2f s, all closed by %.2f s"
                  % (STALLED_HANDSHAKES, opened_s, served_s, closed_s), flush=True)
        finally:
            for s in stalled:
                s.close()
        s = tls_stats(d, ctx)
        assert s["TLS_HANDSHAKE_TIMEOUTS"] == str(STALLED_HANDSHAKES), s
        assert s["TLS_HANDSHAKE_ERRORS"] == str(STALLED_HANDSHAKES), s
        assert s["CONNECTIONS"] == "1", s
        d.wait_for_log("whose TLS handshake took more than %d ms" % (STALLED_HANDSHAKE_TIMEOUT_S * 1000))


def client_hello(ctx):
    """The first flight of a client with ctx: one record holding a genuine
    ClientHello."""
    outgoing = ssl.MemoryBIO()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="127.0.0.1")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def check_bystander(c, i):
    """The bystander connection is served, within bounds, after hostile act i."""
    t0 = time.monotonic()
    assert c.put(b"bystander%d" % i, b"v%d" % i) == OK
    assert c.get(b"bystander%d" % i) == b"v%d" % i
    assert time.monotonic() - t0 < SERVED_REQUEST_S_MAX


def test_garbage_before_and_inside_records(exe):
    """At the record layer: a genuine ClientHello followed by garbage, a
    ClientHello altered inside its record, records after the handshake
    with garbage between them or a bad header. Each connection is closed;
    the bystander, open all along, is served after each; the daemon stays up."""
    with Certificates() as certs, tls_daemon(exe, certs) as d:
        ctx = client_context(certs)
        hello = client_hello(ctx)
        assert hello[0] == 0x16 and struct.unpack(">H", hello[3:5])[0] == len(hello) - 5, hello[:5]
        altered = bytearray(hello)
        altered[5 + 4 + 2:5 + 4 + 2 + 8] = b"\xff" * 8  # inside the random: still parses, signs nothing
        altered[5] = 0x63  # handshake type: not a ClientHello
        cases = [
            ("hello, then random bytes", hello + os.urandom(3000)),
            ("hello, then a record of unknown type", hello + b"\x63\x03\x03\x00\x10" + os.urandom(16)),
            ("hello, then an application record before the handshake", hello + b"\x17\x03\x03\x00\x20" +
             os.urandom(32)),
            ("a hello record with its body altered", bytes(altered)),
            ("a hello record with its length field cut in the middle of the body",
             hello[:3] + struct.pack(">H", 40) + hello[5:]),
            ("garbage, then a genuine hello", os.urandom(64) + hello),
        ]
        with tls_connect(Client, d.port, ctx) as bystander:
            for i, (what, data) in enumerate(cases):
                with socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT_S) as s:
                    try:
                        s.sendall(data)
                    except ConnectionError:
                        pass
                    expect_closed(s, what, allow_bytes=True)
                check_bystander(bystander, i)
            # After a genuine handshake: garbage between two good records,
            # then a record header with a version no TLS has.
            for i, tail in enumerate((os.urandom(7), b"\x17\x09\x09\x00\x10" + os.urandom(16))):
                m = MemoryTls(d.port, ctx)
                m.sock.sendall(m.records(put_frame(b"first%d" % i, b"1")) + tail +
                               m.records(put_frame(b"second%d" % i, b"2")))
                expect_closed(m.sock, "garbage between records", allow_bytes=True)
                m.close()
                check_bystander(bystander, len(cases) + i)
                assert bystander.get(b"second%d" % i) is None
            s = bystander.stats()
            assert s["TLS_HANDSHAKE_ERRORS"] == str(len(cases)), s
            assert s["CONNECTIONS"] == "1", s
        assert d.alive()


def test_truncated_records(exe):
    """Records whose header promises more than is sent: during the handshake
    the connection is closed when the client goes or the handshake timeout
    passes; after it, a record held back beside a served client is
    completed and served, one cut short is dropped with its connection,
    and one longer than TLS allows is refused at its header."""
    with Certificates() as certs, tls_daemon(exe, certs, "--tls-handshake-timeout", "1") as d:
        ctx = client_context(certs)
        hello = client_hello(ctx)
        promising_more = hello[:3] + struct.pack(">H", RECORD_PLAINTEXT_BYTES_MAX) + hello[5:]
        with tls_connect(Client, d.port, ctx) as bystander:
            # The client goes after the short record.
            with socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT_S) as s:
                s.sendall(promising_more)
                s.shutdown(socket.SHUT_WR)
                expect_closed(s, "truncated hello, then gone", allow_bytes=True)
            check_bystander(bystander, 0)
            # The client stays: the handshake timeout closes it.
            with socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT_S) as s:
                t0 = time.monotonic()
                s.sendall(promising_more)
                check_bystander(bystander, 1)
                expect_closed(s, "truncated hello, then stalled", allow_bytes=True)
                assert time.monotonic() - t0 >= 0.9, "closed before the handshake timeout"
            # After the handshake: half a record, a pause in which the
            # bystander is served, then the rest.
            m = MemoryTls(d.port, ctx)
            whole = m.records(put_frame(b"held", pattern(5000, 1)))
            m.sock.sendall(whole[:len(whole) // 2])
            for i in range(2, 12):
                check_bystander(bystander, i)
            m.sock.sendall(whole[len(whole) // 2:])
            assert m.read_plaintext(1) == bytes([OK])
            m.close()
            assert bystander.get(b"held") == pattern(5000, 1)
            # Only the header of a record, then gone: nothing of it stored.
            m = MemoryTls(d.port, ctx)
            whole = m.records(put_frame(b"header-only", b"x"))
            m.sock.sendall(whole[:5])
            m.sock.shutdown(socket.SHUT_WR)
            expect_closed(m.sock, "record header only", allow_bytes=True)
            m.close()
            # A header announcing more than a record may hold.
            m = MemoryTls(d.port, ctx)
            m.sock.sendall(b"\x17\x03\x03" + struct.pack(">H", RECORD_PLAINTEXT_BYTES_MAX + 2048 + 1) +
                           b"\0" * 100)
            expect_closed(m.sock, "oversized record", allow_bytes=True)
            m.close()
            check_bystander(bystander, 12)
            assert bystander.get(b"header-only") is None
            s = bystander.stats()
            assert s["TLS_HANDSHAKE_ERRORS"] == "2", s
            assert s["TLS_HANDSHAKE_TIMEOUTS"] == "1", s
        assert d.alive()


def peer_common_name(c):
    subject = dict(pair[0] for pair in c.sock.getpeercert()["subject"])
    return subject["commonName"]


def live_files(certs):
    """live.pem and live.key, copies of the server's certificate and key that
    a test may rewrite in place."""
    cert, key = certs.path("live.pem"), certs.path("live.key")
    shutil.copyfile(certs.path("server.pem"), cert)
    shutil.copyfile(certs.path("server.key"), key)
    return cert, key


def reload_server2(d, certs, cert, key):
    """Rewrites the live files with server2's and sends SIGHUP; returns when
    the daemon logged the reload."""
    shutil.copyfile(certs.path("server2.pem"), cert)
    shutil.copyfile(certs.path("server2.key"), key)
    os.kill(d.pid, signal.SIGHUP)
    d.wait_for_line(re.compile(r"tls: SIGHUP: reloaded .*CN=server2"), TIMEOUT_S)


def test_sighup_reloads_the_certificate(exe):
    with Certificates() as certs:
        cert, key = live_files(certs)
        with Daemon(exe, "-t", "2", "--tls-cert", cert, "--tls-key", key, text="bind") as d:
            ctx = client_context(certs)
            with tls_connect(Client, d.port, ctx) as before:
                assert peer_common_name(before) == "server"
                assert before.put(b"k", b"1") == OK
                reload_server2(d, certs, cert, key)
                with tls_connect(TextClient, d.text_port, ctx) as after:
                    assert peer_common_name(after) == "server2"
                    assert after.get(b"k") == {b"k": (0, b"1", None)}
                # The connection made before the reload goes on.
                assert before.get(b"k") == b"1"
                # A broken key: the reload fails, the daemon keeps serving server2.
                with open(key, "w") as f:
                    f.write("not a key\n")
                os.kill(d.pid, signal.SIGHUP)
                d.wait_for_line("tls: SIGHUP: reload failed, still serving the previous certificate: --tls-key",
                                TIMEOUT_S)
                with tls_connect(Client, d.port, ctx) as again:
                    assert peer_common_name(again) == "server2"
                    assert again.get(b"k") == b"1"
            assert d.alive()


def test_key_from_a_descriptor(exe):
    """--tls-key-fd (what ringcached-privsep --tls-key passes): the key is
    read from the inherited descriptor, and SIGHUP reads it again from
    offset 0, so a key rewritten in place is picked up and one renamed over
    the path is not (docs/privsep.md)."""
    with Certificates() as certs:
        cert, key = live_files(certs)
        fd = os.open(key, os.O_RDONLY)
        try:
            with Daemon(exe, "-t", "1", "--tls-cert", cert, "--tls-key-fd", str(fd), pass_fds=(fd,)) as d:
                ctx = client_context(certs)
                with tls_connect(Client, d.port, ctx) as c:
                    assert peer_common_name(c) == "server"
                    assert c.put(b"k", b"1") == OK
                # Rewritten in place (same inode, the descriptor sees it).
                reload_server2(d, certs, cert, key)
                with tls_connect(Client, d.port, ctx) as c:
                    assert peer_common_name(c) == "server2"
                    assert c.get(b"k") == b"1"
                # A new file renamed over the path is not seen: the
                # descriptor still reads server2's key, which does not match
                # the certificate now at the path; the reload fails and
                # server2 stays.
                shutil.copyfile(certs.path("server.key"), key + ".new")
                os.rename(key + ".new", key)
                shutil.copyfile(certs.path("server.pem"), cert)
                os.kill(d.pid, signal.SIGHUP)
                d.wait_for_line("tls: SIGHUP: reload failed, still serving the previous certificate: --tls-key-fd "
                                "%d: the key does not belong to the certificate" % fd, TIMEOUT_S)
                with tls_connect(Client, d.port, ctx) as c:
                    assert peer_common_name(c) == "server2"
                for name in ("server.key", "server2.key"):
                    with open(certs.path(name)) as f:
                        for line in f.read().splitlines()[1:-1]:
                            assert line not in d.log(), "a line of %s is in the log" % name
        finally:
            os.close(fd)


def test_key_descriptor_errors_are_clear(exe):
    """A --tls-key-fd that is not open, not a regular file, not a key or
    not the certificate's key: exit 2 with the reason, before listening."""
    with Certificates() as certs:
        p = certs.path
        with open(p("empty.key"), "wb"):
            pass
        with open(p("huge.key"), "wb") as f:
            f.write(b"-" * (64 * 1024 + 1))
        read_end, write_end = os.pipe()
        files = {name: os.open(p(name), os.O_RDONLY) for name in ("server.pem", "client.key", "empty.key", "huge.key")}
        directory = os.open(certs.directory, os.O_RDONLY)
        unused = max(list(files.values()) + [read_end, write_end, directory]) + 10
        cases = [
            (unused, "--tls-key-fd %d: not an open file descriptor" % unused),
            (read_end, "--tls-key-fd %d: not a regular file" % read_end),
            (directory, "--tls-key-fd %d: not a regular file" % directory),
            (files["empty.key"], "--tls-key-fd %d: file size 0 bytes" % files["empty.key"]),
            (files["huge.key"], "--tls-key-fd %d: file size 65537 bytes" % files["huge.key"]),
            (files["server.pem"], "--tls-key-fd %d: " % files["server.pem"]),
            (files["client.key"], "--tls-key-fd %d: the key does not belong to the certificate of --tls-cert" %
             files["client.key"]),
        ]
        try:
            for fd, message in cases:
                passed = () if fd == unused else (fd,)
                done = run_to_exit(exe, "-p", "0", "--text-port", "0", "--tls-cert", p("server.pem"), "--tls-key-fd",
                                   str(fd), pass_fds=passed)
                assert done.returncode == 2, (fd, message, done.returncode, done.stderr)
                assert message in done.stderr, (message, done.stderr)
                assert "listening" not in done.stderr, done.stderr
                assert "PRIVATE KEY" not in done.stderr, done.stderr
        finally:
            for fd in list(files.values()) + [read_end, write_end, directory]:
                os.close(fd)


def test_startup_errors_are_clear(exe):
    with Certificates() as certs:
        p = certs.path
        cases = [
            (["--tls-cert", p("server.pem"), "--tls-key", p("missing.key")], "--tls-key " + p("missing.key") +
             ": No such file or directory"),
            (["--tls-cert", p("server.pem"), "--tls-key", p("client.key")],
             "--tls-key " + p("client.key") + " does not belong to the certificate of --tls-cert"),
            (["--tls-cert", p("missing.pem"), "--tls-key", p("server.key")], "--tls-cert " + p("missing.pem")),
            (["--tls-cert", p("server.key"), "--tls-key", p("server.key")], "--tls-cert " + p("server.key")),
            (["--tls-cert", p("server.pem"), "--tls-key", p("server.pem")], "--tls-key " + p("server.pem")),
            (["--tls-cert", p("server.pem"), "--tls-key", p("server.key"), "--tls-ca", p("server.key")],
             "--tls-ca " + p("server.key")),
            (["--tls-cert", p("server.pem"), "--tls-key", p("server.key"), "--tls-verify-clients"],
             "--tls-verify-clients needs --tls-ca"),
            (["--tls-cert", p("server.pem"), "--tls-key", p("server.key"), "--peer", "127.0.0.1:1"],
             "TLS with --peer needs --tls-ca"),
        ]
        for args, message in cases:
            done = run_to_exit(exe, "-p", "0", "--text-port", "0", *args)
            assert done.returncode == 2, (args, done.returncode, done.stderr)
            assert message in done.stderr, (args, done.stderr)
            assert "listening" not in done.stderr, done.stderr


if __name__ == "__main__":
    run_tests(globals())
