#!/usr/bin/env python3
"""End-to-end tests of ringcached-privsep and systemd socket activation.

Each case drives the real helper and the real daemon on 127.0.0.1 and checks
what an operator relies on: the daemon on port 889 runs as the target user
with no groups, no capabilities and NoNewPrivs; no process of the service is
root once it serves; PUT/GET work; every error path exits non-zero with a
clear message and leaves nothing running. Cases that need root exit 77
(meson: SKIP) otherwise.

usage: privsep_e2e.py CASE --helper PATH --daemon PATH
"""

import argparse
import os
import pwd
import shutil
import signal
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

from clients import OK, Client  # noqa: E402
from daemon import Server, proc_status  # noqa: E402
from tls_certs import Certificates, client_context, tls_connect  # noqa: E402

EXIT_SKIP = 77
PRIVILEGED_PORT = 889
TEST_USER = "nobody"

START_TIMEOUT_S = 15.0     # helper + daemon start-up, including ring set-up
STOP_TIMEOUT_S = 10.0      # SIGTERM to exit
ERROR_EXIT_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 5.0
PORT_RACE_RETRIES_MAX = 5  # systemd-socket-activate needs a concrete free port

DAEMON_ARGS = ["-t", "2", "-m", "16"]


class Failure(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def need_root():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        sys.exit(EXIT_SKIP)


def put(client, key, value):
    status = client.put(key, value)
    check(status == OK, f"PUT {key!r}: reply {status}, expected {OK}")


def check_put_get(port):
    with Client(port, timeout=IO_TIMEOUT_S) as client:
        values = {
            b"privsep:small": b"hello from 889",
            b"privsep:binary\x00\xff": bytes(range(256)),
            b"privsep:large": os.urandom(256 * 1024),
        }
        for key, value in values.items():
            put(client, key, value)
        for key, value in values.items():
            got = client.get(key)
            check(got == value, f"GET {key!r} returned {len(got or b'')} bytes, not the value PUT")
        check(client.get(b"privsep:never-stored") is None, "GET of a missing key did not answer ENOTFOUND")


# --- processes -------------------------------------------------------------

def session_members(session_id):
    """PIDs whose session is session_id: the helper, its child, the daemon."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                after_name = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # after the name: state ppid pgrp session ...
        if int(after_name[3]) == session_id and after_name[0] != "Z":
            members.append(int(entry))
    return members


def socket_inode_listening_on(port):
    """Inode of the LISTEN socket on 127.0.0.1:port, from /proc/net/tcp."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == wanted and parts[3] == "0A":
                return parts[9]
    return None


def fd_targets(pid):
    targets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return targets


class Service(Server):
    """A process tree started in its own session, its stderr kept (log()),
    always cleaned up."""

    def __init__(self, argv, preexec=None):
        super().__init__(argv, preexec_fn=preexec, stop_timeout_s=STOP_TIMEOUT_S, label=argv[0],
                         popen={"start_new_session": True})
        self.start()

    def cleanup(self):
        for pid in session_members(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.kill()


def staged_daemon(daemon, directory_mode=0o755):
    """A copy of the daemon where TEST_USER can (or, with 0o700, cannot) reach it.

    A checkout under /root is not readable by nobody."""
    directory = tempfile.mkdtemp(prefix="ringcache-privsep-")
    os.chmod(directory, directory_mode)
    copy = os.path.join(directory, "ringcached")
    shutil.copy2(daemon, copy)
    os.chmod(copy, 0o755)
    return directory, copy


def check_nothing_left(service):
    leftover = session_members(service.proc.pid)
    check(not leftover, f"processes left running after the helper exited: {leftover}")


def run_expecting_error(argv, expected_status, expected_text, preexec=None):
    service = Service(argv, preexec)
    try:
        status = service.wait(ERROR_EXIT_TIMEOUT_S)
        check(status == expected_status,
              f"exit status {status}, expected {expected_status}; stderr:\n{service.log()}")
        check(expected_text in service.log(),
              f"stderr lacks '{expected_text}':\n{service.log()}")
        check_nothing_left(service)
        print(f"ok: exit {status}: {service.line_with('error')}")
    finally:
        service.cleanup()


# --- cases -----------------------------------------------------------------

def case_serve_889(args):
    need_root()
    user = pwd.getpwnam(TEST_USER)
    probe = socket.socket()
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", PRIVILEGED_PORT))
    except OSError as error:
        raise Failure(f"port {PRIVILEGED_PORT} is busy ({error}); this test needs it free")
    finally:
        probe.close()

    directory, daemon = staged_daemon(args.daemon)
    service = Service([args.helper, "--user", TEST_USER, "--port", str(PRIVILEGED_PORT),
                       "--text-port", "0", "--listen", "127.0.0.1", "--", daemon] + DAEMON_ARGS)
    try:
        service.wait_for_line("listening binary=", START_TIMEOUT_S)
        pid = service.proc.pid
        print(service.line_with("listening binary="))
        check(f"binary=127.0.0.1:{PRIVILEGED_PORT}" in service.line_with("listening binary="),
              "daemon does not report serving 127.0.0.1:889")

        check(os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(daemon),
              "the helper's PID is not running the daemon (no exec in place)")
        status = proc_status(pid)
        ids = (str(user.pw_uid),) * 4
        gids = (str(user.pw_gid),) * 4
        check(tuple(status["Uid"].split()) == ids, f"Uid is '{status['Uid']}', expected {user.pw_uid} x4")
        check(tuple(status["Gid"].split()) == gids, f"Gid is '{status['Gid']}', expected {user.pw_gid} x4")
        check(status["Groups"] == "", f"supplementary groups remain: '{status['Groups']}'")
        for capability_set in ("CapEff", "CapPrm", "CapAmb", "CapInh"):
            check(int(status[capability_set], 16) == 0, f"{capability_set} is {status[capability_set]}")
        check(status["NoNewPrivs"] == "1", f"NoNewPrivs is {status['NoNewPrivs']}")
        print(f"ok: daemon pid {pid}: Uid {status['Uid']} Gid {status['Gid']} Groups '{status['Groups']}' "
              f"CapEff {status['CapEff']} CapPrm {status['CapPrm']} CapAmb {status['CapAmb']} "
              f"CapBnd {status['CapBnd']} NoNewPrivs {status['NoNewPrivs']}")

        members = session_members(pid)
        check(members == [pid], f"service processes besides the daemon: {members} (root child not reaped?)")
        for task in os.listdir(f"/proc/{pid}/task"):
            task_uid = proc_status(pid, task)["Uid"].split()
            check("0" not in task_uid, f"thread {task} of the daemon has a root id: {task_uid}")
        print(f"ok: no process or thread of the service is root "
              f"({len(os.listdir(f'/proc/{pid}/task'))} threads)")

        text_line = service.line_with("text port listening on")
        text_port = int(text_line.rsplit(":", 1)[1])
        held = fd_targets(pid)
        for port in (PRIVILEGED_PORT, text_port):
            inode = socket_inode_listening_on(port)
            check(inode is not None, f"nothing listens on 127.0.0.1:{port}")
            check(f"socket:[{inode}]" in held, f"the daemon does not hold the listening socket of port {port}")
        print(f"ok: the daemon holds both passed listening sockets (889 and text {text_port})")

        check_put_get(PRIVILEGED_PORT)
        print("ok: PUT/GET on 127.0.0.1:889")

        os.kill(pid, signal.SIGTERM)
        status_code = service.wait(STOP_TIMEOUT_S)
        check(status_code == 0, f"daemon exit status {status_code} after SIGTERM")
        check_nothing_left(service)
        print("ok: SIGTERM stops it with status 0, nothing left running")
    finally:
        service.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


def case_not_root(args):
    preexec = None
    if os.geteuid() == 0:
        user = pwd.getpwnam(TEST_USER)

        def preexec():
            os.setgroups([])
            os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
            os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    run_expecting_error([args.helper, "--user", TEST_USER, "--", args.daemon], 1,
                        "must be started as root", preexec)


def case_unknown_user(args):
    need_root()
    run_expecting_error([args.helper, "--user", "ringcache-no-such-user", "--listen", "127.0.0.1",
                         "--port", "0", "--", args.daemon], 1, "unknown user 'ringcache-no-such-user'")


def case_port_in_use(args):
    need_root()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run_expecting_error([args.helper, "--user", TEST_USER, "--listen", "127.0.0.1", "--port", str(port),
                             "--", args.daemon], 1, "Address already in use")
        run_expecting_error([args.helper, "--user", TEST_USER, "--listen", "127.0.0.1", "--port", "0",
                             "--text-port", str(port), "--", args.daemon], 1,
                            f"cannot listen on 127.0.0.1:{port} for the text port: Address already in use")


def case_daemon_missing(args):
    need_root()
    directory = tempfile.mkdtemp(prefix="ringcache-privsep-")
    os.chmod(directory, 0o755)
    try:
        missing = os.path.join(directory, "ringcached")
        run_expecting_error([args.helper, "--user", TEST_USER, "--listen", "127.0.0.1", "--port", "0",
                             "--", missing], 127, f"cannot execute '{missing}' as user '{TEST_USER}'")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def case_daemon_unreachable(args):
    need_root()
    directory, daemon = staged_daemon(args.daemon, directory_mode=0o700)
    try:
        run_expecting_error([args.helper, "--user", TEST_USER, "--listen", "127.0.0.1", "--port", "0",
                             "--", daemon], 126, "Permission denied")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def as_test_user(action):
    """Whether action() (an open() of a path) succeeds in a child running as
    TEST_USER with no groups: what the daemon itself could do."""
    user = pwd.getpwnam(TEST_USER)
    child = os.fork()
    if child == 0:
        code = 2
        try:
            os.setgroups([])
            os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
            os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
            action()
            code = 0
        except PermissionError:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1), f"probe as {TEST_USER} failed: {status}")
    return os.WEXITSTATUS(status) == 0


def case_tls_key_root_only(args):
    """The key file is 0600 root; the helper opens it before the drop and
    the daemon, running as TEST_USER, reads it from --tls-key-fd."""
    need_root()
    user = pwd.getpwnam(TEST_USER)
    directory, daemon = staged_daemon(args.daemon)
    try:
        with Certificates() as certs:
            cert = os.path.join(directory, "server.pem")
            key = os.path.join(directory, "server.key")
            shutil.copyfile(certs.path("server.pem"), cert)
            os.chmod(cert, 0o644)
            shutil.copyfile(certs.path("server.key"), key)
            os.chown(key, 0, 0)
            os.chmod(key, 0o600)
            with open(key, "rb") as f:
                pem = f.read()
            ctx = client_context(certs)
        info = os.stat(key)
        check(info.st_uid == 0 and (info.st_mode & 0o777) == 0o600, f"key file is not 0600 root: {info}")
        check(not as_test_user(lambda: os.open(key, os.O_RDONLY)), f"{TEST_USER} can open {key} itself")
        check(as_test_user(lambda: os.close(os.open(cert, os.O_RDONLY))), f"{TEST_USER} cannot read {cert}")

        service = Service([args.helper, "--user", TEST_USER, "--port", "0", "--listen", "127.0.0.1",
                           "--tls-key", key, "--", daemon, "--tls-cert", cert] + DAEMON_ARGS)
        try:
            service.wait_for_line("listening binary=", START_TIMEOUT_S)
            pid = service.proc.pid
            port = int(service.line_with("binary port listening on").rsplit(":", 1)[1])
            check(f"--tls-key {key}" in service.line_with("opened --tls-key"), "the helper did not report the key")
            status = proc_status(pid)
            check(tuple(status["Uid"].split()) == (str(user.pw_uid),) * 4, f"Uid is '{status['Uid']}'")
            check(key in fd_targets(pid), f"the daemon does not hold the passed key file {key}")
            print(f"ok: daemon pid {pid} runs as uid {status['Uid'].split()[0]} and holds {key} (0600 root), "
                  f"which {TEST_USER} cannot open")

            with tls_connect(Client, port, ctx, timeout=IO_TIMEOUT_S) as client:
                check(client.sock.version() in ("TLSv1.3", "TLSv1.2"), "no TLS session")
                put(client, b"privsep:tls", b"served over TLS")
                check(client.get(b"privsep:tls") == b"served over TLS", "GET over TLS did not return the value")
            print(f"ok: TLS handshake and PUT/GET on 127.0.0.1:{port}")

            # SIGHUP re-reads the key from the descriptor (pread from 0).
            os.kill(pid, signal.SIGHUP)
            service.wait_for_line("tls: SIGHUP: reloaded", START_TIMEOUT_S)
            with tls_connect(Client, port, ctx, timeout=IO_TIMEOUT_S) as client:
                check(client.get(b"privsep:tls") == b"served over TLS", "GET after SIGHUP failed")
            print("ok: SIGHUP reloads the key through the descriptor")

            os.kill(pid, signal.SIGTERM)
            check(service.wait(STOP_TIMEOUT_S) == 0, "daemon did not stop cleanly after SIGTERM")
            for line in pem.decode().splitlines()[1:-1]:
                check(line not in service.log(), "a line of the private key appears in the log")
            check_nothing_left(service)
        finally:
            service.cleanup()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def case_tls_key_refused(args):
    """What the helper refuses to hand over, while it is still root."""
    need_root()
    directory, daemon = staged_daemon(args.daemon)
    try:
        fifo = os.path.join(directory, "fifo.key")
        os.mkfifo(fifo, 0o600)
        empty = os.path.join(directory, "empty.key")
        open(empty, "w").close()
        missing = os.path.join(directory, "missing.key")
        for path, text in ((missing, "cannot open it: No such file or directory"), (directory, "not a regular file"),
                           (fifo, "not a regular file"), (empty, "the file is empty")):
            run_expecting_error([args.helper, "--user", TEST_USER, "--port", "0", "--listen", "127.0.0.1",
                                 "--tls-key", path, "--", daemon, "--tls-cert", path], 1,
                                f"error: --tls-key {path}: {text}")
        run_expecting_error([args.helper, "--user", TEST_USER, "--tls-key", empty, "--", daemon, "--tls-key", empty],
                            2, "conflicts with the sockets (and --tls-key) this helper passes")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def free_ports(count):
    holders = []
    try:
        for _ in range(count):
            holder = socket.socket()
            holder.bind(("127.0.0.1", 0))
            holders.append(holder)
        return [holder.getsockname()[1] for holder in holders]
    finally:
        for holder in holders:
            holder.close()


def case_socket_activation(args):
    activate = shutil.which("systemd-socket-activate")
    check(activate is not None, "systemd-socket-activate is not installed (package systemd)")
    for attempt in range(PORT_RACE_RETRIES_MAX):
        binary_port, text_port = free_ports(2)
        service = Service([activate, "-l", f"127.0.0.1:{binary_port}", "-l", f"127.0.0.1:{text_port}",
                           "--fdname=binary:text", args.daemon] + DAEMON_ARGS)
        try:
            # It binds first and execs the daemon on the first connection.
            try:
                service.wait_for_line(f"Listening on 127.0.0.1:{text_port}", START_TIMEOUT_S)
            except AssertionError:
                if "Address already in use" in service.log() and attempt + 1 < PORT_RACE_RETRIES_MAX:
                    continue
                raise
            with Client(binary_port, timeout=IO_TIMEOUT_S) as first:
                service.wait_for_line("listening binary=", START_TIMEOUT_S)
                put(first, b"activation:first", b"queued before the daemon ran")
                check(first.get(b"activation:first") == b"queued before the daemon ran",
                      "the connection queued before exec lost its PUT")
            line = service.line_with("listening binary=")
            print(line)
            check(f"binary=127.0.0.1:{binary_port}" in line, "daemon does not serve systemd's binary socket")
            pid = service.proc.pid
            inode = socket_inode_listening_on(text_port)
            check(inode is not None and f"socket:[{inode}]" in fd_targets(pid),
                  "the daemon does not hold systemd's 'text' socket")
            check_put_get(binary_port)
            print(f"ok: socket activation with names binary:text, PUT/GET on {binary_port}")
            os.kill(pid, signal.SIGTERM)
            status = service.wait(STOP_TIMEOUT_S)
            check(status == 0, f"daemon exit status {status} after SIGTERM")
            return
        finally:
            service.cleanup()
    raise Failure("could not find free ports for systemd-socket-activate")


CASES = {
    "serve_889": case_serve_889,
    "not_root": case_not_root,
    "unknown_user": case_unknown_user,
    "port_in_use": case_port_in_use,
    "daemon_missing": case_daemon_missing,
    "daemon_unreachable": case_daemon_unreachable,
    "socket_activation": case_socket_activation,
    "tls_key_root_only": case_tls_key_root_only,
    "tls_key_refused": case_tls_key_refused,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--helper", required=True)
    parser.add_argument("--daemon", required=True)
    args = parser.parse_args()
    for path in (args.helper, args.daemon):
        if not os.access(path, os.X_OK):
            print(f"FAIL: {path} is not an executable (build it first)")
            return 1
    try:
        CASES[args.case](args)
    except AssertionError as failure:
        print(f"FAIL: {args.case}: {failure}")
        return 1
    print(f"PASS: {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
