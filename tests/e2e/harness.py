"""Shared helpers for the end-to-end tests: start the real ringcached on an
ephemeral loopback port, talk the binary protocol (SPEC §2), read /proc.

Every test file is a script run by meson as `python3 test_x.py DAEMON_PATH`.
It calls run_tests(globals()), which runs each test_* function, prints one
line per test and exits non-zero if any failed (77 = skipped, for meson).
"""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

OP_PUT, OP_DEL, OP_GET, OP_STATS = 11, 12, 13, 21
OK, EINVAL, ENOTFOUND, EBINARY, EBIG, EUNK = 101, 111, 112, 113, 114, 115
KNOWN_OPCODES = {OP_PUT, OP_DEL, OP_GET, OP_STATS}

MIB = 1024 * 1024
START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 20
SOCKET_TIMEOUT_S = 30

LISTENING_RE = re.compile(r"listening binary=(\S+):(\d+) text=(\S+) threads=(\d+) memory=(\d+)")


class SkipTest(Exception):
    pass


def field(data):
    return struct.pack(">I", len(data)) + data


def put_frame(key, value):
    return bytes([OP_PUT]) + field(key) + field(value)


def get_frame(key):
    return bytes([OP_GET]) + field(key)


def del_frame(key):
    return bytes([OP_DEL]) + field(key)


STATS_FRAME = bytes([OP_STATS])


_PATTERN_BLOCK = bytes((i * 131 + (i >> 8)) & 0xFF for i in range(65536 + 256))


def pattern(size, seed):
    """Deterministic bytes that differ per seed (mod 256) and per position."""
    block = _PATTERN_BLOCK[seed % 256:seed % 256 + 65536]
    reps, rest = divmod(size, len(block))
    return block * reps + block[:rest]


class Daemon:
    """A ringcached process on 127.0.0.1 with -p 0; the port comes from the
    start-up line. Use as a context manager: it is always stopped."""

    def __init__(self, exe, *args, port=0, env=None, pass_fds=(), listen=True, preexec_fn=None):
        self.exe = exe
        cmd = [exe]
        if listen:
            cmd += ["-l", "127.0.0.1", "-p", str(port)]
        if not any(str(arg).startswith(("--text-port", "--text-listen-fd")) for arg in args):
            # The text port defaults to 11211, which another daemon (or memcached) may hold.
            cmd += ["--text-port", "0"]
        cmd += list(args)
        self.cmd = cmd
        self.lines = []
        self._lines_lock = threading.Lock()
        self._listening = threading.Event()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env, pass_fds=pass_fds,
                                     preexec_fn=preexec_fn)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.port = None
        self.threads = None
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise AssertionError("ringcached exited with %s before listening:\n%s"
                                     % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("ringcached did not start:\n" + self.log())
        match = LISTENING_RE.search(self.log())
        self.port = int(match.group(2))
        self.threads = int(match.group(4))
        self.memory = int(match.group(5))

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lines_lock:
                self.lines.append(line)
            if LISTENING_RE.search(line):
                self._listening.set()

    def log(self):
        with self._lines_lock:
            return "\n".join(self.lines)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def client(self, timeout=SOCKET_TIMEOUT_S):
        return Client(self.port, timeout)

    def stop(self, sig=signal.SIGTERM):
        """Signals the daemon and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("ringcached did not stop within %ss:\n%s" % (STOP_TIMEOUT_S, self.log()))
        self._reader.join(5)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def rss_bytes(self):
        return proc_status_bytes(self.pid, "VmRSS")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            code = self.stop()
        finally:
            self.kill()
        if exc_type is None:
            # Every test ends with a clean shutdown and a clean sanitizer report.
            assert code == 0, "ringcached exited with %s:\n%s" % (code, self.log())
            check_no_sanitizer_report(self.log())
        return False


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def check_no_sanitizer_report(log):
    for marker in SANITIZER_MARKERS:
        assert marker not in log, "sanitizer report:\n" + log


def proc_status_bytes(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                value, unit = line.split()[1:3]
                assert unit == "kB"
                return int(value) * 1024
    raise AssertionError("%s not in /proc/%d/status" % (name, pid))


class Client:
    def __init__(self, port, timeout=SOCKET_TIMEOUT_S):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        chunks = []
        while n > 0:
            chunk = self.sock.recv(min(n, 4 * MIB))
            if not chunk:
                raise AssertionError("connection closed with %d bytes still expected" % n)
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_status(self):
        return self.recv_exact(1)[0]

    def read_field(self):
        (length,) = struct.unpack(">I", self.recv_exact(4))
        return self.recv_exact(length)

    def read_value_reply(self):
        """A GET reply: the value, or None on ENOTFOUND."""
        status = self.read_status()
        if status == ENOTFOUND:
            return None
        assert status == OK, "GET answered %d" % status
        return self.read_field()

    def put(self, key, value):
        self.send(put_frame(key, value))
        return self.read_status()

    def get(self, key):
        self.send(get_frame(key))
        return self.read_value_reply()

    def delete(self, key):
        self.send(del_frame(key))
        return self.read_status()

    def stats(self):
        self.send(STATS_FRAME)
        status = self.read_status()
        assert status == OK, "STATS answered %d" % status
        return parse_stats(self.read_field())

    def expect_eof(self, timeout=10):
        self.sock.settimeout(timeout)
        data = self.sock.recv(1)
        assert data == b"", "expected the server to close, got %r" % data


def parse_stats(raw):
    text = raw.decode("ascii")
    assert not text.endswith((" ", "\n", "\0")), repr(text[-5:])
    assert "  " not in text
    out = {}
    for pair in text.split(" "):
        name, _, value = pair.partition("=")
        assert name and value, "bad STATS pair %r" % pair
        out[name] = value
    out["_order"] = [pair.partition("=")[0] for pair in text.split(" ")]
    return out


def check_alive_and_serving(daemon):
    assert daemon.alive(), "daemon died:\n" + daemon.log()
    with daemon.client(timeout=10) as c:
        key = b"alive-%d" % time.monotonic_ns()
        assert c.put(key, b"yes") == OK
        assert c.get(key) == b"yes"


def raise_fd_limit(wanted):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_tests(namespace):
    if len(sys.argv) < 2:
        print("usage: %s PATH/TO/ringcached [TEST_NAME...]" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    exe = sys.argv[1]
    only = set(sys.argv[2:])
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn) and (not only or name in only)]
    passed = failed = skipped = 0
    for name, fn in tests:
        start = time.monotonic()
        try:
            fn(exe)
        except SkipTest as e:
            skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
            continue
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (name, time.monotonic() - start), flush=True)
            traceback.print_exc()
            continue
        passed += 1
        print("ok   %s (%.1fs)" % (name, time.monotonic() - start), flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(77)
