"""The text port measured against the real thing (issue 7):

- the same byte streams sent to memcached (Debian's package) and to
  ringcached must get the same replies, byte for byte, apart from cas values.
  The streams cover every command, noreply, meta flags and the error of every
  malformed line. Where ringcached differs on purpose (docs/text_protocol.md:
  control characters in keys, data blocks of refused lines, lines over 2048
  bytes, incr padding and leading spaces, base64 keys in k) the case is not
  listed here but in the unit tests of the parser.

memcached is optional: without it the test is skipped (77). memccapable,
ASCII and binary tests alike, runs in test_mc_binary.py.
"""

import os
import re
import shutil
import socket
import subprocess
import time

from daemon import Daemon
from harness import SkipTest, run_tests

REPLY_WAIT_S = 3
MEMCACHED_START_S = 10
# Sent after every case: a miss whose reply echoes the opaque token marks
# the end of the case's replies on both servers.
SENTINEL = b"mg sentinel-key O-end-of-case\r\n"
SENTINEL_REPLY = b"EN O-end-of-case\r\n"

K251 = b"k" * 251

# Each case runs on a fresh connection, in order, after a flush_all on both
# servers; later cases may rely on what earlier ones stored.
CASES = [
    b"set a 0 0 1\r\nx\r\nget a\r\n", b"bogus\r\n", b"\r\n", b"set a 0 0 1\r\nxy\r\nget a\r\n",
    b"set a 0 0 1 noreply\r\nxy\r\nget a\r\n", b"set a 0 0 -1\r\nxy\r\nget a\r\n",
    b"get " + K251 + b"\r\n", b"get a " + K251 + b" a\r\n", b"get a\nget a\n", b"get  a   a \r\n",
    b"GET a\r\n", b"get\r\n", b"get \r\n", b"gets\r\n",
    b"set a 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\nget a\r\n",
    b"set a 0 0 2000000 noreply\r\n" + b"x" * 2000000 + b"\r\nget a\r\n",
    b"set a 0 0 1\r\nx\r\nmg a v\r\n", b"mg a v f s t O123 q\r\n", b"mg missing v\r\n",
    b"mg missing v q\r\nmn\r\n", b"mg a v q\r\nmn\r\n", b"mg a q\r\nmn\r\n", b"mg YQ= k b v\r\n",
    b"mg a zz\r\n", b"mg a v v\r\nmn\r\n", b"mg\r\n", b"mg a T\r\n", b"mg a Tx\r\n", b"mg a 5\r\n",
    b"mg " + K251 + b" v\r\n", b"mg a O" + b"x" * 31 + b"\r\n", b"mg a O" + b"x" * 32 + b"\r\n",
    b"mg a " + b" ".join([b"v"] * 18) + b"\r\n",
    b"ms b 2\r\nhi\r\nmg b v f t\r\n", b"ms b 2 F7 T100 k O1\r\nhi\r\n", b"ms b 2 q\r\nhi\r\nmn\r\n",
    b"ms b 2 ME q\r\nhi\r\nmn\r\n", b"ms zz 2 MR\r\nhi\r\n", b"ms b 2 MA\r\nxx\r\nmg b v\r\n",
    b"ms b 2 MP\r\nyy\r\nmg b v\r\n", b"ms zz9 2 MA\r\nyy\r\n", b"ms b 2 MX\r\nyy\r\nmn\r\n",
    b"ms b 2 C1\r\nyy\r\n", b"ms nope 2 C1\r\nyy\r\n", b"ms b\r\nyy\r\n", b"ms b x\r\nyy\r\n",
    b"ms b 2\r\nyyy\r\n", b"ms b 2 q\r\nyyy\r\n", b"ms b 2000000\r\n" + b"y" * 2000000 + b"\r\nmn\r\n",
    b"ms b 2 F7 T100 c k O1 b\r\nhi\r\n", b"ms a 1 Mx\r\nx\r\nmn\r\n", b"ms a 1 M\r\nx\r\nmn\r\n",
    b"ms zz 1\r\n1\r\nmd zz\r\nmd zz\r\n", b"md zz q\r\nmn\r\n", b"ms zz 1\r\n1\r\nmd zz q\r\nmd zz q\r\nmn\r\n",
    b"ms zz 1\r\n1\r\nmd zz C1\r\n", b"md zz k O5 b\r\n", b"md enp6 k O5 b\r\n",
    b"ma n\r\n", b"ma n q\r\nmn\r\n", b"ma n N0 J10 v\r\nma n v\r\nma n MD D3 v t\r\nma n q\r\nmn\r\n",
    b"ma n MI D18446744073709551615 v\r\n", b"ma n D-1 v\r\n", b"ms t 2\r\nab\r\nma t\r\n", b"ma n MX\r\n",
    b"ma n k O1 v\r\n", b"mn extra\r\n", b"ma n MD D100 v\r\n", b"ma a Mi\r\n", b"ma a M\r\n",
    b"ms a 1 zz\r\nx\r\nmn\r\n", b"ms a 1 F1 F1\r\nx\r\nmn\r\n", b"ms a 1 Fx\r\nx\r\nmn\r\n",
    b"ms a 1 T-1\r\nx\r\nmg a v\r\n", b"md a zz\r\n", b"md a Tx\r\n", b"ma a zz\r\n", b"ma a Dx\r\n",
    b"mg a Ox\r\n", b"mg a O\r\n",
    b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr n 18446744073709551615\r\n"
    b"incr n 18446744073709551616\r\nincr n -1\r\nincr n x\r\nincr n\r\nincr n 1 noreply\r\nmn\r\n",
    b"incr nokey 1\r\n", b"set t 0 0 2\r\nab\r\nincr t 1\r\n", b"set n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\n",
    b"set n 0 0 2\r\n1 \r\nincr n 1\r\n", b"set n 0 0 0\r\n\r\nincr n 1\r\n",
    b"delete n\r\ndelete n\r\ndelete n 0\r\ndelete n 5\r\ndelete n noreply\r\ndelete n 0 noreply\r\ndelete\r\n",
    b"delete a b c d e\r\ndelete " + K251 + b"\r\n",
    b"touch n 10\r\nset n 0 0 1\r\n1\r\ntouch n 10\r\ntouch n x\r\ntouch n\r\ntouch n 10 noreply\r\n"
    b"touch n -1\r\nget n\r\n",
    b"set g 3 0 1\r\nx\r\ngat 100 g nokey g\r\ngat x g\r\ngat 100\r\ngat\r\nget g\r\n",
    b"flush_all x\r\nflush_all 1 2 3\r\nmn\r\n",
    b"verbosity\r\nverbosity 1\r\nverbosity x\r\nverbosity 1 noreply\r\nverbosity 1 2\r\nverbosity 1 2 3\r\n"
    b"verbosity noreply\r\nverbosity 0\r\nmn\r\n",
    b"stats nothing\r\nstats noreply\r\nmn\r\n", b"quit\r\nmn\r\n", b"quit foo bar\r\nmn\r\n", b"mn\n",
    b"set a 0 0 1\nx\nget a\n", b"set a 0 0 1\nx\r\nget a\n", b"set f 1 0 1 norepl\r\nx\r\nget f\r\n",
    b"set f 1 0 1 noreply extra\r\nx\r\nget f\r\n", b"set f 1 0\r\nx\r\n", b"set f +1 0 01\r\nx\r\nget f\r\n",
    b"set f 4294967295 0 1\r\nx\r\nget f\r\n", b"set f 1 -5 1\r\nx\r\nget f\r\n", b"cas f 1 0 1\r\nx\r\n", b"cas nokey 1 0 1 5\r\nx\r\n",
    b"set a 0 0 1 noreply\r\nx\r\nappend a 0 0 1\r\ny\r\nprepend a 5 5 1\r\nz\r\nget a\r\n"
    b"append nokey 0 0 1\r\nx\r\n",
    b"   get a\r\n", b"x" * 2000 + b"\r\n",
]


def talk(port, data):
    """The replies to `data` (up to the sentinel's), and whether the server closed."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_WAIT_S)
    out, closed = b"", False
    try:
        sock.sendall(data + SENTINEL)
        while not out.endswith(SENTINEL_REPLY):
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        closed = True
    finally:
        sock.close()
    out = out[:-len(SENTINEL_REPLY)] if out.endswith(SENTINEL_REPLY) else out
    # cas values differ between servers; everything else must not.
    out = re.sub(rb"(VALUE \S+ \d+ \d+) \d+\r\n", rb"\1 CAS\r\n", out)
    return re.sub(rb" c\d+", b" cCAS", out), closed


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Memcached:
    def __init__(self):
        binary = shutil.which("memcached")
        if binary is None:
            raise SkipTest("memcached is not installed")
        self.port = free_port()
        command = [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-t", "1", "-m", "16",
                   "-I", "1m"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + MEMCACHED_START_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SkipTest("memcached did not start on port %d" % self.port)
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def test_same_replies_as_memcached(exe):
    memcached = Memcached()
    try:
        with Daemon(exe, "-t", "1", "-m", "16", "--max-item", "1M", text="bind") as d:
            for port in (memcached.port, d.text_port):
                assert talk(port, b"flush_all\r\n") == (b"OK\r\n", False), port
            differences = []
            for case in CASES:
                expected, got = talk(memcached.port, case), talk(d.text_port, case)
                if expected != got:
                    differences.append("%r\n  memcached:  %r\n  ringcached: %r" % (case[:100], expected, got))
            assert not differences, "%d of %d cases differ:\n%s" % (len(differences), len(CASES),
                                                                     "\n".join(differences))
            print("%d cases answered alike" % len(CASES))
    finally:
        memcached.stop()


if __name__ == "__main__":
    run_tests(globals())
