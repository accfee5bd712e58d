"""Start-up and shutdown (docs/command_line.md): the command line, inherited
and socket-activated listeners, SIGTERM/SIGINT exiting 0 with the port
reusable at once."""

import os
import resource
import signal
import socket
import threading
import time

from clients import MIB, get_frame, put_frame
from daemon import Daemon, run_to_exit
from harness import check_alive_and_serving, pattern, run_tests


def test_help_and_version(exe):
    r = run_to_exit(exe, "-h")
    assert r.returncode == 0 and "usage: ringcached" in r.stdout, r
    r = run_to_exit(exe, "-V")
    assert r.returncode == 0 and r.stdout.startswith("ringcached "), r


def test_bad_options_exit_2_with_a_clear_error(exe):
    cases = [
        (["-p", "70000"], "-p/--port"),
        (["-m", "abc"], "-m/--memory"),
        (["-t", "0"], "-t/--threads"),
        (["--max-item", "100", "-m", "64"], "--max-item"),
        (["--peer", "127.0.0.1"], "invalid value '127.0.0.1' for --peer: expected HOST:PORT"),
        (["--frobnicate"], "unknown option"),
        (["-l", "127.0.0.1", "-p", "0", "--listen-fd", "0"], "--listen-fd 0: not a socket"),
        (["-l", "127.0.0.1", "-p", "0", "--listen-fd", "999"], "--listen-fd 999: not an open file"),
    ]
    for args, message in cases:
        r = run_to_exit(exe, *args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert message in r.stderr, (args, r.stderr)


def test_startup_line_and_open_files_limit(exe):
    def low_soft_limit():
        # What a fresh Debian gives a service: soft 1024, the hard limit higher.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))

    with Daemon(exe, "-t", "2", "-m", "48", "--node-id", "n1", "--text-port", "0",
                preexec_fn=low_soft_limit) as d:
        assert d.threads == 2
        assert d.memory == 48 * MIB
        assert "listening binary=127.0.0.1:%d text=off threads=2 memory=%d" % (d.port, 48 * MIB) in d.log()
        with open("/proc/%d/limits" % d.pid) as f:
            line = next(l for l in f if l.startswith("Max open files"))
        soft, hard = line.split()[3:5]
        assert soft == hard, line


def test_port_in_use_is_a_clear_failure(exe):
    with Daemon(exe, "-t", "1") as d:
        r = run_to_exit(exe, "-l", "127.0.0.1", "-p", str(d.port), "-t", "1")
        assert r.returncode == 1, r
        assert "Address already in use" in r.stderr, r.stderr


def test_sigterm_exits_0_and_the_port_is_reusable_at_once(exe):
    d = Daemon(exe, "-t", "2")
    port = d.port
    try:
        idle = d.client()
        half = d.client()
        half.send(put_frame(b"half", pattern(300 * 1024, 1))[:100000])  # a PUT in the middle of its value
        busy_stop = threading.Event()

        def busy():
            try:
                with d.client(timeout=5) as c:
                    while not busy_stop.is_set():
                        c.put(b"busy", b"x" * 1000)
            except (OSError, AssertionError):
                pass  # the daemon went away under it: expected

        worker = threading.Thread(target=busy)
        worker.start()
        time.sleep(0.2)
        start = time.monotonic()
        code = d.stop(signal.SIGTERM)
        busy_stop.set()
        worker.join(10)
        assert code == 0, "exit status %s\n%s" % (code, d.log())
        assert time.monotonic() - start < 5
        assert "stopped" in d.log()
        idle.close()
        half.close()
    finally:
        d.kill()
    # The same port, immediately.
    with Daemon(exe, "-t", "2", listen=("127.0.0.1", port)) as again:
        assert again.port == port
        check_alive_and_serving(again)
        assert again.stop(signal.SIGINT) == 0


def test_sigint_exits_0(exe):
    with Daemon(exe, "-t", "1") as d:
        check_alive_and_serving(d)
        assert d.stop(signal.SIGINT) == 0


def test_listen_fd(exe):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    with Daemon(exe, "-t", "2", listen=listener) as d:
        assert d.port == port
        listener.close()  # the daemon holds its own copy
        check_alive_and_serving(d)
        assert d.stop() == 0


def test_listen_fd_that_is_not_listening(exe):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        r = run_to_exit(exe, "--listen-fd", str(sock.fileno()), pass_fds=(sock.fileno(),))
        assert r.returncode == 2, r
        assert "not a listening socket" in r.stderr, r.stderr
    finally:
        sock.close()


def test_systemd_socket_activation(exe):
    for names in ("binary", "", "text:binary"):
        sockets = []
        for _ in names.split(":"):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            sockets.append(s)
        binary_index = names.split(":").index("binary") if "binary" in names else 0
        fds = [s.fileno() for s in sockets]

        def place_fds(fds=fds):
            # sd_listen_fds(3): the sockets are fds 3, 4, ... in the daemon.
            moved = [os.dup(fd) for fd in fds]
            for i, fd in enumerate(moved):
                os.dup2(fd, 3 + i, inheritable=True)

        env = dict(os.environ, LISTEN_FDS=str(len(sockets)))
        if names:
            env["LISTEN_FDNAMES"] = names
        try:
            # LISTEN_PID must be the daemon's own pid: a shell sets it, then execs.
            with Daemon(exe, "-t", "2", listen=None, text=None, prefix=["sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"'],
                        env=env, preexec_fn=place_fds, popen={"close_fds": False}) as d:
                expected_port = sockets[binary_index].getsockname()[1]
                line = d.ready.group(0)
                assert "binary=127.0.0.1:%d " % expected_port in line, (names, line)
                with socket.create_connection(("127.0.0.1", expected_port), timeout=10) as c:
                    c.sendall(get_frame(b"socket-activated"))
                    assert c.recv(1) == bytes([112])
                assert d.stop() == 0
        finally:
            for s in sockets:
                s.close()


if __name__ == "__main__":
    run_tests(globals())
