"""Starting and stopping the processes that the end-to-end tests and the
benchmark scripts drive: ringcached (Daemon), and any other server that
names its port on a start-up line (Server: ringcache-echo-server, the
privsep helper).

A Server captures the lines of one output stream (stderr unless told
otherwise) from a thread of its own, so the process never blocks on a full
pipe and a test may read the log at any time; it waits, bounded, for the
start-up line, and stops with SIGTERM and a bounded wait (SIGKILL and an
error when that runs out). A Daemon may be stopped, killed, frozen and
started again: its lines accumulate across starts, and a listening socket
the caller bound (passed with --listen-fd) keeps the port while it is down.

Standard library only. Scripts outside tests/e2e put this directory on
sys.path first.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

from clients import SOCKET_TIMEOUT_S, Client

START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 20
# After SIGKILL, the kernel reaps at once; this only bounds a wedged wait.
KILL_TIMEOUT_S = 10
READER_JOIN_S = 5
# A daemon that refuses its command line says so at once.
RUN_TIMEOUT_S = 20
READY_POLL_S = 0.05

LISTENING_RE = re.compile(r"listening binary=(?P<host>\S+):(?P<port>\d+) text=(?P<text>\S+) "
                          r"threads=(?P<threads>\d+) memory=(?P<memory>\d+)")
ECHO_LISTENING_RE = re.compile(r"listening port=(?P<port>\d+) threads=\d+")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def check_no_sanitizer_report(log):
    for marker in SANITIZER_MARKERS:
        assert marker not in log, "sanitizer report:\n" + log


def proc_status(pid, task=None):
    """/proc/PID/status (or a thread's) as {field: value}."""
    path = "/proc/%d/status" % pid if task is None else "/proc/%d/task/%s/status" % (pid, task)
    fields = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def proc_status_bytes(pid, name):
    value = proc_status(pid).get(name)
    assert value is not None, "%s not in /proc/%d/status" % (name, pid)
    number, unit = value.split()
    assert unit == "kB"
    return int(number) * 1024


def process_cpu_seconds(pid):
    """User + system CPU time the process has used, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_to_exit(exe, *args, pass_fds=(), timeout_s=RUN_TIMEOUT_S):
    """Runs a command that is expected to exit by itself (a refused command
    line, -h); the subprocess.CompletedProcess, output as text."""
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout_s, pass_fds=pass_fds)


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


def accepted(listener, stopped):
    """The connections a listening socket with a timeout accepts, until
    stopped() is true (checked at every timeout) or the socket is closed."""
    while not stopped():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        yield conn


def write_secret_file(directory, data=None):
    """A peer secret file as the daemon wants it: 32 random bytes, mode 600."""
    path = os.path.join(directory, "peer-secret")
    with open(path, "wb") as f:
        f.write(os.urandom(32) if data is None else data)
    os.chmod(path, 0o600)
    return path


class Server:
    """A process started from `argv`, whose lines on `stream` ("stderr" or
    "stdout"; the other goes to /dev/null) are kept. With `ready` (a
    regular expression), start() waits until a line of this start matches
    it (self.ready holds the match; a group named port gives self.port).
    As a context manager it is stopped (or killed) on the way out, and
    when the block raised nothing it must have exited with status 0 and
    without a sanitizer report.
    popen: further arguments for subprocess.Popen (start_new_session...)."""

    label = "server"

    def __init__(self, argv=(), ready=None, stream="stderr", env=None, pass_fds=(), preexec_fn=None,
                 start_timeout_s=START_TIMEOUT_S, stop_timeout_s=STOP_TIMEOUT_S, label=None, popen=None):
        assert stream in ("stderr", "stdout")
        self.argv = list(argv)
        self.ready_re = ready
        self.stream = stream
        self.env = env
        self.pass_fds = tuple(pass_fds)
        self.preexec_fn = preexec_fn
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.popen = dict(popen or {})
        if label is not None:
            self.label = label
        self.proc = None
        self.lines = []
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self._reader = None
        self._eof = True
        self._first_line = 0
        self.ready = None
        self.port = None
        self.exit_codes = []
        self.paused = False

    def command(self):
        """(argv, fds to pass) for the next start."""
        return self.argv, self.pass_fds

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "%s is still running" % self.label
        argv, fds = self.command()
        with self.lock:
            self._first_line = len(self.lines)
            self._eof = False
        self.ready = None
        self.paused = False
        streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, self.stream: subprocess.PIPE}
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=self.env, pass_fds=fds,
                                     preexec_fn=self.preexec_fn, **streams, **self.popen)
        self._reader = threading.Thread(target=self._read, args=(getattr(self.proc, self.stream),), daemon=True)
        self._reader.start()
        if self.ready_re is not None:
            self.wait_ready()
        return self

    def _read(self, pipe):
        with pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def _search(self, pattern, since):
        for line in self.lines[since:]:
            match = pattern.search(line)
            if match:
                return match
        return None

    def wait_for_line(self, pattern, timeout_s):
        """The first match of `pattern` (a compiled expression or a plain
        string) in a line of this start, waiting up to timeout_s. Raises
        AssertionError, with the log, when time runs out (the process is
        left running) or the output ends first."""
        if isinstance(pattern, str):
            pattern = re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                match = self._search(pattern, self._first_line)
                if match:
                    return match
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._changed.wait(min(left, READY_POLL_S))
        if self._eof:
            raise AssertionError("%s ended its output (exit %s) before %r:\n%s"
                                 % (self.label, self.exit_code_after_eof(), pattern.pattern, self.log()))
        raise AssertionError("no %r from %s within %ss:\n%s" % (pattern.pattern, self.label, timeout_s, self.log()))

    def exit_code_after_eof(self):
        """Its exit status once its output ended; killed if it lingers."""
        try:
            code = self.proc.wait(KILL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return "SIGKILL (it closed its output but did not exit)"
        self._reader.join(READER_JOIN_S)
        return code

    def wait_ready(self):
        """Until the start-up line (bounded); kills the process if it does not come."""
        deadline = time.monotonic() + self.start_timeout_s
        with self._changed:
            while True:
                match = self._search(self.ready_re, self._first_line)
                if match or self._eof or time.monotonic() > deadline:
                    break
                self._changed.wait(READY_POLL_S)
        if match is None:
            if not self._eof:
                self.kill()
                raise AssertionError("%s did not start within %ss:\n%s" % (self.label, self.start_timeout_s,
                                                                          self.log()))
            code = self.exit_code_after_eof()
            raise AssertionError("%s exited with %s before listening:\n%s" % (self.label, code, self.log()))
        self.ready = match
        if "port" in match.groupdict():
            self.port = int(match.group("port"))
        self.on_ready(match)

    def on_ready(self, match):
        """What a subclass learns from the start-up line."""

    def log(self):
        with self.lock:
            return "\n".join(self.lines)

    def log_count(self, text):
        with self.lock:
            return sum(text in line for line in self.lines)

    def wait_for_log(self, text, timeout_s=10):
        """The log once a line holds text: the daemon's stderr is read by a
        thread, so a line written a moment ago may not be here yet.
        AssertionError with the log after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while self.log_count(text) == 0:
            if time.monotonic() > deadline:
                raise AssertionError("no log line with %r within %ss:\n%s" % (text, timeout_s, self.log()))
            time.sleep(0.02)
        return self.log()

    def line_with(self, text):
        """The first line holding text; AssertionError when there is none."""
        with self.lock:
            for line in self.lines:
                if text in line:
                    return line
        raise AssertionError("no line with %r in:\n%s" % (text, self.log()))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_bytes(self):
        return proc_status_bytes(self.pid, "VmRSS")

    def cpu_seconds(self):
        return process_cpu_seconds(self.pid)

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

    def wait(self, timeout_s):
        """Waits for the process to exit by itself; its exit status.
        AssertionError if it is still running after timeout_s."""
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s still running after %ss:\n%s" % (self.label, timeout_s, self.log())) from None
        self._reader.join(READER_JOIN_S)
        return code

    def stop(self, sig=signal.SIGTERM):
        """Sends sig (after SIGCONT if frozen) and returns the exit status.
        When it does not exit within stop_timeout_s: SIGKILL and AssertionError."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.resume()
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not stop within %ss:\n%s" % (self.label, self.stop_timeout_s,
                                                                      self.log())) from None
        self._reader.join(READER_JOIN_S)
        self.exit_codes.append(code)
        return code

    def kill(self):
        """SIGKILL: no shutdown, no goodbye to the peers."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(KILL_TIMEOUT_S)
            self._reader.join(READER_JOIN_S)
        self.paused = False

    def check_clean_exit(self, code):
        """Every test ends with a clean shutdown and a clean sanitizer report."""
        assert code == 0, "%s exited with %s:\n%s" % (self.label, code, self.log())
        check_no_sanitizer_report(self.log())

    def close(self):
        """Stops the process (killing it when it does not stop) and returns
        its exit status."""
        try:
            return self.stop()
        finally:
            self.kill()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        code = self.close()
        if exc_type is None:
            self.check_clean_exit(code)
        return False


class Daemon(Server):
    """A ringcached, started at once unless start=False.

    listen: the binary port: (host, port) for -l/-p (port 0: the kernel
      picks, self.port says which), a listening socket to pass with
      --listen-fd (the caller keeps it, so the port outlives the process),
      or None for nothing (the arguments or socket activation say).
    text: the text port: "off" (--text-port 0, unless args name the text
      port themselves), "bind" (at every start a socket bound on 127.0.0.1
      port 0, passed with --text-listen-fd and closed here once the daemon
      holds it; self.text_port), a listening socket to pass, or None for
      nothing.
    node_id, peers, secret_file: --node-id, one --peer each, --peer-secret-file.
    prefix: a command to run it under (ip netns exec NS, env LD_PRELOAD=...).
    client_host: where clients connect (default: 127.0.0.1).
    client_tls: an ssl.SSLContext for client() and stats() (a daemon with
      --tls-cert), or None for plaintext.
    The attributes may be changed between starts."""

    label = "ringcached"

    def __init__(self, exe, *args, listen=("127.0.0.1", 0), text="off", node_id=None, peers=(), secret_file=None,
                 prefix=(), client_host="127.0.0.1", client_tls=None, start=True, label=None, **server):
        super().__init__(label=label, ready=LISTENING_RE, **server)
        self.exe = exe
        self.args = list(args)
        self.listen = listen
        self.text = text
        self.node_id = node_id
        self.peers = list(peers)
        self.secret_file = secret_file
        self.prefix = list(prefix)
        self.client_host = client_host
        self.client_tls = client_tls
        if isinstance(listen, socket.socket):
            self.port = listen.getsockname()[1]
        elif listen is not None and listen[1] != 0:
            self.port = listen[1]
        self.text_port = text.getsockname()[1] if isinstance(text, socket.socket) else None
        self.threads = None
        self.memory = None
        self._bound_text = None
        if start:
            self.start()

    def command(self):
        cmd = self.prefix + [self.exe]
        fds = self.pass_fds
        if isinstance(self.listen, socket.socket):
            cmd += ["--listen-fd", str(self.listen.fileno())]
            fds += (self.listen.fileno(),)
        elif self.listen is not None:
            cmd += ["-l", self.listen[0], "-p", str(self.listen[1])]
        text = self.text
        if text == "bind":
            self._bound_text = text = bind_socket()
            self.text_port = text.getsockname()[1]
        if isinstance(text, socket.socket):
            cmd += ["--text-listen-fd", str(text.fileno())]
            fds += (text.fileno(),)
        elif text == "off" and not any(str(a).startswith(("--text-port", "--text-listen-fd")) for a in self.args):
            # Left alone, the text port would be 11211, which another daemon (or memcached) may hold.
            cmd += ["--text-port", "0"]
        if self.node_id is not None:
            cmd += ["--node-id", self.node_id]
        cmd += [str(a) for a in self.args]
        if self.secret_file is not None:
            cmd += ["--peer-secret-file", self.secret_file]
        for peer in self.peers:
            cmd += ["--peer", peer]
        return cmd, fds

    def start(self):
        try:
            return super().start()
        finally:
            if self._bound_text is not None:
                # The daemon holds its own copy (or never started).
                self._bound_text.close()
                self._bound_text = None

    def on_ready(self, match):
        self.threads = int(match.group("threads"))
        self.memory = int(match.group("memory"))
        text = match.group("text")
        if isinstance(self.text, socket.socket) or self.text == "bind":
            assert text.endswith(":%d" % self.text_port), "text port %d not served:\n%s" % (self.text_port,
                                                                                           self.log())
        elif text != "off":
            self.text_port = int(text.rsplit(":", 1)[1])

    def sanitizer_build(self):
        """Whether it said at start-up that it runs under a sanitizer (no
        RLIMIT_AS; shadow memory and quarantined frees in its VmRSS)."""
        return self.log_count("sanitizer build") > 0

    def client(self, timeout=SOCKET_TIMEOUT_S):
        c = Client(self.port, host=self.client_host, timeout=timeout)
        if self.client_tls is not None:
            c.sock = self.client_tls.wrap_socket(c.sock, server_hostname=self.client_host)
        return c

    def stats(self):
        with self.client() as c:
            return c.stats()
